//! Notification rules at work: reacting to newly stored events with `eye-rules`, and firing absence
//! timers by the wall clock.
//!
//! Each user's state is read, evaluated and written back under an optimistic lock (a version column
//! checked on write), together with the notifications it decided: one transaction, so the outbox holds
//! exactly the notifications of committed state. A lost race re-reads and re-evaluates.

mod reactor;
mod sweeper;

pub use reactor::RuleReactor;
pub use sweeper::{Sweeper, SweeperSettings};

use chrono::{DateTime, Utc};
use eye_rules::{Outcome, RuleSet, UserRuleState, evaluate};
use eye_store::{EventCursor, RuleEventRow};
use std::sync::Arc;

/// Where the wall clock comes from: the system's in production, a fixed one in tests.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;

/// A user's state after evaluating events in order, and what it decided on the way.
#[derive(Debug, Clone, Default)]
pub(crate) struct Evaluated {
    pub state: UserRuleState,
    pub cursor: Option<EventCursor>,
    pub outcome: Outcome,
}

/// Evaluates `events` (one user's, in event-time order) starting from `state`.
pub(crate) fn evaluate_in_order(
    rules: &RuleSet,
    state: UserRuleState,
    cursor: Option<EventCursor>,
    events: &[RuleEventRow],
) -> Evaluated {
    let mut done = Evaluated {
        state,
        cursor,
        outcome: Outcome::default(),
    };
    for event in events {
        let outcome = evaluate(rules, &done.state, &event.as_rule_event());
        done.state.apply(&outcome.changes);
        done.outcome.changes.extend(outcome.changes);
        done.outcome.notifications.extend(outcome.notifications);
        done.cursor = Some(event.cursor);
    }
    done
}

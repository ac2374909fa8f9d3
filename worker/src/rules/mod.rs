//! Notification rules at work: reacting to newly stored events with `eye-rules`, and firing absence
//! timers by the wall clock.
//!
//! A job's users are evaluated inside the job's own unit of work ([`eye_store::IngestTxn`]): their states
//! are locked, the new events evaluated in event-time order, and the states written back with the
//! notifications they decided, in the same transaction as the events. The outbox therefore holds exactly
//! the notifications of committed events, and no crash, retry or redelivery can store an event without
//! evaluating it. See [`reactor`] for the protocol and why each of its invariants holds. The rules are
//! the published ones at the revision the job's own transaction reads ([`RuleBook`]).

mod book;
mod reactor;
mod sweeper;

pub use book::{PublishedRules, RuleBook, rule_set};
pub use reactor::RuleReactor;
pub use sweeper::{Sweeper, SweeperSettings};

use chrono::{DateTime, TimeDelta, Utc};
use eye_rules::{Outcome, RuleEvent, RuleSet, UserRuleState, evaluate};
use eye_store::{Checkpoint, EventCursor, RuleEventRow};
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

/// How far behind a user's newest evaluated event the checkpoint is kept. An event that arrives older
/// than the rule cursor but newer than the checkpoint rebuilds the state from the checkpoint, reading only
/// the events after it; only one more than this late rebuilds from the user's first event.
pub(crate) const CHECKPOINT_LAG: TimeDelta = TimeDelta::hours(24);

/// One of a user's events as the rules evaluate it, and where it sits in the user's stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Positioned<'a> {
    pub cursor: EventCursor,
    pub event: RuleEvent<'a>,
}

impl<'a> From<&'a RuleEventRow> for Positioned<'a> {
    fn from(row: &'a RuleEventRow) -> Self {
        Self {
            cursor: row.cursor,
            event: row.as_rule_event(),
        }
    }
}

/// A user's state after evaluating events in order, and what it decided on the way.
#[derive(Debug, Clone, Default)]
pub(crate) struct Evaluated {
    pub state: UserRuleState,
    pub cursor: Option<EventCursor>,
    /// The state after the last event at least [`CHECKPOINT_LAG`] older than the newest one, if any.
    pub checkpoint: Option<Checkpoint>,
    pub outcome: Outcome,
}

/// Evaluates `events` (one user's, in event-time order) starting from `state` (after `cursor`), keeping
/// the notifications decided by events at or after `first_new` (the user's earliest new event).
///
/// An event before `first_new` was evaluated before, in this very order (a later-stored older event
/// rebuilds everything after it), so with the same rules it decides the same occasions again, already in
/// the outbox. With rules published since, it could decide new ones: history is then state (a count
/// window holds earlier events, an absence timer earlier triggers), but only new events notify.
pub(crate) fn evaluate_in_order(
    rules: &RuleSet,
    start: (UserRuleState, Option<EventCursor>),
    first_new: EventCursor,
    events: &[Positioned<'_>],
) -> Evaluated {
    let (state, cursor) = start;
    let mut done = Evaluated {
        state,
        cursor,
        checkpoint: None,
        outcome: Outcome::default(),
    };
    let newest = events.last().map(|e| e.cursor.at);
    let behind = newest.map_or(0, |newest| {
        events.partition_point(|e| e.cursor.at <= newest - CHECKPOINT_LAG)
    });
    let (settled, recent) = events.split_at(behind);
    evaluate_into(rules, &mut done, settled, first_new);
    if let Some(cursor) = done.cursor.filter(|_| !settled.is_empty()) {
        done.checkpoint = Some(Checkpoint {
            state: done.state.clone(),
            cursor,
        });
    }
    evaluate_into(rules, &mut done, recent, first_new);
    done
}

fn evaluate_into(
    rules: &RuleSet,
    done: &mut Evaluated,
    events: &[Positioned<'_>],
    first_new: EventCursor,
) {
    for event in events {
        let outcome = evaluate(rules, &done.state, &event.event);
        done.state.apply(&outcome.changes);
        done.outcome.changes.extend(outcome.changes);
        if event.cursor >= first_new {
            done.outcome.notifications.extend(outcome.notifications);
        }
        done.cursor = Some(event.cursor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn launch(hours: i64, id: i64) -> RuleEventRow {
        RuleEventRow {
            cursor: EventCursor {
                at: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::hours(hours),
                id,
            },
            event_id: uuid::Uuid::new_v4(),
            category: "fitness".into(),
            name: "app_launch".into(),
            user_id: Some("u".into()),
            data: Map::new(),
            received_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    const FIRST: EventCursor = EventCursor {
        at: DateTime::<Utc>::MIN_UTC,
        id: 0,
    };

    fn positioned(rows: &[RuleEventRow]) -> Vec<Positioned<'_>> {
        rows.iter().map(Positioned::from).collect()
    }

    fn workout(hours: i64, id: i64) -> RuleEventRow {
        RuleEventRow {
            name: "workout".into(),
            ..launch(hours, id)
        }
    }

    #[test]
    fn only_events_from_the_first_new_one_on_notify_while_earlier_ones_still_count() {
        let rules = RuleSet::from_toml_str(
            r#"
            [[rule]]
            name = "two"
            kind = "count"
            category = "fitness"
            event = "workout"
            at_least = 2
            within = "1h"
            message = "{count}"
            "#,
        )
        .expect("valid rule");
        let rows = [workout(0, 1), workout(0, 2), workout(0, 3), workout(0, 4)];
        let events = positioned(&rows);
        let start = || (UserRuleState::default(), None);
        let all = evaluate_in_order(&rules, start(), FIRST, &events);
        assert_eq!(all.outcome.notifications.len(), 2);
        let from_third = evaluate_in_order(&rules, start(), events[2].cursor, &events);
        assert_eq!(
            from_third.outcome.notifications.len(),
            1,
            "the 4th completes a pair"
        );
        let only_last = evaluate_in_order(&rules, start(), events[3].cursor, &events[..4]);
        assert_eq!(
            only_last.outcome.notifications.len(),
            1,
            "counted with the 3rd"
        );
        assert_eq!(only_last.state, all.state);
    }

    #[test]
    fn the_checkpoint_is_the_state_after_the_last_event_a_day_behind_the_newest() {
        let rules = RuleSet::seed().expect("seed rules");
        let rows = [launch(0, 1), launch(2, 2), launch(25, 3), launch(27, 4)];
        let events = positioned(&rows);
        let done = evaluate_in_order(&rules, (UserRuleState::default(), None), FIRST, &events);
        let checkpoint = done.checkpoint.expect("a checkpoint");
        assert_eq!(checkpoint.cursor, events[1].cursor, "2 h <= 27 h - 24 h");
        let settled = evaluate_in_order(
            &rules,
            (UserRuleState::default(), None),
            FIRST,
            &events[..2],
        );
        assert_eq!(checkpoint.state, settled.state);
        assert_eq!(done.cursor, Some(events[3].cursor));
    }

    #[test]
    fn events_within_a_day_of_each_other_pass_no_checkpoint() {
        let rules = RuleSet::seed().expect("seed rules");
        let rows = [launch(0, 1), launch(23, 2)];
        let events = positioned(&rows);
        let done = evaluate_in_order(&rules, (UserRuleState::default(), None), FIRST, &events);
        assert!(done.checkpoint.is_none());
        assert_eq!(done.cursor, Some(events[1].cursor));
    }
}

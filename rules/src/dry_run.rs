//! Dry runs: what the rules would have decided over stored history, from an empty state, persisting
//! nothing. Pure, like [`crate::evaluate`]; the caller streams the events and keeps what it reports.

use crate::absence;
use crate::evaluate;
use crate::event::RuleEvent;
use crate::rule_set::RuleSet;
use crate::state::{Notification, Outcome, StateChange, UserRuleState};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// The event that decided a notification: a duration rule's finish, an absence rule's trigger, the event
/// that completed a count.
#[derive(Debug, Clone, PartialEq)]
pub struct DecidingEvent {
    /// Its id.
    pub event_id: Uuid,
    /// Category.
    pub category: String,
    /// Name.
    pub name: String,
    /// When it occurred.
    pub timestamp: DateTime<Utc>,
    /// Its payload.
    pub data: Map<String, Value>,
}

impl DecidingEvent {
    fn of(event: &RuleEvent<'_>) -> Self {
        Self {
            event_id: event.event_id,
            category: event.category.to_owned(),
            name: event.name.to_owned(),
            timestamp: event.timestamp,
            data: event.data.clone(),
        }
    }
}

/// A notification the rules would have decided, with its deciding event.
#[derive(Debug, Clone, PartialEq)]
pub struct DryRunNotification {
    /// What would have been sent.
    pub notification: Notification,
    /// Why.
    pub deciding: DecidingEvent,
}

/// Evaluates a range of stored events one user at a time, each from an empty state. Feed the events
/// ordered by user, then timestamp; the memory held is one user's state.
///
/// Absence timers fire by event time here, not by the wall clock: once an event of the user is stamped
/// past a timer's deadline (no later event can disarm it), or when the user's events end and the deadline
/// lies before the range's end. A deadline at or after the end is left undecided: an expected event past
/// the range could still disarm it.
pub struct DryRun<'r> {
    rules: &'r RuleSet,
    end: DateTime<Utc>,
    user: Option<String>,
    state: UserRuleState,
    /// The trigger events of the user's armed timers.
    triggers: HashMap<Uuid, DecidingEvent>,
}

impl<'r> DryRun<'r> {
    /// A dry run of `rules` over events stamped before `end`.
    pub fn new(rules: &'r RuleSet, end: DateTime<Utc>) -> Self {
        Self {
            rules,
            end,
            user: None,
            state: UserRuleState::default(),
            triggers: HashMap::new(),
        }
    }

    /// Evaluates the next event; one of another user first closes the previous user ([`Self::finish_user`]).
    pub fn feed(&mut self, event: &RuleEvent<'_>) -> Vec<DryRunNotification> {
        let Some(user) = event.user_id else {
            return Vec::new();
        };
        let mut decided = Vec::new();
        if self.user.as_deref() != Some(user) {
            decided = self.finish_user();
            self.user = Some(user.to_owned());
        }
        decided.extend(self.fire_before(event.timestamp));
        let outcome = evaluate(self.rules, &self.state, event);
        for change in &outcome.changes {
            if let StateChange::ArmTimer(timer) = change {
                self.triggers
                    .insert(timer.trigger_event_id, DecidingEvent::of(event));
            }
        }
        self.state.apply(&outcome.changes);
        decided.extend(
            outcome
                .notifications
                .into_iter()
                .map(|notification| DryRunNotification {
                    notification,
                    deciding: DecidingEvent::of(event),
                }),
        );
        decided
    }

    /// Closes the current user: fires the timers whose deadline lies before the range's end, and forgets
    /// the user's state. Call it once more after the last event.
    pub fn finish_user(&mut self) -> Vec<DryRunNotification> {
        let decided = self.fire_before(self.end);
        self.state = UserRuleState::default();
        self.triggers.clear();
        decided
    }

    /// Fires the timers whose deadline is before `time`.
    fn fire_before(&mut self, time: DateTime<Utc>) -> Vec<DryRunNotification> {
        let due: Vec<_> = self
            .state
            .timers
            .iter()
            .filter(|t| t.deadline < time)
            .cloned()
            .collect();
        let mut decided = Vec::new();
        for timer in due {
            let mut out = Outcome::default();
            absence::fire(&timer, &mut out);
            self.state.apply(&out.changes);
            let Some(deciding) = self.triggers.remove(&timer.trigger_event_id) else {
                continue;
            };
            decided.extend(
                out.notifications
                    .into_iter()
                    .map(|notification| DryRunNotification {
                        notification,
                        deciding: deciding.clone(),
                    }),
            );
        }
        decided
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{TestEvent, at, event, sample_events};

    fn run(rules: &RuleSet, events: &mut [TestEvent], end: &str) -> Vec<DryRunNotification> {
        events.sort_by(|a, b| (&a.user_id, a.timestamp).cmp(&(&b.user_id, b.timestamp)));
        let mut dry = DryRun::new(rules, at(end));
        let mut decided: Vec<_> = events
            .iter()
            .flat_map(|e| dry.feed(&e.as_rule_event()))
            .collect();
        decided.extend(dry.finish_user());
        decided
    }

    fn only(rule: &str) -> RuleSet {
        let seed = RuleSet::seed().expect("seed rules");
        let name = crate::RuleName::parse(rule).expect("valid name");
        let kept = seed.get(&name).cloned().expect("a seed rule");
        RuleSet::from_rules(vec![kept]).expect("one rule")
    }

    #[test]
    fn each_seed_rule_over_the_sample_decides_exactly_its_notification() {
        let end = "2021-03-01 00:00:00";
        let congratulated = run(&only("daily_training_dose"), &mut sample_events(), end);
        assert_eq!(congratulated.len(), 1);
        assert_eq!(congratulated[0].notification.user_id, "foo1");
        assert!(congratulated[0].notification.message.contains("36 minutes"));
        assert_eq!(congratulated[0].deciding.name, "training_program_finished");
        let nudged = run(&only("start_training_nudge"), &mut sample_events(), end);
        assert_eq!(nudged.len(), 1);
        assert_eq!(nudged[0].notification.user_id, "foo2");
        assert_eq!(
            nudged[0].notification.triggered_at,
            at("2021-02-28 16:32:52")
        );
        assert_eq!(nudged[0].deciding.name, "app_launch");
    }

    #[test]
    fn an_absence_is_decided_only_when_its_deadline_lies_inside_the_range() {
        let cases = [
            ("2021-02-28 16:32:52", 0),
            ("2021-02-28 16:32:53", 1),
            ("2021-02-28 16:52:00", 1),
        ];
        for (end, nudges) in cases {
            let mut events = [event("foo2", "app_launch", "2021-02-28 16:22:52")];
            let decided = run(&only("start_training_nudge"), &mut events, end);
            assert_eq!(decided.len(), nudges, "{end}");
        }
    }

    #[test]
    fn a_timer_passed_by_the_users_next_event_fires_then_and_state_stays_small() {
        let mut events: Vec<_> = (0..100)
            .map(|hour| {
                event(
                    "u",
                    "app_launch",
                    &format!("2021-02-{:02} {:02}:00:00", 1 + hour / 24, hour % 24),
                )
            })
            .collect();
        let rules = only("start_training_nudge");
        let mut dry = DryRun::new(&rules, at("2021-03-01 00:00:00"));
        for e in &events {
            dry.feed(&e.as_rule_event());
            assert!(dry.state.timers.len() <= 1 && dry.triggers.len() <= 1);
        }
        let decided = run(&rules, &mut events, "2021-03-01 00:00:00");
        assert_eq!(decided.len(), 100);
    }
}

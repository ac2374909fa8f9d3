//! Count rules: at least N matching events of one user within a window is an occasion, once per window.

use crate::engine::Context;
use crate::event::RuleEvent;
use crate::names::{EventKind, OccasionKey, RuleName};
use crate::state::{CountWindow, Counted, Notification, Outcome, StateChange};
use crate::template::{Builtin, Template, Values};
use chrono::TimeDelta;
use serde_json::{Map, Value};

/// The placeholders a count rule's message may use besides `data.<key>`.
pub(crate) const OFFERED: &[Builtin] = &[
    Builtin::Rule,
    Builtin::UserId,
    Builtin::Count,
    Builtin::WindowMinutes,
];

/// When a user's events of type `event` whose `data` has every field of `data_equals` number at least
/// `at_least` within `within` (the oldest stamped no earlier than the newest minus `within`), notify. The
/// events that notified are spent: the next notification needs `at_least` new ones, so one burst notifies
/// once. The deciding event is the one that completed the count (its `data.<key>` fills the message).
#[derive(Debug, Clone)]
pub struct CountRule {
    pub(crate) name: RuleName,
    pub(crate) event: EventKind,
    pub(crate) data_equals: Map<String, Value>,
    pub(crate) at_least: u32,
    pub(crate) within: TimeDelta,
    pub(crate) message: Template,
}

impl CountRule {
    /// The rule's name.
    pub fn name(&self) -> &RuleName {
        &self.name
    }

    pub(crate) fn kind(&self) -> &EventKind {
        &self.event
    }

    fn counts(&self, event: &RuleEvent<'_>) -> bool {
        self.event.matches(event)
            && self
                .data_equals
                .iter()
                .all(|(key, value)| event.data.get(key) == Some(value))
    }

    /// Adds to `out` what `event` means for this rule, given the user's state before it.
    pub(crate) fn evaluate(&self, cx: &Context<'_>, out: &mut Outcome) {
        if !self.counts(cx.event) {
            return;
        }
        let mut window = cx.state.count(&self.name).cloned().unwrap_or(CountWindow {
            rule: self.name.clone(),
            counted: Vec::new(),
            spent: Vec::new(),
        });
        let id = cx.event.event_id;
        // A duplicate (same event id) counts once, also after its window notified.
        if window.spent.contains(&id) || window.counted.iter().any(|c| c.event_id == id) {
            return;
        }
        window.counted.push(Counted {
            event_id: id,
            at: cx.event.timestamp,
        });
        window.counted.sort_by_key(|c| c.at);
        if let Some(newest) = window.counted.last().map(|c| c.at) {
            window.counted.retain(|c| c.at >= newest - self.within);
        }
        if window.counted.len() >= self.at_least as usize {
            out.notifications
                .push(self.notification(cx, window.counted.len()));
            window.spent = window.counted.drain(..).map(|c| c.event_id).collect();
        }
        out.changes.push(StateChange::SetCount(window));
    }

    fn notification(&self, cx: &Context<'_>, count: usize) -> Notification {
        let values = Values {
            rule: &self.name,
            user_id: cx.user_id,
            minutes: None,
            window_minutes: Some(self.within.num_minutes()),
            count: Some(count),
            data: &[cx.event.data],
        };
        Notification {
            rule: self.name.clone(),
            user_id: cx.user_id.to_owned(),
            occasion: OccasionKey::new(&self.name, cx.user_id, cx.event.event_id),
            message: self.message.render(&values),
            triggered_at: cx.event.timestamp,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testkit::{Replay, TestEvent, event};
    use crate::{RuleSet, evaluate};

    const RULE: &str = r#"
        [[rule]]
        name = "three_failed_payments"
        kind = "count"
        category = "fitness"
        event = "payment_failed"
        data_equals = { reason = "declined" }
        at_least = 3
        within = "1h"
        message = "{count} failed payments in {window_minutes} minutes ({data.reason})"
    "#;

    fn replay() -> Replay {
        Replay::with(RuleSet::from_toml_str(RULE).expect("valid rule"))
    }

    fn failed(time: &str) -> TestEvent {
        event("u", "payment_failed", time).with("reason", "declined")
    }

    #[test]
    fn three_matching_events_within_the_window_notify_once_and_spend_them() {
        let cases: [(&[&str], usize); 5] = [
            (&["10:00:00", "10:20:00"], 0),
            (&["10:00:00", "10:20:00", "11:00:00"], 1),
            (&["10:00:00", "10:20:00", "11:00:01"], 0),
            (&["10:00:00", "10:20:00", "10:40:00", "10:41:00"], 1),
            (
                &[
                    "10:00:00", "10:01:00", "10:02:00", "10:03:00", "10:04:00", "10:05:00",
                ],
                2,
            ),
        ];
        for (times, expected) in cases {
            let events: Vec<_> = times
                .iter()
                .map(|t| failed(&format!("2021-02-28 {t}")))
                .collect();
            let sent = replay().messages(&events);
            assert_eq!(sent.len(), expected, "{times:?}: {sent:?}");
        }
    }

    #[test]
    fn the_message_counts_the_events_and_reads_the_deciding_event() {
        let events = [
            failed("2021-02-28 10:00:00"),
            failed("2021-02-28 10:10:00"),
            failed("2021-02-28 10:20:00"),
        ];
        let mut replay = replay();
        replay.feed(&events[0]);
        replay.feed(&events[1]);
        let outcome = replay.feed(&events[2]);
        let sent = &outcome.notifications[0];
        assert_eq!(sent.message, "3 failed payments in 60 minutes (declined)");
        assert_eq!(sent.triggered_at, events[2].timestamp);
        assert!(
            sent.occasion
                .as_str()
                .ends_with(&events[2].event_id.to_string())
        );
    }

    #[test]
    fn events_of_another_type_or_without_the_data_value_do_not_count() {
        let events = [
            failed("2021-02-28 10:00:00"),
            event("u", "payment_failed", "2021-02-28 10:01:00").with("reason", "expired"),
            event("u", "payment_failed", "2021-02-28 10:02:00"),
            event("u", "payment_succeeded", "2021-02-28 10:03:00").with("reason", "declined"),
            failed("2021-02-28 10:04:00"),
        ];
        assert!(replay().messages(&events).is_empty());
    }

    #[test]
    fn a_duplicated_event_counts_once_before_and_after_its_window_notified() {
        let (a, b, c) = (
            failed("2021-02-28 10:00:00"),
            failed("2021-02-28 10:01:00"),
            failed("2021-02-28 10:02:00"),
        );
        let mut replay = replay();
        let before = replay.messages(&[a.clone(), a.clone(), b.clone()]);
        assert!(before.is_empty(), "{before:?}");
        assert_eq!(replay.messages(std::slice::from_ref(&c)).len(), 1);
        let after = replay.messages(&[a, b, c]);
        assert!(after.is_empty(), "{after:?}");
    }

    #[test]
    fn the_same_history_gives_the_same_occasion_whichever_evaluation_decides_it() {
        let events = [
            failed("2021-02-28 10:00:00"),
            failed("2021-02-28 10:01:00"),
            failed("2021-02-28 10:02:00"),
        ];
        let mut first = replay();
        let mut again = replay();
        let key = |replay: &mut Replay| -> Vec<_> {
            events
                .iter()
                .flat_map(|e| replay.feed(e).notifications)
                .map(|n| n.occasion)
                .collect()
        };
        assert_eq!(key(&mut first), key(&mut again));
    }

    #[test]
    fn an_event_older_than_the_window_is_dropped_and_a_late_one_inside_it_counts() {
        let rules = RuleSet::from_toml_str(RULE).expect("valid rule");
        let mut replay = replay();
        replay.feed(&failed("2021-02-28 12:00:00"));
        replay.feed(&failed("2021-02-28 12:30:00"));
        let too_old = failed("2021-02-28 11:15:00");
        let state = replay.state("u");
        let outcome = evaluate(&rules, &state, &too_old.as_rule_event());
        assert!(outcome.notifications.is_empty(), "outside the window");
        let late = failed("2021-02-28 11:45:00");
        let outcome = evaluate(&rules, &state, &late.as_rule_event());
        assert_eq!(outcome.notifications.len(), 1, "inside the window");
    }
}

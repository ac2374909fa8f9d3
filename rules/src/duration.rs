//! Duration rules: a finish event that follows its start by more than a threshold is an occasion.

use crate::engine::Context;
use crate::event::RuleEvent;
use crate::names::{EventKind, OccasionKey, RuleName};
use crate::state::{Notification, OpenPair, Outcome, PairKey, StateChange};
use crate::template::{Builtin, Template, Values};
use chrono::TimeDelta;
use serde_json::Value;

/// The placeholders a duration rule's message may use besides `data.<key>`.
pub(crate) const OFFERED: &[Builtin] = &[Builtin::Rule, Builtin::UserId, Builtin::Minutes];

/// When `finish` follows the matching `start` (same user, same value of `pair_on` in the data) by strictly
/// more than `longer_than`, notify. A `cancel` event closes the pair silently; a start while the pair is
/// open starts it again. The message's `data.<key>` reads the finish event first, then the start event.
#[derive(Debug, Clone)]
pub struct DurationRule {
    pub(crate) name: RuleName,
    pub(crate) start: EventKind,
    pub(crate) finish: EventKind,
    pub(crate) cancel: Vec<EventKind>,
    pub(crate) pair_on: String,
    pub(crate) longer_than: TimeDelta,
    pub(crate) message: Template,
}

enum Role {
    Start,
    Finish,
    Cancel,
}

impl DurationRule {
    /// The rule's name.
    pub fn name(&self) -> &RuleName {
        &self.name
    }

    /// Adds to `out` what `event` means for this rule, given the user's state before it.
    pub(crate) fn evaluate(&self, cx: &Context<'_>, out: &mut Outcome) {
        let Some(role) = self.role(cx.event) else {
            return;
        };
        let Some(key) = self.pair_key(cx.event) else {
            return;
        };
        match role {
            Role::Start => self.open(cx, key, out),
            Role::Finish => self.finish(cx, key, out),
            Role::Cancel if cx.state.pair(&key).is_some() => {
                out.changes.push(StateChange::ClosePair(key))
            }
            Role::Cancel => {}
        }
    }

    fn role(&self, event: &RuleEvent<'_>) -> Option<Role> {
        if self.start.matches(event) {
            Some(Role::Start)
        } else if self.finish.matches(event) {
            Some(Role::Finish)
        } else {
            self.cancel
                .iter()
                .any(|kind| kind.matches(event))
                .then_some(Role::Cancel)
        }
    }

    fn pair_key(&self, event: &RuleEvent<'_>) -> Option<PairKey> {
        let value = match event.data.get(&self.pair_on)? {
            Value::String(text) if !text.is_empty() => text.clone(),
            Value::Number(number) => number.to_string(),
            _ => return None,
        };
        Some(PairKey {
            rule: self.name.clone(),
            value,
        })
    }

    fn open(&self, cx: &Context<'_>, key: PairKey, out: &mut Outcome) {
        let Context {
            state,
            event,
            user_id,
        } = *cx;
        let already_open = state
            .pair(&key)
            .is_some_and(|pair| pair.start_event_id == event.event_id);
        if already_open {
            return;
        }
        let data = self
            .message
            .data_keys()
            .filter_map(|k| Some((k.to_owned(), event.data.get(k)?.clone())))
            .collect();
        out.changes.push(StateChange::OpenPair(OpenPair {
            key,
            user_id: user_id.to_owned(),
            start_event_id: event.event_id,
            started_at: event.timestamp,
            data,
        }));
    }

    fn finish(&self, cx: &Context<'_>, key: PairKey, out: &mut Outcome) {
        let Context {
            state,
            event,
            user_id,
        } = *cx;
        let Some(pair) = state.pair(&key) else { return };
        out.changes.push(StateChange::ClosePair(key));
        let trained = event.timestamp - pair.started_at;
        if trained <= self.longer_than {
            return;
        }
        let values = Values {
            rule: &self.name,
            user_id,
            minutes: Some(trained.num_minutes()),
            window_minutes: None,
            count: None,
            data: &[event.data, &pair.data],
        };
        out.notifications.push(Notification {
            rule: self.name.clone(),
            user_id: user_id.to_owned(),
            occasion: OccasionKey::new(&self.name, user_id, event.event_id),
            message: self.message.render(&values),
            triggered_at: event.timestamp,
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::testkit::{Replay, event};

    const START: &str = "training_program_started";
    const FINISH: &str = "training_program_finished";

    #[test]
    fn finishing_congratulates_only_beyond_30_minutes_with_whole_minutes() {
        let cases = [
            ("2021-02-28 10:29:59", None),
            ("2021-02-28 10:30:00", None),
            ("2021-02-28 10:30:01", Some("30 minutes")),
            ("2021-02-28 10:36:18", Some("36 minutes")),
            ("2021-02-28 12:00:00", Some("120 minutes")),
        ];
        for (finished, expected) in cases {
            let mut replay = Replay::seed();
            replay.feed(&event("u", START, "2021-02-28 10:00:00").program());
            let sent = replay.messages(&[event("u", FINISH, finished).program()]);
            match expected {
                Some(minutes) => assert!(
                    sent.len() == 1 && sent[0].contains(minutes),
                    "{finished}: {sent:?}"
                ),
                None => assert!(sent.is_empty(), "{finished}: {sent:?}"),
            }
            assert!(
                replay.state("u").pairs.is_empty(),
                "{finished}: the finish closes the pair"
            );
        }
    }

    #[test]
    fn the_message_names_the_title_from_the_start_or_falls_back() {
        let cases = [
            (Some("HIIT"), None, "36 minutes in HIIT."),
            (None, Some("Yoga"), "36 minutes in Yoga."),
            (Some("HIIT"), Some("HIIT 2"), "36 minutes in HIIT 2."),
            (None, None, "36 minutes in your training program."),
        ];
        for (start_title, finish_title, expected) in cases {
            let mut start = event("u", START, "2021-02-28 10:00:00").program();
            let mut finish = event("u", FINISH, "2021-02-28 10:36:18").program();
            if let Some(title) = start_title {
                start = start.with("training_program_title", title);
            }
            if let Some(title) = finish_title {
                finish = finish.with("training_program_title", title);
            }
            let sent = Replay::seed().messages(&[start, finish]);
            assert!(sent.len() == 1 && sent[0].ends_with(expected), "{sent:?}");
        }
    }

    #[test]
    fn a_cancelled_program_closes_the_pair_without_a_notification() {
        let mut replay = Replay::seed();
        let events = [
            event("u", START, "2021-02-28 10:00:00").program(),
            event("u", "training_program_cancelled", "2021-02-28 10:40:00").program(),
            event("u", FINISH, "2021-02-28 10:45:00").program(),
        ];
        assert!(replay.messages(&events).is_empty());
        assert!(replay.state("u").pairs.is_empty());
    }

    #[test]
    fn a_finish_without_a_start_changes_nothing() {
        let mut replay = Replay::seed();
        let outcome = replay.feed(&event("u", FINISH, "2021-02-28 10:45:00").program());
        assert!(outcome.is_empty());
    }

    #[test]
    fn pairs_match_only_the_same_program() {
        let events = [
            event("u", START, "2021-02-28 10:00:00").program(),
            event("u", FINISH, "2021-02-28 10:45:00").with("training_program_id", "other"),
        ];
        let mut replay = Replay::seed();
        assert!(replay.messages(&events).is_empty());
        assert_eq!(replay.state("u").pairs.len(), 1, "the 2352 pair stays open");
    }

    #[test]
    fn a_start_without_the_pairing_key_is_ignored() {
        let outcome = Replay::seed().feed(&event("u", START, "2021-02-28 10:00:00"));
        assert!(outcome.is_empty());
    }

    #[test]
    fn a_duplicated_start_changes_nothing_and_a_duplicated_finish_gives_the_same_occasion() {
        let mut replay = Replay::seed();
        let start = event("u", START, "2021-02-28 10:00:00").program();
        replay.feed(&start);
        assert!(replay.feed(&start).is_empty());
        let finish = event("u", FINISH, "2021-02-28 10:40:00").program();
        let state = replay.state("u");
        let first = crate::evaluate(&replay.rules, &state, &finish.as_rule_event());
        let again = crate::evaluate(&replay.rules, &state, &finish.as_rule_event());
        assert_eq!(first.notifications.len(), 1);
        assert_eq!(
            first.notifications[0].occasion,
            again.notifications[0].occasion
        );
        assert!(
            first.notifications[0]
                .occasion
                .as_str()
                .ends_with(&finish.event_id.to_string())
        );
    }
}

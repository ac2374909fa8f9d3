//! The pure transition: a user's state and one event in, an [`Outcome`] out.

use crate::absence;
use crate::event::RuleEvent;
use crate::rule_set::{Rule, RuleSet};
use crate::state::{Outcome, UserRuleState};

/// What every rule sees while evaluating one event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub state: &'a UserRuleState,
    pub event: &'a RuleEvent<'a>,
    pub user_id: &'a str,
}

/// Evaluates one event of a user against all rules, given that user's state before the event.
///
/// Pure: reads no clock and changes nothing; the caller applies the outcome (see [`crate::state`] for
/// the contract). Events without a user id, and event types no rule names, give an empty outcome.
/// Absence timers are settled first (an event stamped past a deadline fires that timer, an expected
/// event within it disarms it), then each rule reacts to the event.
pub fn evaluate(rules: &RuleSet, state: &UserRuleState, event: &RuleEvent<'_>) -> Outcome {
    let mut out = Outcome::default();
    let Some(user_id) = event.user_id else {
        return out;
    };
    let cx = Context {
        state,
        event,
        user_id,
    };
    let pending = absence::settle(rules, &cx, &mut out);
    for rule in rules.rules() {
        match rule {
            Rule::Duration(duration) => duration.evaluate(&cx, &mut out),
            Rule::Absence(absence) => absence.arm(&cx, &pending, &mut out),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Replay, TestEvent, at, event};

    /// The seed's five sample events, in order.
    fn sample_events() -> [TestEvent; 5] {
        [
            event("foo2", "app_launch", "2021-02-28 16:22:52"),
            event("foo1", "training_program_started", "2021-02-28 16:23:25")
                .program()
                .with("training_program_title", "7 Minutes of HIIT Training"),
            event("foo2", "training_program_started", "2021-02-28 16:52:00").program(),
            event("foo2", "training_program_cancelled", "2021-02-28 16:54:21").program(),
            event("foo1", "training_program_finished", "2021-02-28 16:59:43").program(),
        ]
    }

    #[test]
    fn the_seed_sample_congratulates_foo1_for_36_minutes_and_nudges_foo2() {
        let mut replay = Replay::seed();
        let sent: Vec<_> = sample_events()
            .iter()
            .flat_map(|e| replay.feed(e).notifications)
            .collect();
        let summary: Vec<_> = sent
            .iter()
            .map(|n| (n.rule.as_str(), n.user_id.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("start_training_nudge", "foo2"),
                ("daily_training_dose", "foo1")
            ]
        );
        assert_eq!(sent[0].triggered_at, at("2021-02-28 16:32:52"));
        assert_eq!(
            sent[1].message,
            "Congratulations on your daily training dose! You trained 36 minutes in 7 Minutes of HIIT Training."
        );
        assert!(
            replay
                .states
                .values()
                .all(|s| s.pairs.is_empty() && s.timers.is_empty())
        );
    }

    #[test]
    fn replaying_the_sample_gives_the_same_occasion_keys() {
        let events = sample_events();
        let keys = |replay: &mut Replay| -> Vec<_> {
            events
                .iter()
                .flat_map(|e| replay.feed(e).notifications)
                .map(|n| n.occasion)
                .collect()
        };
        assert_eq!(keys(&mut Replay::seed()), keys(&mut Replay::seed()));
    }

    #[test]
    fn events_without_a_user_or_of_unknown_types_match_no_rule() {
        let mut anonymous = event("u", "app_launch", "2021-02-28 10:00:00");
        anonymous.user_id = None;
        let mut other_category = event("u", "app_launch", "2021-02-28 10:00:00");
        other_category.category = "shop".into();
        let cases = [
            anonymous,
            other_category,
            event("u", "song_played", "2021-02-28 10:00:00"),
        ];
        for case in cases {
            assert!(Replay::seed().feed(&case).is_empty(), "{case:?}");
        }
    }

    #[test]
    fn state_and_outcomes_survive_a_json_round_trip() {
        let mut replay = Replay::seed();
        let outcome = replay.feed(&event("u", "app_launch", "2021-02-28 10:00:00"));
        replay.feed(&event("u", "training_program_started", "2021-02-28 10:20:00").program());
        let state = replay.state("u");
        let json = serde_json::to_string(&state).expect("serializes");
        assert_eq!(
            serde_json::from_str::<UserRuleState>(&json).expect("deserializes"),
            state
        );
        let json = serde_json::to_string(&outcome).expect("serializes");
        assert_eq!(
            serde_json::from_str::<Outcome>(&json).expect("deserializes"),
            outcome
        );
    }
}

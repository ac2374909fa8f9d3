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
/// Absence timers are settled first (an expected event stamped within a timer's window disarms it), then
/// each rule reacts to the event. No event fires a timer, not even one stamped past its deadline: that
/// is [`crate::fire_due_timers`]' job, by the wall clock, once late events can no longer arrive.
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
    let open = absence::settle(rules, &cx, &mut out);
    for rule in rules.rules() {
        match rule {
            Rule::Duration(duration) => duration.evaluate(&cx, &mut out),
            Rule::Absence(absence) => absence.arm(&cx, &open, &mut out),
            Rule::Count(count) => count.evaluate(&cx, &mut out),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Replay, at, event, sample_events};
    use chrono::{DateTime, Utc};

    #[test]
    fn the_seed_sample_congratulates_foo1_for_36_minutes_and_nudges_foo2() {
        let mut replay = Replay::seed();
        let mut sent: Vec<_> = sample_events()
            .iter()
            .flat_map(|e| replay.feed(e).notifications)
            .collect();
        sent.extend(replay.sweep(DateTime::<Utc>::MAX_UTC));
        let summary: Vec<_> = sent
            .iter()
            .map(|n| (n.rule.as_str(), n.user_id.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("daily_training_dose", "foo1"),
                ("start_training_nudge", "foo2")
            ]
        );
        assert_eq!(sent[1].triggered_at, at("2021-02-28 16:32:52"));
        assert_eq!(
            sent[0].message,
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
            let mut sent: Vec<_> = events
                .iter()
                .flat_map(|e| replay.feed(e).notifications)
                .collect();
            sent.extend(replay.sweep(DateTime::<Utc>::MAX_UTC));
            sent.into_iter().map(|n| n.occasion).collect()
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

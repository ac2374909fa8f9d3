//! Absence rules: a trigger event not followed by an expected event within a window is an occasion.

use crate::engine::Context;
use crate::event::RuleEvent;
use crate::names::{EventKind, OccasionKey, RuleName};
use crate::rule_set::RuleSet;
use crate::state::{AbsenceTimer, Notification, Outcome, StateChange};
use crate::template::{Builtin, Template, Values};
use chrono::{DateTime, TimeDelta, Utc};

/// The placeholders an absence rule's message may use besides `data.<key>`.
pub(crate) const OFFERED: &[Builtin] = &[Builtin::Rule, Builtin::UserId, Builtin::WindowMinutes];

/// When `trigger` is not followed by any `expected` event of the same user stamped within `within`
/// (deadline included), notify. A trigger stamped while one of the rule's timers is still open (its
/// deadline not yet passed at the trigger's timestamp) is covered by it; a later trigger arms a timer of
/// its own, even while the earlier one waits for the wall clock, so every occasion is counted once. The
/// message is rendered when the timer is armed (`data.<key>` reads the trigger event), so a timer fires
/// with its stored text even if its rule is later removed.
#[derive(Debug, Clone)]
pub struct AbsenceRule {
    pub(crate) name: RuleName,
    pub(crate) trigger: EventKind,
    pub(crate) expected: Vec<EventKind>,
    pub(crate) within: TimeDelta,
    pub(crate) message: Template,
}

impl AbsenceRule {
    /// The rule's name.
    pub fn name(&self) -> &RuleName {
        &self.name
    }

    fn expects(&self, event: &RuleEvent<'_>) -> bool {
        self.expected.iter().any(|kind| kind.matches(event))
    }

    /// Arms a timer when the event is this rule's trigger and none of the rule's `open` timers covers it.
    pub(crate) fn arm(&self, cx: &Context<'_>, open: &[&AbsenceTimer], out: &mut Outcome) {
        if !self.trigger.matches(cx.event) || open.iter().any(|t| t.rule == self.name) {
            return;
        }
        let values = Values {
            rule: &self.name,
            user_id: cx.user_id,
            minutes: None,
            window_minutes: Some(self.within.num_minutes()),
            count: None,
            data: &[cx.event.data],
        };
        out.changes.push(StateChange::ArmTimer(AbsenceTimer {
            occasion: OccasionKey::new(&self.name, cx.user_id, cx.event.event_id),
            rule: self.name.clone(),
            user_id: cx.user_id.to_owned(),
            trigger_event_id: cx.event.event_id,
            deadline: cx.event.timestamp + self.within,
            trigger_received_at: cx.event.received_at,
            message: self.message.render(&values),
        }));
    }
}

/// Settles the user's timers against a new event: an expected event stamped within a timer's window
/// (deadline included) disarms it. Answers the timers still open at the event's timestamp, which cover a
/// new trigger of their rule.
///
/// An event stamped past a deadline fires nothing: only the wall clock does ([`fire_due_timers`]). With
/// parallel workers a user's later events can be evaluated before an earlier one is stored; were they
/// to fire the timer, a start stamped in time but stored a moment later would come too late to disarm it.
pub(crate) fn settle<'s>(
    rules: &RuleSet,
    cx: &Context<'s>,
    out: &mut Outcome,
) -> Vec<&'s AbsenceTimer> {
    let mut open = Vec::new();
    for timer in &cx.state.timers {
        if cx.event.timestamp > timer.deadline {
            continue;
        }
        if rules
            .absence(&timer.rule)
            .is_some_and(|rule| rule.expects(cx.event))
        {
            out.changes
                .push(StateChange::DisarmTimer(timer.occasion.clone()));
        } else {
            open.push(timer);
        }
    }
    open
}

pub(crate) fn fire(timer: &AbsenceTimer, out: &mut Outcome) {
    out.changes
        .push(StateChange::DisarmTimer(timer.occasion.clone()));
    out.notifications.push(Notification {
        rule: timer.rule.clone(),
        user_id: timer.user_id.clone(),
        occasion: timer.occasion.clone(),
        message: timer.message.clone(),
        triggered_at: timer.deadline,
    });
}

/// How long past a timer's deadline (or its trigger's arrival, if later) to wait for late events before
/// firing it by the wall clock. Default: 60 seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lateness(TimeDelta);

impl Lateness {
    /// A lateness of `seconds`.
    pub fn from_secs(seconds: u32) -> Self {
        Self(TimeDelta::seconds(i64::from(seconds)))
    }
}

impl Default for Lateness {
    fn default() -> Self {
        Self::from_secs(60)
    }
}

/// When the wall clock may fire `timer` for a user who sent nothing more: `max(deadline, received_at) +
/// lateness`. Until then an expected event, stamped in time but still in transit, may yet disarm it.
pub fn due_at(timer: &AbsenceTimer, lateness: Lateness) -> DateTime<Utc> {
    timer.deadline.max(timer.trigger_received_at) + lateness.0
}

/// Fires every timer whose [`due_at`] is at or before `now` (the wall clock, passed in).
///
/// Call it under the same per-user lock as [`crate::evaluate`], with the timers as stored.
pub fn fire_due_timers(timers: &[AbsenceTimer], now: DateTime<Utc>, lateness: Lateness) -> Outcome {
    let mut out = Outcome::default();
    timers
        .iter()
        .filter(|timer| due_at(timer, lateness) <= now)
        .for_each(|timer| fire(timer, &mut out));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Replay, TestEvent, at, event};

    const LAUNCH: &str = "app_launch";
    const START: &str = "training_program_started";

    fn launch(time: &str) -> TestEvent {
        event("u", LAUNCH, time)
    }

    fn start(time: &str) -> TestEvent {
        event("u", START, time).program()
    }

    #[test]
    fn a_start_within_ten_minutes_prevents_the_nudge_and_a_later_one_does_not() {
        let cases = [
            ("2021-02-28 10:09:59", false),
            ("2021-02-28 10:10:00", false),
            ("2021-02-28 10:10:01", true),
            ("2021-02-28 11:00:00", true),
        ];
        for (started, nudged) in cases {
            let mut replay = Replay::seed();
            let events = [launch("2021-02-28 10:00:00"), start(started)];
            assert_eq!(
                replay.messages_in_the_end(&events).len(),
                usize::from(nudged),
                "{started}"
            );
            assert!(
                replay.state("u").timers.is_empty(),
                "{started}: the timer is settled either way"
            );
        }
    }

    #[test]
    fn no_event_fires_a_timer_not_even_one_stamped_past_its_deadline() {
        let cases = [
            event("u", "unknown_tap", "2021-02-28 10:05:00"),
            event("u", "unknown_tap", "2021-02-28 10:10:01"),
            start("2021-02-28 10:30:00"),
            event("u", "training_program_finished", "2021-02-28 10:40:00").program(),
            launch("2021-02-28 10:30:00"),
        ];
        for later in cases {
            let mut replay = Replay::seed();
            replay.feed(&launch("2021-02-28 10:00:00"));
            let outcome = replay.feed(&later);
            assert!(outcome.notifications.is_empty(), "{later:?}");
            let first = &replay.state("u").timers[0];
            assert_eq!(first.deadline, at("2021-02-28 10:10:00"), "{later:?}");
        }
    }

    #[test]
    fn a_start_in_time_still_disarms_the_timer_when_rebuilt_after_later_events() {
        // A worker evaluated the launch and a later event first; the start, stored after them, makes it
        // rebuild the user's state in timestamp order.
        let (first, late, started) = (
            launch("2021-02-28 08:00:00"),
            event("u", "training_program_finished", "2021-02-28 08:39:00").program(),
            start("2021-02-28 08:09:00"),
        );
        let mut before = Replay::seed();
        assert!(before.messages(&[first.clone(), late.clone()]).is_empty());
        let mut rebuilt = Replay::seed();
        let sent = rebuilt.messages_in_the_end(&[first, started, late]);
        assert!(sent.is_empty(), "{sent:?}");
    }

    #[test]
    fn the_nudge_is_triggered_at_the_deadline_with_the_launch_as_occasion() {
        let mut replay = Replay::seed();
        let first = launch("2021-02-28 10:00:00");
        replay.feed(&first);
        replay.feed(&start("2021-02-28 10:30:00"));
        let sent = replay.sweep(DateTime::<Utc>::MAX_UTC);
        let nudge = &sent[0];
        assert_eq!(nudge.triggered_at, at("2021-02-28 10:10:00"));
        assert_eq!(
            nudge.occasion,
            OccasionKey::new(&nudge.rule, "u", first.event_id)
        );
        assert!(nudge.message.contains("Start a training program now"));
    }

    #[test]
    fn a_launch_is_covered_only_while_an_earlier_timer_is_open_at_its_timestamp() {
        let cases: [(&[TestEvent], usize); 6] = [
            (
                &[launch("2021-02-28 10:00:00"), launch("2021-02-28 10:03:00")],
                1,
            ),
            (
                &[launch("2021-02-28 10:00:00"), launch("2021-02-28 10:10:00")],
                1,
            ),
            (
                &[launch("2021-02-28 10:00:00"), launch("2021-02-28 10:12:00")],
                2,
            ),
            (
                &[
                    launch("2021-02-28 10:00:00"),
                    launch("2021-02-28 10:03:00"),
                    launch("2021-02-28 10:12:00"),
                ],
                2,
            ),
            (
                &[
                    launch("2021-02-28 10:00:00"),
                    launch("2021-02-28 10:12:00"),
                    start("2021-02-28 10:15:00"),
                ],
                1,
            ),
            (
                &[
                    launch("2021-02-28 10:00:00"),
                    start("2021-02-28 10:05:00"),
                    launch("2021-02-28 10:12:00"),
                ],
                1,
            ),
        ];
        for (events, nudges) in cases {
            let sent = Replay::seed().messages_in_the_end(events);
            assert_eq!(sent.len(), nudges, "{events:?}");
        }
    }

    #[test]
    fn a_duplicated_launch_gives_the_same_occasion_key() {
        let first = launch("2021-02-28 10:00:00");
        let (mut once, mut again) = (Replay::seed(), Replay::seed());
        once.feed(&first);
        again.feed(&first);
        assert!(
            again.feed(&first).is_empty(),
            "a duplicate while pending changes nothing"
        );
        assert_eq!(
            once.state("u").timers[0].occasion,
            again.state("u").timers[0].occasion
        );
    }

    #[test]
    fn due_at_waits_for_lateness_past_the_deadline_or_a_late_arrival() {
        let cases = [
            (
                "2021-02-28 10:00:01",
                Lateness::default(),
                "2021-02-28 10:11:00",
            ),
            (
                "2021-02-28 10:00:01",
                Lateness::from_secs(0),
                "2021-02-28 10:10:00",
            ),
            (
                "2021-02-28 10:20:00",
                Lateness::default(),
                "2021-02-28 10:21:00",
            ),
        ];
        for (received, lateness, due) in cases {
            let mut first = launch("2021-02-28 10:00:00");
            first.received_at = at(received);
            let mut replay = Replay::seed();
            replay.feed(&first);
            assert_eq!(
                due_at(&replay.state("u").timers[0], lateness),
                at(due),
                "{received}"
            );
        }
    }

    #[test]
    fn the_wall_clock_fires_a_timer_only_once_it_is_due() {
        let mut replay = Replay::seed();
        replay.feed(&launch("2021-02-28 10:00:00"));
        let timers = replay.state("u").timers;
        let cases = [
            ("2021-02-28 10:10:59", 0),
            ("2021-02-28 10:11:00", 1),
            ("2021-02-28 12:00:00", 1),
        ];
        for (now, fired) in cases {
            let outcome = fire_due_timers(&timers, at(now), Lateness::default());
            assert_eq!(outcome.notifications.len(), fired, "{now}");
            assert_eq!(
                outcome.changes.len(),
                fired,
                "{now}: a fired timer is disarmed"
            );
        }
        let fired = fire_due_timers(&timers, at("2021-02-28 10:11:00"), Lateness::default());
        assert_eq!(
            fired.notifications[0].triggered_at,
            at("2021-02-28 10:10:00")
        );
    }
}

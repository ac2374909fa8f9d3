//! The seed's sample arrives in every order, as parallel jobs may store it, and still notifies the same.
//!
//! The harness works like the worker: per user it keeps the stored events and a cursor (the last
//! evaluated event); an event newer than the cursor is evaluated against the state, an older one makes it
//! rebuild the user's state from scratch over everything stored. Notifications go to an outbox keyed by
//! occasion, as the database's UNIQUE key does. A sweeper runs after every arrival at that arrival's wall
//! time, and once more when every timer is due.

use crate::testkit::{TestEvent, event, sample_events};
use crate::{
    Lateness, Notification, OccasionKey, RuleSet, UserRuleState, evaluate, fire_due_timers,
};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeMap;

/// One user as the worker keeps them: stored events, rule state, cursor.
#[derive(Default)]
struct User {
    stored: Vec<TestEvent>,
    state: UserRuleState,
    cursor: Option<DateTime<Utc>>,
}

struct Worker {
    rules: RuleSet,
    users: BTreeMap<String, User>,
    outbox: BTreeMap<OccasionKey, Notification>,
}

impl Worker {
    fn new() -> Self {
        Self {
            rules: RuleSet::seed().expect("seed rules load"),
            users: BTreeMap::new(),
            outbox: BTreeMap::new(),
        }
    }

    fn arrive(&mut self, event: TestEvent) {
        let user = self
            .users
            .entry(event.user_id.clone().expect("sample events have users"))
            .or_default();
        if user.cursor.is_some_and(|cursor| event.timestamp < cursor) {
            user.state = UserRuleState::default();
            user.cursor = None;
        }
        user.stored.push(event);
        user.stored.sort_by_key(|e| e.timestamp);
        let unevaluated: Vec<_> = user
            .stored
            .iter()
            .filter(|e| user.cursor.is_none_or(|cursor| e.timestamp > cursor))
            .collect();
        for event in unevaluated {
            let outcome = evaluate(&self.rules, &user.state, &event.as_rule_event());
            user.state.apply(&outcome.changes);
            user.cursor = Some(event.timestamp);
            for sent in outcome.notifications {
                self.outbox.entry(sent.occasion.clone()).or_insert(sent);
            }
        }
    }

    fn sweep(&mut self, now: DateTime<Utc>) {
        for user in self.users.values_mut() {
            let outcome = fire_due_timers(&user.state.timers, now, Lateness::default());
            user.state.apply(&outcome.changes);
            for sent in outcome.notifications {
                self.outbox.entry(sent.occasion.clone()).or_insert(sent);
            }
        }
    }
}

/// Every order of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut all = Vec::new();
    for shorter in permutations(n - 1) {
        for at in 0..=shorter.len() {
            let mut order = shorter.clone();
            order.insert(at, n - 1);
            all.push(order);
        }
    }
    all
}

/// Feeds `events` in `order`, one arrival every `spacing` of wall time, sweeping as it goes; answers
/// the outbox as (rule, user, message), sorted.
fn run(events: &[TestEvent], order: &[usize], spacing: TimeDelta) -> Vec<(String, String, String)> {
    let mut worker = Worker::new();
    let mut now = crate::testkit::at("2026-11-30 08:00:00");
    for &index in order {
        let mut event = events[index].clone();
        event.received_at = now;
        worker.arrive(event);
        worker.sweep(now);
        now += spacing;
    }
    worker.sweep(now + TimeDelta::hours(1));
    let mut sent: Vec<_> = worker
        .outbox
        .into_values()
        .map(|n| (n.rule.as_str().to_owned(), n.user_id, n.message))
        .collect();
    sent.sort();
    sent
}

/// One second apart no sweep fires early; five minutes apart sweeps fire between arrivals.
const SPACINGS: [TimeDelta; 2] = [TimeDelta::seconds(1), TimeDelta::minutes(5)];

#[test]
fn every_arrival_order_of_the_sample_congratulates_foo1_and_nudges_foo2_once() {
    let orders = permutations(5);
    assert_eq!(orders.len(), 120);
    let congratulation = "Congratulations on your daily training dose! You trained 36 minutes in 7 \
                          Minutes of HIIT Training.";
    let events = sample_events();
    for spacing in SPACINGS {
        for order in &orders {
            let sent = run(&events, order, spacing);
            let summary: Vec<_> = sent
                .iter()
                .map(|(rule, user, _)| (rule.as_str(), user.as_str()))
                .collect();
            assert_eq!(
                summary,
                [
                    ("daily_training_dose", "foo1"),
                    ("start_training_nudge", "foo2")
                ],
                "{order:?} {spacing}"
            );
            assert_eq!(sent[0].2, congratulation, "{order:?} {spacing}");
        }
    }
}

#[test]
fn a_start_in_time_is_never_overtaken_by_later_events_in_any_arrival_order() {
    let events = [
        event("u", "app_launch", "2021-02-28 08:00:00"),
        event("u", "training_program_started", "2021-02-28 08:09:00").program(),
        event("u", "training_program_finished", "2021-02-28 08:39:00").program(),
        event("u", "app_launch", "2021-02-28 08:40:00"),
    ];
    // All within the lateness: a start arriving later than that is too late by design.
    for order in permutations(events.len()) {
        // Only the 08:40 launch, which nothing follows, is nudged.
        let sent = run(&events, &order, TimeDelta::seconds(1));
        let nudged: Vec<_> = sent
            .iter()
            .filter(|(rule, ..)| rule == "start_training_nudge")
            .collect();
        assert_eq!(nudged.len(), 1, "{order:?}: {sent:?}");
    }
}

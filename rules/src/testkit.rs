//! Test helpers: owned events, a fixed clock and a replaying harness.

use crate::{
    Lateness, Notification, Outcome, RuleEvent, RuleSet, UserRuleState, evaluate, fire_due_timers,
};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// `"2021-02-28 16:22:52"` as UTC.
pub fn at(text: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .expect("test timestamp")
        .and_utc()
}

/// An owned event that lends itself as a [`RuleEvent`].
#[derive(Debug, Clone)]
pub struct TestEvent {
    pub event_id: Uuid,
    pub category: String,
    pub name: String,
    pub user_id: Option<String>,
    pub data: Map<String, Value>,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
}

/// A `fitness` event of `user` at `time`, received one second later.
pub fn event(user: &str, name: &str, time: &str) -> TestEvent {
    let timestamp = at(time);
    TestEvent {
        event_id: Uuid::new_v4(),
        category: "fitness".into(),
        name: name.into(),
        user_id: Some(user.into()),
        data: Map::new(),
        timestamp,
        received_at: timestamp + TimeDelta::seconds(1),
    }
}

impl TestEvent {
    /// Adds a data field.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.data.insert(key.into(), Value::String(value.into()));
        self
    }

    /// The same event for the `training_program_id` 2352.
    pub fn program(self) -> Self {
        self.with("training_program_id", "2352")
    }

    pub fn as_rule_event(&self) -> RuleEvent<'_> {
        RuleEvent {
            event_id: self.event_id,
            category: &self.category,
            name: &self.name,
            user_id: self.user_id.as_deref(),
            data: &self.data,
            timestamp: self.timestamp,
            received_at: self.received_at,
        }
    }
}

/// The seed's five sample events, in order.
pub fn sample_events() -> [TestEvent; 5] {
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

/// Feeds events to the seed rules the way a worker would: evaluate against the user's state, apply.
pub struct Replay {
    pub rules: RuleSet,
    pub states: BTreeMap<String, UserRuleState>,
}

impl Replay {
    pub fn seed() -> Self {
        Self::with(RuleSet::seed().expect("seed rules load"))
    }

    pub fn with(rules: RuleSet) -> Self {
        Self {
            rules,
            states: BTreeMap::new(),
        }
    }

    /// The state of `user` (empty if never seen).
    pub fn state(&self, user: &str) -> UserRuleState {
        self.states.get(user).cloned().unwrap_or_default()
    }

    pub fn feed(&mut self, event: &TestEvent) -> Outcome {
        let user = event.user_id.clone().unwrap_or_default();
        let state = self.states.entry(user).or_default();
        let outcome = evaluate(&self.rules, state, &event.as_rule_event());
        state.apply(&outcome.changes);
        outcome
    }

    /// Feeds all events and returns the messages sent, in order.
    pub fn messages(&mut self, events: &[TestEvent]) -> Vec<String> {
        events
            .iter()
            .flat_map(|e| self.feed(e).notifications)
            .map(|n| n.message)
            .collect()
    }

    /// Fires, as the sweeper would at `now` with the default lateness, every user's due timers.
    pub fn sweep(&mut self, now: DateTime<Utc>) -> Vec<Notification> {
        let mut sent = Vec::new();
        for state in self.states.values_mut() {
            let outcome = fire_due_timers(&state.timers, now, Lateness::default());
            state.apply(&outcome.changes);
            sent.extend(outcome.notifications);
        }
        sent
    }

    /// Feeds all events, then lets the wall clock pass every deadline; returns the messages sent, in order.
    pub fn messages_in_the_end(&mut self, events: &[TestEvent]) -> Vec<String> {
        let mut sent = self.messages(events);
        sent.extend(
            self.sweep(DateTime::<Utc>::MAX_UTC)
                .into_iter()
                .map(|n| n.message),
        );
        sent
    }
}

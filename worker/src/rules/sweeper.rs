//! Fires absence timers of users who sent nothing more, once the wall clock passes their due time and
//! the queue has stored everything accepted before it.

use super::SharedClock;
use crate::queue::Queue;
use chrono::{DateTime, TimeDelta, Utc};
use eye_rules::{AbsenceTimer, Lateness, Outcome, RuleName, StateChange, fire_due_timers};
use eye_store::{RuleUpdate, Store, StoreError, UserKey};
use std::collections::HashSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Users woken per sweep.
const BATCH: u64 = 500;

/// How the sweeper runs.
#[derive(Debug, Clone, Copy)]
pub struct SweeperSettings {
    /// How long past a timer's `max(deadline, received_at)` to wait for late events (`EYE_RULE_LATENESS`).
    pub lateness: Duration,
    /// Pause between sweeps.
    pub interval: Duration,
    /// The longest accepted events may take to reach the queue (the ingest deadline plus the push
    /// timeout): the queue's watermark sees a job only once it is pushed.
    pub in_transit: Duration,
}

/// Fires due timers. Timers live in the users' stored state, so a restart loses none; firing goes through
/// the same version-checked write as evaluation, and the outbox keeps one notification per occasion, so
/// none fires twice, with any number of sweepers.
#[derive(Clone)]
pub struct Sweeper {
    store: Store,
    clock: SharedClock,
    settings: SweeperSettings,
    queue: Option<Queue>,
}

impl Sweeper {
    /// A sweeper over `store`, reading the time from `clock`.
    pub fn new(store: Store, clock: SharedClock, settings: SweeperSettings) -> Self {
        Self {
            store,
            clock,
            settings,
            queue: None,
        }
    }

    /// Fires a timer only once the queue holds no job accepted before the timer was due: a backlog (workers
    /// down, a slow database) then delays absences instead of deciding them before the events that would
    /// have prevented them are stored.
    pub fn with_queue(mut self, queue: Queue) -> Self {
        self.queue = Some(queue);
        self
    }

    fn in_transit(&self) -> TimeDelta {
        TimeDelta::from_std(self.settings.in_transit).unwrap_or(TimeDelta::MAX)
    }

    /// Whole seconds: the rules crate's lateness granularity.
    fn lateness_secs(&self) -> u32 {
        u32::try_from(self.settings.lateness.as_secs()).unwrap_or(u32::MAX)
    }

    /// Sweeps every `interval` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(lateness = ?self.settings.lateness, "timer sweeper started");
        while !shutdown.is_cancelled() {
            if let Err(err) = self.sweep().await {
                tracing::warn!(error = %err, "sweeping rule timers failed; trying again");
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(self.settings.interval) => {}
            }
        }
    }

    /// Fires every timer due now; answers how many users had one.
    #[tracing::instrument(skip_all, err)]
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let Some(until) = self.settled_until().await else {
            return Ok(0);
        };
        let lateness = TimeDelta::seconds(i64::from(self.lateness_secs()));
        let users = self.store.users_to_wake(until - lateness, BATCH).await?;
        if users.is_empty() {
            return Ok(0);
        }
        // Read after the users: a rule deleted before this sweep began fires none of its timers.
        let live: HashSet<String> = self
            .store
            .live_rules()
            .await?
            .into_iter()
            .map(|r| r.name)
            .collect();
        for key in &users {
            self.fire(key, until, &live).await?;
        }
        Ok(users.len())
    }

    /// The time up to which every accepted event is stored and evaluated: the wall clock, held back by
    /// the queue's oldest unfinished job. `None` when the queue cannot tell (it is down, or its backlog
    /// too long to read cheaply): nothing fires then.
    async fn settled_until(&self) -> Option<DateTime<Utc>> {
        let now = self.clock.now();
        let Some(queue) = &self.queue else {
            return Some(now);
        };
        match queue.watermark().await {
            Ok(watermark) => watermark
                .settled_until(now)
                .map(|until| until - self.in_transit()),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the queue's progress; no timer fires now");
                None
            }
        }
    }

    async fn fire(
        &self,
        key: &UserKey,
        until: DateTime<Utc>,
        live: &HashSet<String>,
    ) -> Result<(), StoreError> {
        loop {
            let stored = self.store.rule_state(key).await?;
            // A user without a stored state has no timer.
            let Some(expected) = stored.version else {
                return Ok(());
            };
            let outcome = fire_live_timers(
                &stored.state.timers,
                until,
                Lateness::from_secs(self.lateness_secs()),
                |rule| live.contains(rule.as_str()),
            );
            if outcome.is_empty() {
                return Ok(());
            }
            let mut state = stored.state;
            state.apply(&outcome.changes);
            let update = RuleUpdate {
                key,
                expected,
                state: &state,
                cursor: stored.cursor,
                notifications: &outcome.notifications,
            };
            if self.store.save_rule_outcome(update).await? {
                tracing::info!(user = %key.user_id, fired = outcome.notifications.len(), "timers fired");
                return Ok(());
            }
        }
    }
}

/// Fires the due timers of live rules, and disarms without a word the timers of rules deleted since
/// they were armed: a deleted rule stops notifying.
fn fire_live_timers(
    timers: &[AbsenceTimer],
    until: DateTime<Utc>,
    lateness: Lateness,
    is_live: impl Fn(&RuleName) -> bool,
) -> Outcome {
    let (live, deleted): (Vec<AbsenceTimer>, Vec<AbsenceTimer>) = timers
        .iter()
        .cloned()
        .partition(|timer| is_live(&timer.rule));
    let mut outcome = fire_due_timers(&live, until, lateness);
    let disarm = deleted
        .into_iter()
        .map(|t| StateChange::DisarmTimer(t.occasion));
    outcome.changes.extend(disarm);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use eye_rules::OccasionKey;

    fn timer(rule: &str) -> AbsenceTimer {
        let rule = RuleName::parse(rule).expect("valid name");
        AbsenceTimer {
            occasion: OccasionKey::new(&rule, "u", uuid::Uuid::new_v4()),
            rule,
            user_id: "u".into(),
            trigger_event_id: uuid::Uuid::new_v4(),
            deadline: DateTime::<Utc>::UNIX_EPOCH,
            trigger_received_at: DateTime::<Utc>::UNIX_EPOCH,
            message: "m".into(),
        }
    }

    #[test]
    fn a_deleted_rules_timer_is_disarmed_without_a_notification() {
        let timers = [timer("kept"), timer("deleted")];
        let now = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::hours(1);
        let outcome = fire_live_timers(&timers, now, Lateness::default(), |r| r.as_str() == "kept");
        assert_eq!(outcome.notifications.len(), 1);
        assert_eq!(outcome.notifications[0].rule.as_str(), "kept");
        assert_eq!(outcome.changes.len(), 2, "both timers leave the state");
    }
}

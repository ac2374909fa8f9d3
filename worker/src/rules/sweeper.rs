//! Fires absence timers of users who sent nothing more, once the wall clock passes their due time.

use super::SharedClock;
use eye_rules::{Lateness, fire_due_timers};
use eye_store::{RuleUpdate, Store, StoreError, UserKey};
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
}

/// Fires due timers. Timers live in the users' stored state, so a restart loses none; firing goes through
/// the same version-checked write as evaluation, and the outbox keeps one notification per occasion, so
/// none fires twice, with any number of sweepers.
#[derive(Clone)]
pub struct Sweeper {
    store: Store,
    clock: SharedClock,
    settings: SweeperSettings,
}

impl Sweeper {
    /// A sweeper over `store`, reading the time from `clock`.
    pub fn new(store: Store, clock: SharedClock, settings: SweeperSettings) -> Self {
        Self {
            store,
            clock,
            settings,
        }
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
        let now = self.clock.now();
        let lateness = chrono::TimeDelta::seconds(i64::from(self.lateness_secs()));
        let users = self.store.users_to_wake(now - lateness, BATCH).await?;
        for key in &users {
            self.fire(key).await?;
        }
        Ok(users.len())
    }

    async fn fire(&self, key: &UserKey) -> Result<(), StoreError> {
        loop {
            let stored = self.store.rule_state(key).await?;
            let outcome = fire_due_timers(
                &stored.state.timers,
                self.clock.now(),
                Lateness::from_secs(self.lateness_secs()),
            );
            if outcome.is_empty() {
                return Ok(());
            }
            let mut state = stored.state;
            state.apply(&outcome.changes);
            let update = RuleUpdate {
                key,
                expected: stored.version,
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

//! Delivering the notifications outbox to `POST {EYE_NOTIFY_URL}/v1/notify`.
//!
//! Why a poller over the outbox rather than a queue job pushed after the commit: the notification row is
//! committed in the same transaction as the rule state that decided it, so nothing can be lost between
//! "decided" and "scheduled" (a crash after the commit but before a push would lose a pushed job). The
//! outbox *is* the queue: due rows are claimed with a lease (a conditional update, safe with several
//! workers on PostgreSQL and SQLite), sent with the notification id as `Idempotency-Key`, then marked.
//! A worker that dies mid-attempt leaves its lease to expire, and the attempt is repeated: delivery is
//! at least once, and exactly once for a notify service that honours the idempotency key.
//!
//! Each claim reads the clock itself: a poll's sends can take longer than a lease, and a lease computed
//! from the poll's start would already have expired when a later row is claimed, letting a second
//! worker send it too. Each claim also carries its own lease token, and the result is recorded only
//! under it: a result that comes back after the lease was lost changes nothing.

mod attempt;
mod backoff;

pub use backoff::NotifyRetry;

use crate::rules::SharedClock;
use attempt::Attempt;
use eye_store::{DeliveryResult, NotificationLease, NotificationRecord, Store, StoreError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Notifications claimed per poll.
const BATCH: u64 = 100;

/// How the notifier runs.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Base URL of the notify service; `None` records notifications as `undeliverable`.
    pub url: Option<String>,
    /// Longest wait for one answer.
    pub timeout: Duration,
    /// Pause between polls of the outbox when it is idle.
    pub poll_interval: Duration,
    /// Retry policy for transient failures.
    pub retry: NotifyRetry,
}

/// Why the notifier could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the notify HTTP client: {0}")]
pub struct NotifyError(#[from] reqwest::Error);

/// Delivers due notifications from the outbox (cheap to clone).
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    client: reqwest::Client,
    clock: SharedClock,
    settings: NotifySettings,
    lease: chrono::TimeDelta,
}

impl Notifier {
    /// A notifier over `store`'s outbox.
    pub fn new(
        store: Store,
        clock: SharedClock,
        settings: NotifySettings,
    ) -> Result<Self, NotifyError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()?;
        let lease = default_lease(settings.timeout);
        Ok(Self {
            store,
            client,
            clock,
            settings,
            lease,
        })
    }

    /// The same notifier holding each claim for `lease` instead of twice the timeout plus 30 seconds. A
    /// lease shorter than an attempt lets another worker send the notification again.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = chrono::TimeDelta::from_std(lease).unwrap_or(self.lease);
        self
    }

    /// Delivers until `shutdown`; an attempt in flight finishes first.
    pub async fn run(self, shutdown: CancellationToken) {
        match &self.settings.url {
            Some(url) => tracing::info!(%url, "notifier started"),
            None => tracing::warn!(
                "EYE_NOTIFY_URL is not set: notifications are recorded as undeliverable"
            ),
        }
        while !shutdown.is_cancelled() {
            let handled = self.deliver_due().await.unwrap_or_else(|err| {
                tracing::warn!(error = %err, "reading the notifications outbox failed");
                0
            });
            if handled > 0 {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// Attempts every due notification once; answers how many it attempted.
    #[tracing::instrument(skip_all, err)]
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let due = self
            .store
            .due_notifications(self.clock.now(), BATCH)
            .await?;
        let mut attempted = 0;
        for record in &due {
            // The time of this claim, not of the poll: earlier sends may have taken longer than a lease.
            let now = self.clock.now();
            let claimed = self
                .store
                .claim_notification(record.id, now, now + self.lease)
                .await?;
            if let Some(lease) = claimed {
                self.deliver(record, lease).await?;
                attempted += 1;
            }
        }
        Ok(attempted)
    }

    async fn deliver(
        &self,
        record: &NotificationRecord,
        lease: NotificationLease,
    ) -> Result<(), StoreError> {
        let result = match &self.settings.url {
            None => {
                tracing::warn!(notification = %record.id, user = %record.user_id, rule = %record.rule,
                    message = %record.message, "no EYE_NOTIFY_URL: notification undeliverable");
                DeliveryResult::Undeliverable
            }
            Some(url) => {
                let attempt = attempt::send(&self.client, url, record).await;
                self.verdict(record, attempt)
            }
        };
        log_result(record, &result);
        if !self
            .store
            .record_delivery(record.id, lease, &result)
            .await?
        {
            tracing::warn!(notification = %record.id, ?result,
                "the lease expired during the attempt: its result is not recorded");
        }
        Ok(())
    }

    fn verdict(&self, record: &NotificationRecord, attempt: Attempt) -> DeliveryResult {
        let attempts = record.attempts + 1;
        match attempt {
            Attempt::Delivered => DeliveryResult::Delivered,
            Attempt::Permanent { error } => DeliveryResult::Failed { error },
            Attempt::Transient { error, .. } if attempts >= self.settings.retry.max_attempts => {
                DeliveryResult::Failed {
                    error: format!("{error} (gave up after {attempts} attempts)"),
                }
            }
            Attempt::Transient { error, retry_after } => DeliveryResult::Retry {
                error,
                next_attempt_at: self.clock.now()
                    + self.settings.retry.delay(attempts, retry_after),
            },
        }
    }
}

/// Longer than any attempt, so a live attempt is never repeated by another worker.
fn default_lease(timeout: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(timeout * 2 + Duration::from_secs(30))
        .unwrap_or(chrono::TimeDelta::minutes(5))
}

fn log_result(record: &NotificationRecord, result: &DeliveryResult) {
    match result {
        DeliveryResult::Delivered => {
            tracing::info!(notification = %record.id, user = %record.user_id, "notification delivered")
        }
        DeliveryResult::Retry {
            error,
            next_attempt_at,
        } => tracing::warn!(
            notification = %record.id, %error, %next_attempt_at, "notification not delivered; will retry"
        ),
        DeliveryResult::Failed { error } => {
            tracing::error!(notification = %record.id, %error, "notification failed")
        }
        DeliveryResult::Undeliverable => {}
    }
}

//! Retrying transient failures for as long as they last: a job that was acknowledged to its client is
//! never given up because the database was away for a while.

use backon::{BackoffBuilder, ExponentialBuilder};
use eye_domain::Failure;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How transient failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    /// First delay.
    pub min_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Retries after the first attempt; `None` retries until the failure passes (or shutdown).
    pub max_retries: Option<usize>,
}

impl Default for RetrySettings {
    /// Until the failure passes: what queued jobs need.
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_retries: None,
        }
    }
}

/// Why a retried operation stopped without succeeding.
#[derive(Debug)]
pub(crate) enum Stopped<E> {
    /// It failed for a reason that retrying cannot change.
    Permanent(E),
    /// It was still failing transiently when shutdown came, or when a bounded budget ran out.
    GaveUp(E),
}

impl<E> Stopped<E> {
    /// The same stop, with the error converted.
    pub(crate) fn map<F>(self, convert: impl FnOnce(E) -> F) -> Stopped<F> {
        match self {
            Self::Permanent(err) => Stopped::Permanent(convert(err)),
            Self::GaveUp(err) => Stopped::GaveUp(convert(err)),
        }
    }
}

/// Runs operations with retries, sharing what it learns about the database with every job of the process
/// (cheap to clone).
#[derive(Clone)]
pub(crate) struct Retry {
    settings: RetrySettings,
    gate: DatabaseGate,
    shutdown: CancellationToken,
}

impl Retry {
    pub(crate) fn new(settings: RetrySettings, shutdown: CancellationToken) -> Self {
        Self {
            settings,
            gate: DatabaseGate::default(),
            shutdown,
        }
    }

    /// The same gate and shutdown, another budget.
    pub(crate) fn with_settings(&self, settings: RetrySettings) -> Self {
        Self {
            settings,
            ..self.clone()
        }
    }

    /// Whether the last operation of any job found the database failing.
    #[cfg(test)]
    pub(crate) fn database_failing(&self) -> bool {
        self.gate.failing.load(Ordering::Relaxed)
    }

    /// Runs `operation` until it succeeds or fails permanently; transient failures wait with capped,
    /// jittered exponential backoff, or until another job finds the database back.
    pub(crate) async fn run<T, E, F, Fut>(&self, mut operation: F) -> Result<T, Stopped<E>>
    where
        E: Failure + std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut delays = self.backoff();
        loop {
            let err = match operation().await {
                Ok(value) => {
                    self.gate.passing();
                    return Ok(value);
                }
                Err(err) if !err.is_transient() => return Err(Stopped::Permanent(err)),
                Err(err) => err,
            };
            self.gate.failing();
            let Some(delay) = delays.next() else {
                return Err(Stopped::GaveUp(err));
            };
            tracing::warn!(error = %err, ?delay, "transient failure; retrying");
            tokio::select! {
                () = self.shutdown.cancelled() => return Err(Stopped::GaveUp(err)),
                () = self.gate.wait_for_recovery(delay) => {}
            }
        }
    }

    fn backoff(&self) -> Box<dyn Iterator<Item = Duration> + Send> {
        let builder = ExponentialBuilder::default()
            .with_min_delay(self.settings.min_delay)
            .with_max_delay(self.settings.max_delay)
            .with_jitter();
        match self.settings.max_retries {
            Some(times) => Box::new(builder.with_max_times(times).build()),
            None => Box::new(builder.without_max_times().build()),
        }
    }
}

/// What a process's jobs know about the database: once one finds it failing, the others back off too,
/// and the first that gets through wakes them all at once (a circuit that closes by itself), so jobs
/// neither hammer a database that is down nor sleep long after it came back.
#[derive(Clone, Default)]
struct DatabaseGate {
    failing: Arc<AtomicBool>,
    recovered: Arc<Notify>,
}

impl DatabaseGate {
    fn failing(&self) {
        self.failing.store(true, Ordering::Relaxed);
    }

    fn passing(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("the database answers again");
            self.recovered.notify_waiters();
        }
    }

    async fn wait_for_recovery(&self, delay: Duration) {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.recovered.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eye_domain::Retryability;
    use std::sync::atomic::AtomicUsize;

    #[derive(Debug)]
    struct Flaky(Retryability);

    impl Failure for Flaky {
        fn retryability(&self) -> Retryability {
            self.0
        }
    }

    impl std::fmt::Display for Flaky {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    fn unlimited() -> Retry {
        Retry::new(RetrySettings::default(), CancellationToken::new())
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_is_retried_far_beyond_any_attempt_limit_until_it_passes() {
        let calls = AtomicUsize::new(0);
        let retry = unlimited();
        let result = retry
            .run(|| async {
                let n = calls.fetch_add(1, Ordering::Relaxed);
                if n < 100 {
                    Err(Flaky(Retryability::Transient))
                } else {
                    Ok(n)
                }
            })
            .await;
        assert!(matches!(result, Ok(100)), "{result:?}");
        assert!(!retry.database_failing(), "success closes the circuit");
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_stops_at_once() {
        let calls = AtomicUsize::new(0);
        let result: Result<(), _> = unlimited()
            .run(|| async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(Flaky(Retryability::Permanent))
            })
            .await;
        assert!(matches!(result, Err(Stopped::Permanent(_))));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_interrupts_a_retrying_operation() {
        let shutdown = CancellationToken::new();
        let retry = Retry::new(RetrySettings::default(), shutdown.clone());
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            shutdown.cancel();
        });
        let result: Result<(), _> = retry
            .run(|| async { Err(Flaky(Retryability::Transient)) })
            .await;
        assert!(matches!(result, Err(Stopped::GaveUp(_))));
        assert!(retry.database_failing());
        stopper.await.expect("stopper ran");
    }

    #[tokio::test(start_paused = true)]
    async fn a_bounded_budget_gives_up_after_its_retries() {
        let calls = AtomicUsize::new(0);
        let bounded = unlimited().with_settings(RetrySettings {
            max_retries: Some(3),
            ..RetrySettings::default()
        });
        let result: Result<(), _> = bounded
            .run(|| async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(Flaky(Retryability::Transient))
            })
            .await;
        assert!(matches!(result, Err(Stopped::GaveUp(_))));
        assert_eq!(calls.load(Ordering::Relaxed), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_that_gets_through_wakes_the_jobs_waiting_on_the_database() {
        let gate = DatabaseGate::default();
        gate.failing();
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                gate.wait_for_recovery(Duration::from_secs(3600)).await;
                started.elapsed()
            })
        };
        for _ in 0..3 {
            tokio::task::yield_now().await; // lets the waiter start waiting
        }
        gate.passing();
        let waited = waiter.await.expect("waiter ran");
        assert!(
            waited < Duration::from_secs(3600),
            "woken early: {waited:?}"
        );
    }
}

//! Client settings, their defaults and their validation.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderValue;

use crate::Client;
use crate::error::{BuildError, Setting};
use crate::failure::{Failure, OnError};

/// The server refuses request bodies of 1 MiB or more.
pub const SERVER_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The server accepts at most this many events per request.
pub const SERVER_MAX_BATCH_EVENTS: usize = 1000;
/// The smallest allowed `max_batch_bytes`.
pub const MIN_BATCH_BYTES: usize = 1024;
/// The longest allowed linger interval.
pub const MAX_LINGER: Duration = Duration::from_secs(60);

/// What [`Client::track`] does when the buffer is full. Events are never dropped silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullBufferPolicy {
    /// Wait until space frees up (backpressure).
    #[default]
    Wait,
    /// Return [`TrackError::BufferFull`](crate::TrackError::BufferFull) at once.
    FailFast,
}

/// How failed transient deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// The ceiling of the first backoff delay; it doubles on every retry.
    pub initial_backoff: Duration,
    /// The highest the ceiling goes.
    pub max_backoff: Duration,
    /// How long after its first attempt a batch is still retried; zero disables retrying.
    pub budget: Duration,
}

/// Validated client settings.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub endpoint: Url,
    pub ingest_key: String,
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
    pub linger: Duration,
    pub buffer_capacity: usize,
    pub full_buffer_policy: FullBufferPolicy,
    pub retry: RetryPolicy,
    pub request_timeout: Duration,
    pub on_error: Option<OnError>,
}

/// Settings of a [`Client`]; created by [`Client::builder`], finished by [`ClientBuilder::build`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    ingest_key: String,
    max_batch_events: usize,
    max_batch_bytes: usize,
    linger: Duration,
    buffer_capacity: usize,
    full_buffer_policy: FullBufferPolicy,
    retry: RetryPolicy,
    request_timeout: Duration,
    on_error: Option<OnError>,
}

impl ClientBuilder {
    pub(crate) fn new(base_url: String, ingest_key: String) -> Self {
        Self {
            base_url,
            ingest_key,
            max_batch_events: 100,
            max_batch_bytes: 512 * 1024,
            linger: Duration::from_millis(200),
            buffer_capacity: 10_000,
            full_buffer_policy: FullBufferPolicy::Wait,
            retry: RetryPolicy {
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(30),
                budget: Duration::from_secs(10 * 60),
            },
            request_timeout: Duration::from_secs(10),
            on_error: None,
        }
    }

    /// Events per batch, 1..=1000 (default 100).
    pub fn max_batch_events(mut self, events: usize) -> Self {
        self.max_batch_events = events;
        self
    }

    /// Request body size limit in bytes, 1 KiB up to below 1 MiB (default 512 KiB).
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// How long a partial batch waits for more events, at most 60 s (default 200 ms).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Events held in memory until delivered or failed, at least 1 (default 10,000). This bounds
    /// what an outage can hold: once it is full, `track` waits or fails as
    /// [`full_buffer_policy`](Self::full_buffer_policy) says, and [`Stats`](crate::Stats) counts it.
    pub fn buffer_capacity(mut self, events: usize) -> Self {
        self.buffer_capacity = events;
        self
    }

    /// What `track` does when the buffer is full (default [`FullBufferPolicy::Wait`]).
    pub fn full_buffer_policy(mut self, policy: FullBufferPolicy) -> Self {
        self.full_buffer_policy = policy;
        self
    }

    /// How long a batch is retried after its first attempt while failures are transient
    /// (default 10 minutes, so a restart or a deploy's outage loses nothing); zero disables
    /// retrying. The last retry falls at the end of the budget; then the batch fails.
    pub fn retry_budget(mut self, budget: Duration) -> Self {
        self.retry.budget = budget;
        self
    }

    /// The first backoff ceiling, doubled per retry, with full jitter (default 100 ms).
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.retry.initial_backoff = backoff;
        self
    }

    /// The highest backoff ceiling (default 30 s): how late, at worst, a recovered server hears
    /// from the client again (a longer `Retry-After` is still honoured).
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.retry.max_backoff = backoff;
        self
    }

    /// Called with every event the client gives up on, once per event, from the client's
    /// background task (so it must be quick and must not block): a 400 naming single events
    /// ([`SendError::EventRefused`](crate::SendError::EventRefused), the rest of the batch is sent
    /// again), an event refused by `track` (also returned to the caller), or a batch that failed
    /// permanently or ran out of retry budget. [`Stats::failed`](crate::Stats::failed) counts the
    /// same events.
    pub fn on_error(mut self, callback: impl Fn(&Failure<'_>) + Send + Sync + 'static) -> Self {
        self.on_error = Some(OnError(Arc::new(callback)));
        self
    }

    /// Timeout of one HTTP request (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Validates the settings and starts the client's background task.
    ///
    /// Must be called inside a Tokio runtime.
    pub fn build(self) -> Result<Client, BuildError> {
        Client::start(self.validate()?)
    }

    pub(crate) fn validate(self) -> Result<Config, BuildError> {
        check(
            !self.ingest_key.trim().is_empty(),
            Setting::IngestKey,
            "must not be empty",
        )?;
        // Caught here, it is a setting to fix; caught when sending, every batch would fail.
        let header_ok = HeaderValue::from_str(&format!("Bearer {}", self.ingest_key)).is_ok();
        check(
            header_ok,
            Setting::IngestKey,
            "must be printable ASCII (it is sent in a header)",
        )?;
        let batch_ok = (1..=SERVER_MAX_BATCH_EVENTS).contains(&self.max_batch_events);
        check(batch_ok, Setting::MaxBatchEvents, "must be 1..=1000")?;
        let bytes_ok = (MIN_BATCH_BYTES..SERVER_MAX_BODY_BYTES).contains(&self.max_batch_bytes);
        check(
            bytes_ok,
            Setting::MaxBatchBytes,
            "must be at least 1024 and below 1 MiB",
        )?;
        check(
            self.linger <= MAX_LINGER,
            Setting::Linger,
            "must be at most 60 s",
        )?;
        check(
            self.buffer_capacity >= 1,
            Setting::BufferCapacity,
            "must be at least 1",
        )?;
        let timeout_ok = !self.request_timeout.is_zero();
        check(
            timeout_ok,
            Setting::RequestTimeout,
            "must be greater than zero",
        )?;
        check(
            !self.retry.initial_backoff.is_zero(),
            Setting::InitialBackoff,
            "must be greater than zero",
        )?;
        check(
            self.retry.max_backoff >= self.retry.initial_backoff,
            Setting::MaxBackoff,
            "must be at least initial_backoff",
        )?;
        Ok(Config {
            endpoint: endpoint(&self.base_url)?,
            ingest_key: self.ingest_key,
            max_batch_events: self.max_batch_events,
            max_batch_bytes: self.max_batch_bytes,
            linger: self.linger,
            buffer_capacity: self.buffer_capacity,
            full_buffer_policy: self.full_buffer_policy,
            retry: self.retry,
            request_timeout: self.request_timeout,
            on_error: self.on_error,
        })
    }
}

fn check(ok: bool, setting: Setting, reason: &str) -> Result<(), BuildError> {
    if ok {
        Ok(())
    } else {
        Err(BuildError::InvalidSetting {
            setting,
            reason: reason.to_owned(),
        })
    }
}

/// `{base_url}/v1/events`, keeping any path prefix of the base URL.
fn endpoint(base_url: &str) -> Result<Url, BuildError> {
    let invalid = |reason: String| BuildError::InvalidSetting {
        setting: Setting::BaseUrl,
        reason,
    };
    let url = Url::parse(&format!("{}/v1/events", base_url.trim_end_matches('/')))
        .map_err(|e| invalid(format!("`{base_url}` is not a URL: {e}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(invalid(format!(
            "scheme must be http or https, got `{other}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> ClientBuilder {
        ClientBuilder::new("http://localhost:8080".into(), "key".into())
    }

    fn rejected_setting(builder: ClientBuilder) -> Option<Setting> {
        match builder.validate() {
            Err(BuildError::InvalidSetting { setting, .. }) => Some(setting),
            _ => None,
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        let config = builder().validate().expect("defaults are valid");
        assert_eq!(config.endpoint.as_str(), "http://localhost:8080/v1/events");
        assert_eq!(
            (config.max_batch_events, config.max_batch_bytes),
            (100, 512 * 1024)
        );
        assert_eq!(config.buffer_capacity, 10_000);
        assert_eq!(config.retry.budget, Duration::from_secs(600));
    }

    #[test]
    fn each_bad_setting_is_named_in_the_error() {
        let ms = Duration::from_millis;
        let table = [
            (builder().max_batch_events(0), Setting::MaxBatchEvents),
            (builder().max_batch_events(1001), Setting::MaxBatchEvents),
            (
                builder().max_batch_bytes(SERVER_MAX_BODY_BYTES),
                Setting::MaxBatchBytes,
            ),
            (builder().max_batch_bytes(100), Setting::MaxBatchBytes),
            (builder().linger(Duration::from_secs(61)), Setting::Linger),
            (builder().buffer_capacity(0), Setting::BufferCapacity),
            (
                builder().request_timeout(Duration::ZERO),
                Setting::RequestTimeout,
            ),
            (
                builder().initial_backoff(Duration::ZERO),
                Setting::InitialBackoff,
            ),
            (
                builder().initial_backoff(ms(10)).max_backoff(ms(5)),
                Setting::MaxBackoff,
            ),
            (
                ClientBuilder::new("http://h".into(), "key\n".into()),
                Setting::IngestKey,
            ),
            (
                ClientBuilder::new("localhost:80".into(), "k".into()),
                Setting::BaseUrl,
            ),
            (
                ClientBuilder::new("not a url".into(), "k".into()),
                Setting::BaseUrl,
            ),
            (
                ClientBuilder::new("http://h".into(), " ".into()),
                Setting::IngestKey,
            ),
        ];
        for (builder, setting) in table {
            assert_eq!(rejected_setting(builder), Some(setting));
        }
    }

    #[test]
    fn the_endpoint_keeps_a_path_prefix_of_the_base_url() {
        let config = ClientBuilder::new("https://eye.example/api/".into(), "k".into())
            .validate()
            .expect("valid");
        assert_eq!(
            config.endpoint.as_str(),
            "https://eye.example/api/v1/events"
        );
    }

    #[test]
    fn the_limits_at_the_edges_are_accepted() {
        let edges = builder()
            .max_batch_events(1000)
            .max_batch_bytes(SERVER_MAX_BODY_BYTES - 1)
            .linger(Duration::ZERO)
            .buffer_capacity(1)
            .retry_budget(Duration::ZERO)
            .max_backoff(Duration::from_millis(100));
        assert!(edges.validate().is_ok());
    }
}

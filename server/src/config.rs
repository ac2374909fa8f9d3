//! The service's configuration: one typed struct, read from `EYE_*` environment variables (or flags),
//! validated at start with an error naming the variable.

use clap::Args;
use eye_validation::UnknownEventPolicy;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Configuration of every `eye` command.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address the HTTP API listens on.
    #[arg(long, env = "EYE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Where a worker-only process (`eye worker`) serves `/health`, `/ready` and `/metrics`; unset, it
    /// serves nothing. (`serve` and `api` expose them on `EYE_BIND`.)
    #[arg(long, env = "EYE_OPS_BIND")]
    pub ops_bind: Option<SocketAddr>,

    /// Database: `postgres://…` or `sqlite://…` (the embedded default lives under ./data/).
    #[arg(
        long,
        env = "EYE_DATABASE_URL",
        default_value = "sqlite://data/eye.db?mode=rwc"
    )]
    pub database_url: String,

    /// Pooled database connections per process.
    #[arg(long, env = "EYE_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// Redis for the queue (`redis://…`). Unset: an embedded SQLite queue at `EYE_QUEUE_PATH`.
    #[arg(long, env = "EYE_REDIS_URL")]
    pub redis_url: Option<String>,

    /// The embedded queue's file, used when `EYE_REDIS_URL` is unset.
    #[arg(long, env = "EYE_QUEUE_PATH", default_value = "data/queue.db")]
    pub queue_path: PathBuf,

    /// The queue's name; on Redis every key starts with it.
    #[arg(long, env = "EYE_QUEUE_NAME", default_value = "eye:ingest")]
    pub queue_name: String,

    /// How often idle workers look for new jobs.
    #[arg(long, env = "EYE_QUEUE_POLL_INTERVAL", default_value = "10ms", value_parser = humantime::parse_duration)]
    pub queue_poll_interval: Duration,

    /// How long one push to the queue may take; a request whose push fails or times out gets 503.
    #[arg(long, env = "EYE_QUEUE_PUSH_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub queue_push_timeout: Duration,

    /// Jobs each worker process handles at once.
    #[arg(long, env = "EYE_WORKER_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_concurrency: u16,

    /// Bearer token for the admin endpoints; unset, they answer 401.
    #[arg(long, env = "EYE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Base URL of the notification service (`POST {url}/v1/notify`).
    #[arg(long, env = "EYE_NOTIFY_URL")]
    pub notify_url: Option<String>,

    /// Longest wait for the notification service to answer one delivery attempt.
    #[arg(long, env = "EYE_NOTIFY_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub notify_timeout: Duration,

    /// Delivery attempts per notification (the first included) before it is marked `failed`.
    #[arg(long, env = "EYE_NOTIFY_MAX_ATTEMPTS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub notify_max_attempts: u32,

    /// Delay after the first failed delivery; it doubles per attempt (with jitter), up to 5 minutes.
    #[arg(long, env = "EYE_NOTIFY_RETRY_DELAY", default_value = "1s", value_parser = humantime::parse_duration)]
    pub notify_retry_delay: Duration,

    /// A notification rules file (TOML, see `rules/rules.toml`); unset: the built-in seed rules.
    #[arg(long, env = "EYE_RULES")]
    pub rules: Option<PathBuf>,

    /// How long past an absence rule's deadline to wait for late events before notifying by the wall clock.
    #[arg(long, env = "EYE_RULE_LATENESS", default_value = "60s", value_parser = humantime::parse_duration)]
    pub rule_lateness: Duration,

    /// The most stored events (of the rule's types) one rule dry run may read; a larger range is refused.
    #[arg(long, env = "EYE_DRY_RUN_MAX_EVENTS", default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub dry_run_max_events: u64,

    /// How long a verified ingest key is trusted before it is checked again (bounds revocation delay
    /// across processes; revocation through this process takes effect at once).
    #[arg(long, env = "EYE_AUTH_CACHE_TTL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub auth_cache_ttl: Duration,

    /// What happens to events of a type without a schema: `accept` (stored, counted as unregistered)
    /// or `reject` (recorded in the errors as `unknown_event_type`).
    #[arg(long, env = "EYE_UNKNOWN_EVENTS", default_value = "accept", value_parser = parse_unknown_policy)]
    pub unknown_events: UnknownEventPolicy,

    /// How far in the future (after clock-skew correction) an event's timestamp may lie.
    #[arg(long, env = "EYE_MAX_CLOCK_SKEW", default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_clock_skew: Duration,

    /// How long events are kept, counted from their `timestamp` (e.g. `400d`); unset keeps them forever.
    /// Older events, their emptied sessions and refused events recorded that long ago are deleted within
    /// a minute; events older than this that arrive are refused as `expired`.
    #[arg(long, env = "EYE_RETENTION", value_parser = parse_retention)]
    pub retention: Option<Duration>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "EYE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// How long finished queue jobs are kept (for inspection) before the workers delete them, on Redis
    /// and on the embedded queue; `0s` deletes them at the next sweep (every second).
    #[arg(long, env = "EYE_QUEUE_RETENTION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub queue_retention: Duration,

    /// Bytes of request bodies an API process holds between reading a request and the queue taking its
    /// events; a request that finds no room waits up to `EYE_INGEST_DEADLINE`, then gets 503.
    #[arg(long, env = "EYE_INGEST_MAX_INFLIGHT_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub ingest_max_inflight_bytes: usize,

    /// Ingest requests an API process handles at once; more wait up to `EYE_INGEST_DEADLINE`, then get 503.
    #[arg(long, env = "EYE_INGEST_MAX_CONCURRENT", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub ingest_max_concurrent: u32,

    /// How long an ingest request may wait for admission and for the queue (reading its body aside)
    /// before it gets 503 with nothing queued. A push already under way is always awaited.
    #[arg(long, env = "EYE_INGEST_DEADLINE", default_value = "3s", value_parser = humantime::parse_duration)]
    pub ingest_deadline: Duration,

    /// While the database cannot be reached, how long after its last verification an ingest key is still
    /// accepted from the cache.
    #[arg(long, env = "EYE_AUTH_STALE_FOR", default_value = "1h", value_parser = humantime::parse_duration)]
    pub auth_stale_for: Duration,

    /// How long verifying an unknown or expired ingest key may wait for the database.
    #[arg(long, env = "EYE_AUTH_LOOKUP_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub auth_lookup_timeout: Duration,

    /// How long a client may take to send a request's head, from its first byte.
    #[arg(long, env = "EYE_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_header_timeout: Duration,

    /// How long a client may take to send a request's body (408 after).
    #[arg(long, env = "EYE_HTTP_BODY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub http_body_timeout: Duration,

    /// How long a connection may stay silent between requests before it is closed.
    #[arg(long, env = "EYE_HTTP_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub http_idle_timeout: Duration,
}

fn parse_unknown_policy(value: &str) -> Result<UnknownEventPolicy, String> {
    value
        .parse()
        .map_err(|_| format!("expected `accept` or `reject`, got {value:?}"))
}

fn parse_retention(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value) {
        Ok(keep) if keep.is_zero() => Err("must be longer than 0s".into()),
        Ok(keep) => Ok(keep),
        Err(err) => Err(format!("{err} (e.g. `400d`)")),
    }
}

impl Config {
    /// The configuration from the environment alone (no flags): what tests and embedders start from.
    pub fn from_env() -> Result<Self, clap::Error> {
        use clap::{Command, FromArgMatches};
        let matches = Config::augment_args(Command::new("eye")).try_get_matches_from(["eye"])?;
        Config::from_arg_matches(&matches)
    }

    /// SQLite database files live in directories that may not exist yet on a fresh machine.
    pub fn prepare_directories(&self) -> std::io::Result<()> {
        let sqlite_file = self
            .database_url
            .strip_prefix("sqlite://")
            .map(|rest| rest.split('?').next().unwrap_or(rest));
        for file in sqlite_file
            .map(PathBuf::from)
            .into_iter()
            .chain([self.queue_path.clone()])
        {
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
        }
        Ok(())
    }
}

//! Client SDK for The Eye: track events cheaply, deliver them in batches, never twice.
//!
//! [`Client::track`] checks each event against the server's own rules (shared through
//! `eye-domain`), assigns it a UUIDv7 id, puts it in a bounded in-memory buffer and returns.
//! A background task sends batches to `POST /v1/events` when a batch reaches its size in
//! events or bytes, or when the linger interval passes; every attempt stamps the request's
//! events with `sent_at`, so the server's clock-skew correction removes only skew. Failures are
//! classified once ([`classify`]): transient ones (no answer, 408, 429, 5xx) are retried with
//! exponential backoff and full jitter, honouring `Retry-After`, for a retry budget in time
//! (10 minutes by default); a 413 splits the batch in halves; a 400 naming single events fails
//! those and resends the rest; other answers are permanent. Failed events are counted
//! ([`Stats::failed`]), handed to the error callback ([`ClientBuilder::on_error`]) and reported by
//! [`Client::flush`]. Ids are fixed before the first attempt and the server stores each id
//! once, so retries never duplicate events.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use eye_sdk::{Client, Event, fitness};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("https://eye.example.com", "ingest-key")
//!     .max_batch_events(200)
//!     .linger(Duration::from_millis(100))
//!     .build()?;
//!
//! client.track(fitness::app_launch("user-1", "device-1", chrono::Utc::now())).await?;
//! client
//!     .track(Event::new("session-1", "shop", "checkout").data(json!({"total": 42})))
//!     .await?;
//!
//! let summary = client.flush().await?;
//! println!("sent {} events", summary.sent);
//! client.shutdown(Duration::from_secs(5)).await?;
//! println!("{:?}", client.stats());
//! # Ok(())
//! # }
//! ```

mod batch;
mod client;
mod config;
mod delivery;
mod error;
mod event;
mod failure;
pub mod fitness;
mod retry;
mod stats;
mod transport;
mod worker;

pub use client::Client;
pub use config::{
    ClientBuilder, FullBufferPolicy, MAX_LINGER, MIN_BATCH_BYTES, SERVER_MAX_BATCH_EVENTS,
    SERVER_MAX_BODY_BYTES,
};
pub use error::{
    BuildError, Cause, FailureKind, FieldError, FlushError, Problem, SendError, Setting,
    TrackError, classify,
};
pub use event::{
    Event, EventError, EventId, MAX_NAME_CHARS, MAX_SESSION_ID_CHARS, MAX_USER_ID_CHARS,
};
/// Why text or a timestamp breaks the server's rules (the server's own types).
pub use eye_domain::{TextError, TimestampError};
pub use failure::Failure;
pub use stats::{FlushSummary, Stats};

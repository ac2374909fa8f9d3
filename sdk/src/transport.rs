//! One HTTP request per batch: `POST /v1/events`, answers mapped to [`SendError`].

use std::future::Future;

use chrono::Utc;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Response, Url};
use serde::Deserialize;
use tracing::{instrument, warn};

use crate::batch::Batch;
use crate::config::Config;
use crate::error::{BuildError, Problem, SendError};
use crate::event::EventId;
use crate::retry::parse_retry_after;

/// Sends one batch and returns the accepted ids in request order.
pub(crate) trait Post: Send + Sync + 'static {
    /// Makes exactly one attempt; retrying is the caller's job.
    fn post(&self, batch: &Batch) -> impl Future<Output = Result<Vec<EventId>, SendError>> + Send;
}

/// The real transport over reqwest.
#[derive(Debug, Clone)]
pub(crate) struct HttpTransport {
    http: reqwest::Client,
    endpoint: Url,
    ingest_key: String,
}

/// The `202 Accepted` body.
#[derive(Debug, Deserialize)]
struct Accepted {
    event_ids: Vec<EventId>,
}

impl HttpTransport {
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("eye-sdk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(BuildError::Http)?;
        Ok(Self {
            http,
            endpoint: config.endpoint.clone(),
            ingest_key: config.ingest_key.clone(),
        })
    }
}

impl Post for HttpTransport {
    #[instrument(skip_all, fields(events = batch.len()), err(level = "debug"))]
    async fn post(&self, batch: &Batch) -> Result<Vec<EventId>, SendError> {
        let response = self
            .http
            .post(self.endpoint.clone())
            .bearer_auth(&self.ingest_key)
            .header(CONTENT_TYPE, "application/json")
            // Stamped now, for this attempt: see `Batch::body`.
            .body(batch.body(Utc::now()))
            .send()
            .await
            .map_err(SendError::Transport)?;
        if response.status().is_success() {
            accepted_ids(response, batch).await
        } else {
            Err(rejection(response).await)
        }
    }
}

/// The ids the server accepted; our own ids if the body is unreadable (they are the same).
async fn accepted_ids(response: Response, batch: &Batch) -> Result<Vec<EventId>, SendError> {
    let body = response.bytes().await.map_err(SendError::Transport)?;
    match serde_json::from_slice::<Accepted>(&body) {
        Ok(accepted) => Ok(accepted.event_ids),
        Err(error) => {
            warn!(%error, "unreadable 2xx body from the server; assuming all events accepted");
            Ok(batch.ids())
        }
    }
}

/// Maps an error answer, reading its problem document and `Retry-After` header.
async fn rejection(response: Response) -> SendError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, Utc::now()));
    let problem = match response.bytes().await {
        Ok(body) => serde_json::from_slice::<Problem>(&body).ok().map(Box::new),
        Err(_) => None,
    };
    SendError::Rejected {
        status,
        problem,
        retry_after,
    }
}

//! Monitoring refused events: listing them, and replaying them after a schema fix.

use crate::api::auth::AdminToken;
use crate::api::params::Text;
use crate::api::problem::{ApiError, FieldError};
use crate::api::query_params::check_order;
use crate::api::read_auth::ReadAccess;
use crate::state::AppState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use eye_store::{ErrorFilter, RejectReason, StoredIngestError};
use eye_worker::{ReplayFailure, RetrySettings};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use serde_json::Value;
use uuid::Uuid;

/// The most errors one replay call handles; call again for more.
const REPLAY_LIMIT: u64 = 1000;

#[derive(Tags)]
enum ErrorTags {
    /// Events that were accepted but not stored.
    Errors,
}

/// The monitoring endpoints.
pub struct ErrorsApi;

/// Why an event was not stored.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "snake_case")]
pub enum Reason {
    /// The payload broke its type's schema.
    InvalidPayload,
    /// The timestamp lies in the future (after clock-skew correction).
    FutureTimestamp,
    /// No schema for the type, and `EYE_UNKNOWN_EVENTS=reject`.
    UnknownEventType,
    /// The database refused the event.
    StorageRejected,
    /// The `sent_at` would correct the timestamp before 1970 or out of range.
    InvalidSentAt,
}

impl From<Reason> for RejectReason {
    fn from(reason: Reason) -> Self {
        match reason {
            Reason::InvalidPayload => Self::InvalidPayload,
            Reason::FutureTimestamp => Self::FutureTimestamp,
            Reason::UnknownEventType => Self::UnknownEventType,
            Reason::StorageRejected => Self::StorageRejected,
            Reason::InvalidSentAt => Self::InvalidSentAt,
        }
    }
}

/// A refused event.
#[derive(Debug, Object)]
pub struct ErrorOut {
    /// The sending application.
    pub application_id: Uuid,
    /// The event's id.
    pub event_id: Uuid,
    /// Its category.
    pub category: String,
    /// Its name.
    pub name: String,
    /// The reason code.
    pub reason: String,
    /// What is wrong, with a JSON pointer per offending value for payload errors.
    pub detail: String,
    /// The event as received.
    pub raw: Value,
    /// When The Eye accepted it.
    pub received_at: DateTime<Utc>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// When a replay stored it after all.
    #[oai(nullable)]
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One page of errors, newest first.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ErrorsPage {
    /// The errors.
    pub errors: Vec<ErrorOut>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// What a replay did.
#[derive(Debug, Object)]
pub struct ReplayOut {
    /// Unresolved errors looked at (at most 1000 per call).
    pub replayed: u64,
    /// Events now stored; their errors are marked resolved.
    pub stored: u64,
    /// Events that still fail.
    pub still_failing: u64,
    /// Why each event that still fails was refused this time.
    pub failures: Vec<ReplayFailureOut>,
}

/// An event a replay could not store.
#[derive(Debug, Object)]
pub struct ReplayFailureOut {
    /// The error record (`id` in `GET /v1/errors`).
    pub error_id: i64,
    /// The reason code and detail, e.g. `invalid_payload: /path: value does not match "^/"`.
    pub detail: String,
}

impl From<ReplayFailure> for ReplayFailureOut {
    fn from(failure: ReplayFailure) -> Self {
        Self {
            error_id: failure.error_id,
            detail: failure.detail,
        }
    }
}

#[derive(ApiResponse)]
enum ErrorsFound {
    /// One page of refused events, newest first.
    #[oai(status = 200)]
    Page(Json<ErrorsPage>),
}

#[derive(ApiResponse)]
enum Replayed {
    /// What the replay did.
    #[oai(status = 200)]
    Outcome(Json<ReplayOut>),
}

/// A replay answers its caller, so it retries a failing database only briefly (then 503).
const REPLAY_RETRY: RetrySettings = RetrySettings {
    min_delay: std::time::Duration::from_millis(100),
    max_delay: std::time::Duration::from_secs(1),
    max_retries: Some(5),
};

fn replay_failed(err: eye_store::StoreError) -> ApiError {
    use eye_domain::Failure;
    if err.is_transient() {
        ApiError::StorageUnavailable(err.to_string())
    } else {
        ApiError::internal(err)
    }
}

fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    let invalid = || {
        ApiError::Invalid(vec![FieldError::new(
            "cursor",
            "not a cursor from a previous page",
        )])
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    String::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(invalid)
}

fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

fn out(error: StoredIngestError) -> ErrorOut {
    let record = error.record;
    ErrorOut {
        application_id: record.application_id.as_uuid(),
        event_id: record.event_id.as_uuid(),
        category: record.event_type.category.to_string(),
        name: record.event_type.name.to_string(),
        reason: record.reason.as_str().to_owned(),
        detail: record.detail,
        raw: record.raw,
        received_at: record.received_at,
        recorded_at: error.recorded_at,
        resolved_at: error.resolved_at,
    }
}

/// The filters shared by listing and replay.
struct Filters {
    reason: Option<Reason>,
    category: Option<String>,
    name: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl Filters {
    fn into_filter(self) -> Result<ErrorFilter, ApiError> {
        check_order(self.from, self.to)?;
        Ok(ErrorFilter {
            reason: self.reason.map(RejectReason::from),
            category: self.category,
            name: self.name,
            from: self.from,
            to: self.to,
            ..ErrorFilter::default()
        })
    }
}

#[OpenApi(tag = "ErrorTags::Errors")]
impl ErrorsApi {
    /// List refused events, newest first
    ///
    /// A read key sees only its applications' errors; the admin token sees all.
    #[allow(clippy::too_many_arguments)] // one per query filter, as poem-openapi extracts them
    #[oai(path = "/v1/errors", method = "get", operation_id = "list_errors")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: ReadAccess,
        /// Only errors of this reason.
        reason: Query<Option<Reason>>,
        /// Only this category.
        category: Query<Option<Text<64>>>,
        /// Only this name.
        name: Query<Option<Text<64>>>,
        /// Errors recorded at or after this instant (RFC 3339); must be earlier than `to`.
        from: Query<Option<DateTime<Utc>>>,
        /// Errors recorded before this instant (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
        /// Page size, 1..=1000 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u64>>,
        /// `next_cursor` of the previous page (only those are valid).
        cursor: Query<Option<String>>,
    ) -> Result<ErrorsFound, ApiError> {
        let filters = Filters {
            reason: reason.0,
            category: category.0.map(Text::into_string),
            name: name.0.map(Text::into_string),
            from: from.0,
            to: to.0,
        };
        let mut filter = filters.into_filter()?;
        filter.before_id = cursor.0.as_deref().map(decode_cursor).transpose()?;
        filter.applications = auth.0.application_ids();
        let limit = limit.0.unwrap_or(100);
        let page = state
            .store()
            .ingest_error_page(&filter, limit)
            .await
            .map_err(ApiError::internal)?;
        Ok(ErrorsFound::Page(Json(ErrorsPage {
            errors: page.items.into_iter().map(out).collect(),
            next_cursor: page.next.map(encode_cursor),
        })))
    }

    /// Replay refused events through validation
    ///
    /// For events refused before a schema was fixed: the ones that now pass are stored (once: event ids
    /// make replay safe to repeat) and their errors marked resolved. Handles up to 1000 errors per call.
    #[allow(clippy::too_many_arguments)] // one per query filter, as poem-openapi extracts them
    #[oai(
        path = "/v1/admin/errors/replay",
        method = "post",
        operation_id = "replay_errors"
    )]
    async fn replay(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        /// Only errors of this reason.
        reason: Query<Option<Reason>>,
        /// Only this category.
        category: Query<Option<Text<64>>>,
        /// Only this name.
        name: Query<Option<Text<64>>>,
        /// Errors recorded at or after this instant (RFC 3339); must be earlier than `to`.
        from: Query<Option<DateTime<Utc>>>,
        /// Errors recorded before this instant (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
    ) -> Result<Replayed, ApiError> {
        let filters = Filters {
            reason: reason.0,
            category: category.0.map(Text::into_string),
            name: name.0.map(Text::into_string),
            from: from.0,
            to: to.0,
        };
        let filter = filters.into_filter()?;
        // The processor judges with the schemas of the latest publish, as it does for every batch.
        let processor = state.processor();
        let processor = processor.clone().with_retry(REPLAY_RETRY);
        let outcome = eye_worker::replay_errors(&processor, filter, REPLAY_LIMIT)
            .await
            .map_err(replay_failed)?;
        Ok(Replayed::Outcome(Json(ReplayOut {
            replayed: outcome.replayed,
            stored: outcome.stored,
            still_failing: outcome.still_failing,
            failures: outcome
                .failures
                .into_iter()
                .map(ReplayFailureOut::from)
                .collect(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)).ok(), Some(42));
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("x")).is_err());
    }
}

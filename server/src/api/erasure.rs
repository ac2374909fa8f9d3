//! Erasing a user's data (admin token), for GDPR erasure requests.

use crate::api::auth::AdminToken;
use crate::api::lifecycle_tags::LifecycleTags;
use crate::api::params::Text;
use crate::api::problem::{ApiError, FieldError};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use eye_domain::UserId;
use eye_store::{ErasureReport, ErasureRequest, StoreError};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

/// Who the erasure record names: the admin token is the only credential that may erase.
const REQUESTED_BY: &str = "admin token";

/// The erasure endpoint.
pub struct ErasureApi;

/// What an erasure removed; the same counts are kept in its record.
#[derive(Debug, Object)]
pub struct ErasureOut {
    /// The erasure record's id.
    pub erasure_id: Uuid,
    /// The user's events that occurred, or were received, until this instant are refused from now on;
    /// later ones are stored.
    pub erased_at: DateTime<Utc>,
    /// Events deleted.
    pub events: u64,
    /// Sessions left without events, deleted.
    pub sessions_removed: u64,
    /// Sessions that kept other users' or anonymous events, their count and times adjusted.
    pub sessions_adjusted: u64,
    /// Notification rule states deleted (0 or 1).
    pub rule_states: u64,
    /// Notifications deleted (pending, delivered or failed).
    pub notifications: u64,
    /// Refused events (`GET /v1/errors`) of the user deleted.
    pub refused_events: u64,
}

impl From<ErasureReport> for ErasureOut {
    fn from(report: ErasureReport) -> Self {
        Self {
            erasure_id: report.id,
            erased_at: report.erased_at,
            events: report.events,
            sessions_removed: report.sessions_removed,
            sessions_adjusted: report.sessions_adjusted,
            rule_states: report.rule_states,
            notifications: report.notifications,
            refused_events: report.refused_events,
        }
    }
}

/// The answer to an erasure.
#[derive(ApiResponse)]
enum Erased {
    /// What was erased (zero counts when there was nothing, or on a repeated call).
    #[oai(status = 200)]
    Report(Json<ErasureOut>),
}

#[OpenApi(tag = "LifecycleTags::Lifecycle")]
impl ErasureApi {
    /// Erase a user's data
    ///
    /// Deletes the application's events of the user (their sessions adjusted, or deleted when left
    /// empty), the user's notification rule state, notifications and refused events, and answers what it
    /// deleted. A record of the erasure is kept (when, by which credential, the counts, and the user only
    /// as a hash). Events of the user that occurred or were received until the erasure, e.g. still in the
    /// queue, are never stored; events that occur after it are stored (the application sends them under a
    /// new consent). Repeating the call is safe. 404 for an unknown application.
    #[oai(
        path = "/v1/admin/applications/:id/users/:user_id",
        method = "delete",
        operation_id = "erase_user"
    )]
    async fn erase_user(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        /// The application (UUID).
        id: Path<Uuid>,
        /// The user, as the application names them.
        user_id: Path<Text<128>>,
    ) -> Result<Erased, ApiError> {
        let user_id = UserId::parse(user_id.0.into_string())
            .map_err(|err| ApiError::Invalid(vec![FieldError::new("user_id", err.to_string())]))?;
        let request = ErasureRequest {
            application: id.0.into(),
            user_id,
            requested_by: REQUESTED_BY.to_owned(),
        };
        let report = state
            .store()
            .erase_user(&request)
            .await
            .map_err(|err| match err {
                StoreError::UnknownApplication(id) => {
                    ApiError::NotFound(format!("no application {id}"))
                }
                other => ApiError::internal(other),
            })?;
        tracing::info!(application = %request.application, erasure = %report.id, events = report.events, "user erased");
        Ok(Erased::Report(Json(report.into())))
    }
}

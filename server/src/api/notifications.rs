//! The notifications the rules decided, with their delivery status (admin token).

use crate::api::params::Text;
use crate::api::problem::{ApiError, FieldError};
use crate::api::query_params::check_order;
use crate::api::read_auth::ReadAccess;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use eye_store::queries::NotificationCursor;
use eye_store::{NotificationFilter, NotificationRecord, NotificationStatus};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use uuid::Uuid;

#[derive(Tags)]
enum NotificationTags {
    /// Notifications decided by the rules, and their delivery.
    Notifications,
}

/// The notifications endpoint (read key or admin token).
pub struct NotificationsApi;

/// Where a notification is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its (next) delivery attempt.
    Pending,
    /// Accepted by the notify service.
    Delivered,
    /// Refused for good, or still failing after the last attempt.
    Failed,
    /// Recorded while no notify service was configured (`EYE_NOTIFY_URL` unset).
    Undeliverable,
}

impl From<Status> for NotificationStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => Self::Pending,
            Status::Delivered => Self::Delivered,
            Status::Failed => Self::Failed,
            Status::Undeliverable => Self::Undeliverable,
        }
    }
}

impl From<NotificationStatus> for Status {
    fn from(status: NotificationStatus) -> Self {
        match status {
            NotificationStatus::Pending => Self::Pending,
            NotificationStatus::Delivered => Self::Delivered,
            NotificationStatus::Failed => Self::Failed,
            NotificationStatus::Undeliverable => Self::Undeliverable,
        }
    }
}

/// A notification and its delivery.
#[derive(Debug, Object)]
pub struct NotificationOut {
    /// Its id, also sent as the `Idempotency-Key` of every delivery attempt.
    pub id: Uuid,
    /// The application of the user.
    pub application_id: Uuid,
    /// The rule that decided it.
    pub rule: String,
    /// The recipient.
    pub user_id: String,
    /// The text sent.
    pub message: String,
    /// The occasion (`rule:user:event`): one notification per occasion.
    pub occasion: String,
    /// The event time at which the occasion arose.
    pub triggered_at: DateTime<Utc>,
    // No doc comment: poem-openapi would wrap the enum's `$ref` in `allOf` with it, which generators drop.
    pub status: Status,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    #[oai(nullable)]
    pub last_error: Option<String>,
    /// When it was decided.
    pub created_at: DateTime<Utc>,
    /// When the notify service accepted it.
    #[oai(nullable)]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<NotificationRecord> for NotificationOut {
    fn from(record: NotificationRecord) -> Self {
        Self {
            id: record.id,
            application_id: record.application_id,
            rule: record.rule,
            user_id: record.user_id,
            message: record.message,
            occasion: record.occasion,
            triggered_at: record.triggered_at,
            status: record.status.into(),
            attempts: record.attempts,
            last_error: record.last_error,
            created_at: record.created_at,
            delivered_at: record.delivered_at,
        }
    }
}

/// Notifications, newest first.
#[derive(Debug, Object)]
#[oai(example)]
pub struct NotificationsPage {
    /// The notifications.
    pub notifications: Vec<NotificationOut>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

fn decode_cursor(cursor: Option<&str>) -> Result<Option<NotificationCursor>, ApiError> {
    cursor
        .map(NotificationCursor::decode)
        .transpose()
        .map_err(|err| ApiError::Invalid(vec![FieldError::new("cursor", err.to_string())]))
}

#[derive(ApiResponse)]
enum NotificationsFound {
    /// Notifications, newest first.
    #[oai(status = 200)]
    Page(Json<NotificationsPage>),
}

#[OpenApi(tag = "NotificationTags::Notifications")]
impl NotificationsApi {
    /// List notifications, newest first
    ///
    /// Every parameter narrows the list; `from` (included) and `to` (excluded) bound `created_at`. Takes a
    /// read key (which sees only its applications' notifications) or the admin token. Pages are
    /// keyset-paginated by `(created_at, id)`, which never change: pass `next_cursor` back as `cursor` (with
    /// the same filters) until it is `null`; nothing that existed when paging started is skipped or repeated.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/v1/notifications",
        method = "get",
        operation_id = "list_notifications"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: ReadAccess,
        /// Only this recipient's notifications.
        user_id: Query<Option<Text<128>>>,
        /// Only this rule's notifications.
        rule: Query<Option<Text<128>>>,
        /// Only notifications in this delivery status.
        status: Query<Option<Status>>,
        /// Decided at or after this instant (RFC 3339); must be earlier than `to`.
        from: Query<Option<DateTime<Utc>>>,
        /// Decided before this instant (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
        /// How many, 1..=1000 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u64>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<NotificationsFound, ApiError> {
        check_order(from.0, to.0)?;
        let applications = auth
            .0
            .application_ids()
            .map(|ids| ids.iter().map(|id| id.as_uuid()).collect());
        let filter = NotificationFilter {
            applications,
            user_id: user_id.0.map(Text::into_string),
            rule: rule.0.map(Text::into_string),
            status: status.0.map(NotificationStatus::from),
            from: from.0,
            to: to.0,
            after: decode_cursor(cursor.0.as_deref())?,
            limit: limit.0.unwrap_or(100),
        };
        let page = state
            .store()
            .notification_page(&filter)
            .await
            .map_err(ApiError::internal)?;
        Ok(NotificationsFound::Page(Json(NotificationsPage {
            notifications: page.items.into_iter().map(NotificationOut::from).collect(),
            next_cursor: page.next.map(|cursor| cursor.encode()),
        })))
    }
}

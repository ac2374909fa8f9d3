//! The notifications outbox: written with the rule state that decided them, read by the delivery loop
//! and by operators.

use crate::entities::notifications;
use crate::queries::{NotificationCursor, Page, after, paginate};
use crate::rule_state::UserKey;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use eye_rules::Notification;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// Where a notification is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// The notify service accepted it.
    Delivered,
    /// Refused for good, or still failing after the last attempt.
    Failed,
    /// No notify service is configured (`EYE_NOTIFY_URL` unset).
    Undeliverable,
}

impl NotificationStatus {
    /// Every status, for parsing.
    pub const ALL: [Self; 4] = [
        Self::Pending,
        Self::Delivered,
        Self::Failed,
        Self::Undeliverable,
    ];

    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Undeliverable => "undeliverable",
        }
    }

    /// The status stored as `code`, if any.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == code)
    }
}

/// One notification as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    /// Its id: also the `Idempotency-Key` of every delivery attempt.
    pub id: Uuid,
    /// The application of the user.
    pub application_id: Uuid,
    /// The rule that decided it.
    pub rule: String,
    /// The recipient.
    pub user_id: String,
    /// The text.
    pub message: String,
    /// The occasion key (unique per application).
    pub occasion: String,
    /// The event time at which the occasion arose.
    pub triggered_at: DateTime<Utc>,
    /// Delivery status.
    pub status: NotificationStatus,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was decided.
    pub created_at: DateTime<Utc>,
    /// When the notify service accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<notifications::Model> for NotificationRecord {
    fn from(row: notifications::Model) -> Self {
        Self {
            id: row.id,
            application_id: row.application_id,
            rule: row.rule,
            user_id: row.user_id,
            message: row.message,
            occasion: row.occasion,
            triggered_at: row.triggered_at,
            status: NotificationStatus::parse(&row.status).unwrap_or(NotificationStatus::Failed),
            attempts: u32::try_from(row.attempts).unwrap_or_default(),
            last_error: row.last_error,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
        }
    }
}

/// Which notifications to list (every field narrows; `from`..`to` bounds `created_at`, `to` excluded).
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    /// Only these applications' users (`None`: every application).
    pub applications: Option<Vec<Uuid>>,
    /// Recipient.
    pub user_id: Option<String>,
    /// Rule name.
    pub rule: Option<String>,
    /// Status.
    pub status: Option<NotificationStatus>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// Only notifications after this position (newest first: older ones).
    pub after: Option<NotificationCursor>,
    /// Most rows returned.
    pub limit: u64,
}

/// One claim of a notification for one attempt: the token under which its result is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationLease(Uuid);

impl NotificationLease {
    /// The token as stored.
    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

/// What a delivery attempt ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// Accepted by the notify service.
    Delivered,
    /// Failed for now; try again at `next_attempt_at`.
    Retry {
        /// Why.
        error: String,
        /// When to try again.
        next_attempt_at: DateTime<Utc>,
    },
    /// Failed for good (permanent refusal, or the last attempt).
    Failed {
        /// Why.
        error: String,
    },
    /// No notify service is configured.
    Undeliverable,
}

/// The filter as a condition; a cursor continues with older rows (`(created_at, id) < cursor`).
fn list_condition(filter: &NotificationFilter) -> Condition {
    use notifications::Column as C;
    let before = filter.after.map(|cursor| {
        after(
            vec![Expr::val(cursor.created_at), Expr::val(cursor.id)],
            vec![Expr::col(C::CreatedAt), Expr::col(C::Id)],
        )
    });
    Condition::all()
        .add_option(
            filter
                .applications
                .as_ref()
                .map(|apps| C::ApplicationId.is_in(apps.iter().copied())),
        )
        .add_option(filter.user_id.as_deref().map(|user| C::UserId.eq(user)))
        .add_option(filter.rule.as_deref().map(|rule| C::Rule.eq(rule)))
        .add_option(filter.status.map(|status| C::Status.eq(status.as_str())))
        .add_option(filter.from.map(|from| C::CreatedAt.gte(from)))
        .add_option(filter.to.map(|to| C::CreatedAt.lt(to)))
        .add_option(before)
}

/// Inserts notifications, ignoring occasions already recorded (duplicates, retries, replays, rebuilds).
pub(crate) async fn insert_notifications(
    txn: &impl ConnectionTrait,
    key: &UserKey,
    sent: &[Notification],
) -> Result<(), StoreError> {
    use notifications::Column as C;
    if sent.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows = sent.iter().map(|n| notifications::ActiveModel {
        id: Set(Uuid::now_v7()),
        application_id: Set(key.application_id.as_uuid()),
        occasion: Set(n.occasion.as_str().to_owned()),
        rule: Set(n.rule.as_str().to_owned()),
        user_id: Set(n.user_id.clone()),
        message: Set(n.message.clone()),
        triggered_at: Set(n.triggered_at),
        status: Set(NotificationStatus::Pending.as_str().to_owned()),
        attempts: Set(0),
        last_error: Set(None),
        next_attempt_at: Set(Some(now)),
        created_at: Set(now),
        delivered_at: Set(None),
        lease_id: Set(None),
    });
    let conflict = OnConflict::columns([C::ApplicationId, C::Occasion])
        .do_nothing()
        .to_owned();
    notifications::Entity::insert_many(rows)
        .on_conflict(conflict)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

impl Store {
    /// Notifications matching `filter`, newest first: by `created_at`, then id (a UUIDv7), descending.
    #[tracing::instrument(skip_all, err)]
    pub async fn list_notifications(
        &self,
        filter: &NotificationFilter,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        use notifications::Column as C;
        let rows = notifications::Entity::find()
            .filter(list_condition(filter))
            .order_by_desc(C::CreatedAt)
            .order_by_desc(C::Id)
            .limit(filter.limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(NotificationRecord::from).collect())
    }

    /// One page of [`Store::list_notifications`] and where the next one starts (`None` on the last page).
    /// The key `(created_at, id)` never changes once written, so paging skips and repeats nothing that
    /// existed when it started, whatever the delivery loop updates meanwhile.
    pub async fn notification_page(
        &self,
        filter: &NotificationFilter,
    ) -> Result<Page<NotificationRecord, NotificationCursor>, StoreError> {
        let limit = filter.limit;
        let one_more = NotificationFilter {
            limit: limit + 1,
            ..filter.clone()
        };
        let rows = self.list_notifications(&one_more).await?;
        Ok(paginate(rows, limit, |row| NotificationCursor {
            created_at: row.created_at,
            id: row.id,
        }))
    }

    /// Pending notifications whose next attempt is due at `now`, oldest first.
    #[tracing::instrument(skip_all, err)]
    pub async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        use notifications::Column as C;
        let rows = notifications::Entity::find()
            .filter(C::Status.eq(NotificationStatus::Pending.as_str()))
            .filter(C::NextAttemptAt.lte(now))
            .order_by_asc(C::NextAttemptAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(NotificationRecord::from).collect())
    }

    /// Takes a due notification for one attempt: pushes its next attempt to `lease_until` and stores a new
    /// lease token, so no other worker takes it meanwhile (and a crashed worker's attempt is retried then).
    /// `None`: taken already. Pass the time of this very claim as `now`: a lease computed from an older
    /// time may already have expired when it is taken, and another worker would send the notification too.
    #[tracing::instrument(skip_all, fields(notification = %id), err)]
    pub async fn claim_notification(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<NotificationLease>, StoreError> {
        use notifications::Column as C;
        let lease = NotificationLease(Uuid::new_v4());
        let result = notifications::Entity::update_many()
            .col_expr(C::NextAttemptAt, Expr::value(lease_until))
            .col_expr(C::LeaseId, Expr::value(lease.0))
            .filter(C::Id.eq(id))
            .filter(C::Status.eq(NotificationStatus::Pending.as_str()))
            .filter(C::NextAttemptAt.lte(now))
            .exec(&self.db)
            .await?;
        Ok((result.rows_affected == 1).then_some(lease))
    }

    /// Records what an attempt ended in (an `Undeliverable` verdict counts no attempt), only if `lease` still
    /// holds the notification: a result that arrives after another worker re-claimed it, or after it was
    /// settled, changes nothing (answers `false`). The lease is spent either way, so one claim records at
    /// most one result, and a delivered notification never turns failed or pending again.
    #[tracing::instrument(skip_all, fields(notification = %id), err)]
    pub async fn record_delivery(
        &self,
        id: Uuid,
        lease: NotificationLease,
        result: &DeliveryResult,
    ) -> Result<bool, StoreError> {
        use notifications::Column as C;
        let (status, error, next, delivered) = match result {
            DeliveryResult::Delivered => {
                (NotificationStatus::Delivered, None, None, Some(Utc::now()))
            }
            DeliveryResult::Retry {
                error,
                next_attempt_at,
            } => (
                NotificationStatus::Pending,
                Some(error.clone()),
                Some(*next_attempt_at),
                None,
            ),
            DeliveryResult::Failed { error } => {
                (NotificationStatus::Failed, Some(error.clone()), None, None)
            }
            DeliveryResult::Undeliverable => (NotificationStatus::Undeliverable, None, None, None),
        };
        let counted = i32::from(*result != DeliveryResult::Undeliverable);
        let updated = notifications::Entity::update_many()
            .col_expr(C::Status, Expr::value(status.as_str()))
            .col_expr(C::Attempts, Expr::col(C::Attempts).add(counted))
            .col_expr(C::LastError, Expr::value(error))
            .col_expr(C::NextAttemptAt, Expr::value(next))
            .col_expr(C::DeliveredAt, Expr::value(delivered))
            .col_expr(C::LeaseId, Expr::value(Option::<Uuid>::None))
            .filter(C::Id.eq(id))
            .filter(C::LeaseId.eq(lease.0))
            .filter(C::Status.eq(NotificationStatus::Pending.as_str()))
            .exec(&self.db)
            .await?;
        Ok(updated.rows_affected == 1)
    }
}

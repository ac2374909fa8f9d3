//! Notification-rule state per user, written under an optimistic lock together with the notifications it
//! decided (a transactional outbox), as the `eye-rules` persistence contract asks.

use crate::entities::rule_states;
use crate::notifications::insert_notifications;
use crate::{EventCursor, RuleRevision, Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::ApplicationId;
use eye_rules::{Lateness, Notification, UserRuleState, due_at};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde_json::Value;

/// Whose rule state: users are named by their application.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserKey {
    /// The application the user belongs to.
    pub application_id: ApplicationId,
    /// The application's user id.
    pub user_id: String,
}

/// A user's state as stored, with what the optimistic lock needs.
#[derive(Debug, Clone, Default)]
pub struct StoredRuleState {
    /// Open pairs and pending timers.
    pub state: UserRuleState,
    /// `None` when the user has no row yet.
    pub version: Option<i64>,
    /// The last event evaluated into `state`.
    pub cursor: Option<EventCursor>,
    /// The state as it stood after an earlier event, to rebuild from without reading the whole history.
    pub checkpoint: Option<Checkpoint>,
    /// The rules' revision the state was last evaluated with (`None`: never evaluated). While it is the
    /// current one, every stored event of the user that the rules name is evaluated up to `cursor`.
    pub revision: Option<RuleRevision>,
}

/// A user's rule state as it stood right after the event at `cursor`: every stored event of the user up
/// to that position, of the types the rules named then, is evaluated into it, and nothing after (other
/// types change nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Open pairs and pending timers at that point.
    pub state: UserRuleState,
    /// The last event evaluated into it.
    pub cursor: EventCursor,
}

/// A new state to write, if the stored version is still `expected`, with the notifications it decided.
#[derive(Debug, Clone)]
pub struct RuleUpdate<'a> {
    /// Whose state.
    pub key: &'a UserKey,
    /// The version read; the write fails if another worker wrote since.
    pub expected: i64,
    /// The new state.
    pub state: &'a UserRuleState,
    /// The last event evaluated into it.
    pub cursor: Option<EventCursor>,
    /// The notifications to put in the outbox (once per occasion).
    pub notifications: &'a [Notification],
}

impl TryFrom<rule_states::Model> for StoredRuleState {
    type Error = StoreError;

    fn try_from(row: rule_states::Model) -> Result<Self, StoreError> {
        let cursor = row
            .cursor_at
            .zip(row.cursor_id)
            .map(|(at, id)| EventCursor { at, id });
        let checkpoint = match (row.checkpoint, row.checkpoint_at, row.checkpoint_id) {
            (Some(state), Some(at), Some(id)) => Some(Checkpoint {
                state: parse_state(state, &row.user_id)?,
                cursor: EventCursor { at, id },
            }),
            _ => None,
        };
        Ok(Self {
            state: parse_state(row.state, &row.user_id)?,
            version: Some(row.version),
            cursor,
            checkpoint,
            revision: row.rules_revision.map(RuleRevision::from),
        })
    }
}

impl Store {
    /// A user's stored rule state (empty, without version, for a user never seen).
    #[tracing::instrument(skip_all, fields(user = %key.user_id), err)]
    pub async fn rule_state(&self, key: &UserKey) -> Result<StoredRuleState, StoreError> {
        let row =
            rule_states::Entity::find_by_id((key.application_id.as_uuid(), key.user_id.clone()))
                .one(&self.db)
                .await?;
        row.map_or_else(|| Ok(StoredRuleState::default()), StoredRuleState::try_from)
    }

    /// Writes the state and inserts its notifications in one transaction, if the stored version is still
    /// the one read. `Ok(false)` when another worker wrote the user's state since: nothing was written, read
    /// again and re-evaluate.
    #[tracing::instrument(skip_all, fields(user = %update.key.user_id), err)]
    pub async fn save_rule_outcome(&self, update: RuleUpdate<'_>) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let written = update_state(&txn, &update).await?;
        if written {
            insert_notifications(&txn, update.key, update.notifications).await?;
        }
        txn.commit().await?;
        Ok(written)
    }

    /// Users with a timer whose `max(deadline, received_at)` is at or before `until` (the sweeper passes
    /// the wall clock minus the lateness).
    #[tracing::instrument(skip_all, err)]
    pub async fn users_to_wake(
        &self,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<UserKey>, StoreError> {
        let rows = rule_states::Entity::find()
            .filter(rule_states::Column::WakeAt.lte(until))
            .order_by_asc(rule_states::Column::WakeAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| UserKey {
                application_id: row.application_id.into(),
                user_id: row.user_id,
            })
            .collect())
    }
}

/// When the earliest pending timer may fire, before lateness.
pub(crate) fn wake_at(state: &UserRuleState) -> Option<DateTime<Utc>> {
    state
        .timers
        .iter()
        .map(|timer| due_at(timer, Lateness::from_secs(0)))
        .min()
}

fn parse_state(json: Value, user: &str) -> Result<UserRuleState, StoreError> {
    serde_json::from_value(json)
        .map_err(|err| DbErr::Custom(format!("rule state of {user}: {err}")).into())
}

pub(crate) fn state_json(state: &UserRuleState) -> Result<Value, StoreError> {
    serde_json::to_value(state).map_err(|err| DbErr::Custom(err.to_string()).into())
}

async fn update_state(
    txn: &impl ConnectionTrait,
    update: &RuleUpdate<'_>,
) -> Result<bool, StoreError> {
    let version = update.expected;
    use rule_states::Column as C;
    let result = rule_states::Entity::update_many()
        .col_expr(C::State, Expr::value(state_json(update.state)?))
        .col_expr(C::Version, Expr::value(version + 1))
        .col_expr(C::CursorAt, Expr::value(update.cursor.map(|c| c.at)))
        .col_expr(C::CursorId, Expr::value(update.cursor.map(|c| c.id)))
        .col_expr(C::WakeAt, Expr::value(wake_at(update.state)))
        .col_expr(C::UpdatedAt, Expr::value(Utc::now()))
        .filter(C::ApplicationId.eq(update.key.application_id.as_uuid()))
        .filter(C::UserId.eq(update.key.user_id.as_str()))
        .filter(C::Version.eq(version))
        .exec(txn)
        .await?;
    Ok(result.rows_affected == 1)
}

//! Notification-rule state per user, written under an optimistic lock together with the notifications it
//! decided (a transactional outbox), as the `eye-rules` persistence contract asks.

use crate::entities::{events, rule_states};
use crate::notifications::insert_notifications;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::{ApplicationId, EventId};
use eye_rules::{Lateness, Notification, RuleEvent, UserRuleState, due_at};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Whose rule state: users are named by their application.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserKey {
    /// The application the user belongs to.
    pub application_id: ApplicationId,
    /// The application's user id.
    pub user_id: String,
}

/// A position in a user's event stream: event time, ties broken by storage order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventCursor {
    /// The event's timestamp.
    pub at: DateTime<Utc>,
    /// The event's row id.
    pub id: i64,
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
}

/// A new state to write, if the stored version is still `expected`, with the notifications it decided.
#[derive(Debug, Clone)]
pub struct RuleUpdate<'a> {
    /// Whose state.
    pub key: &'a UserKey,
    /// The version read; the write fails if another worker wrote since.
    pub expected: Option<i64>,
    /// The new state.
    pub state: &'a UserRuleState,
    /// The last event evaluated into it.
    pub cursor: Option<EventCursor>,
    /// The notifications to put in the outbox (once per occasion).
    pub notifications: &'a [Notification],
}

/// A stored event, as the rules read it.
#[derive(Debug, Clone)]
pub struct RuleEventRow {
    /// Where it sits in its user's stream.
    pub cursor: EventCursor,
    /// Its identity.
    pub event_id: Uuid,
    /// Category.
    pub category: String,
    /// Name.
    pub name: String,
    /// The user.
    pub user_id: Option<String>,
    /// Payload fields.
    pub data: Map<String, Value>,
    /// When The Eye accepted it.
    pub received_at: DateTime<Utc>,
}

impl RuleEventRow {
    /// The engine's view of it.
    pub fn as_rule_event(&self) -> RuleEvent<'_> {
        RuleEvent {
            event_id: self.event_id,
            category: &self.category,
            name: &self.name,
            user_id: self.user_id.as_deref(),
            data: &self.data,
            timestamp: self.cursor.at,
            received_at: self.received_at,
        }
    }
}

impl From<events::Model> for RuleEventRow {
    fn from(row: events::Model) -> Self {
        let data = match row.data {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Self {
            cursor: EventCursor {
                at: row.timestamp,
                id: row.id,
            },
            event_id: row.event_id,
            category: row.category,
            name: row.name,
            user_id: row.user_id,
            data,
            received_at: row.received_at,
        }
    }
}

impl Store {
    /// The given events of an application that carry a user id (the others match no rule).
    #[tracing::instrument(skip_all, fields(application = %application, events = ids.len()), err)]
    pub async fn events_for_rules(
        &self,
        application: ApplicationId,
        ids: &[EventId],
    ) -> Result<Vec<RuleEventRow>, StoreError> {
        let rows = events::Entity::find()
            .filter(events::Column::ApplicationId.eq(application.as_uuid()))
            .filter(events::Column::EventId.is_in(ids.iter().map(EventId::as_uuid)))
            .filter(events::Column::UserId.is_not_null())
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(RuleEventRow::from).collect())
    }

    /// A user's events after `after` (all of them when `None`), in event-time order.
    #[tracing::instrument(skip_all, fields(user = %key.user_id), err)]
    pub async fn user_events_after(
        &self,
        key: &UserKey,
        after: Option<EventCursor>,
    ) -> Result<Vec<RuleEventRow>, StoreError> {
        use events::Column as C;
        let mut query = events::Entity::find()
            .filter(C::ApplicationId.eq(key.application_id.as_uuid()))
            .filter(C::UserId.eq(key.user_id.as_str()));
        if let Some(after) = after {
            let later = Condition::any().add(C::Timestamp.gt(after.at)).add(
                Condition::all()
                    .add(C::Timestamp.eq(after.at))
                    .add(C::Id.gt(after.id)),
            );
            query = query.filter(later);
        }
        let rows = query
            .order_by_asc(C::Timestamp)
            .order_by_asc(C::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(RuleEventRow::from).collect())
    }

    /// A user's stored rule state (empty, without version, for a user never seen).
    #[tracing::instrument(skip_all, fields(user = %key.user_id), err)]
    pub async fn rule_state(&self, key: &UserKey) -> Result<StoredRuleState, StoreError> {
        let row =
            rule_states::Entity::find_by_id((key.application_id.as_uuid(), key.user_id.clone()))
                .one(&self.db)
                .await?;
        let Some(row) = row else {
            return Ok(StoredRuleState::default());
        };
        let state = serde_json::from_value(row.state)
            .map_err(|err| DbErr::Custom(format!("rule state of {}: {err}", key.user_id)))?;
        let cursor = row
            .cursor_at
            .zip(row.cursor_id)
            .map(|(at, id)| EventCursor { at, id });
        Ok(StoredRuleState {
            state,
            version: Some(row.version),
            cursor,
        })
    }

    /// Writes the state and inserts its notifications in one transaction. `Ok(false)` when another worker
    /// wrote the user's state since it was read: nothing was written, read again and re-evaluate.
    #[tracing::instrument(skip_all, fields(user = %update.key.user_id, notifications = update.notifications.len()), err)]
    pub async fn save_rule_outcome(&self, update: RuleUpdate<'_>) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let written = match update.expected {
            None => insert_state(&txn, &update).await?,
            Some(version) => update_state(&txn, &update, version).await?,
        };
        if !written {
            txn.rollback().await?;
            return Ok(false);
        }
        insert_notifications(&txn, update.key, update.notifications).await?;
        txn.commit().await?;
        Ok(true)
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
fn wake_at(state: &UserRuleState) -> Option<DateTime<Utc>> {
    state
        .timers
        .iter()
        .map(|timer| due_at(timer, Lateness::from_secs(0)))
        .min()
}

fn state_json(state: &UserRuleState) -> Result<Value, StoreError> {
    serde_json::to_value(state).map_err(|err| DbErr::Custom(err.to_string()).into())
}

async fn insert_state(
    txn: &impl ConnectionTrait,
    update: &RuleUpdate<'_>,
) -> Result<bool, StoreError> {
    use rule_states::Column as C;
    let row = rule_states::ActiveModel {
        application_id: Set(update.key.application_id.as_uuid()),
        user_id: Set(update.key.user_id.clone()),
        state: Set(state_json(update.state)?),
        version: Set(1),
        cursor_at: Set(update.cursor.map(|c| c.at)),
        cursor_id: Set(update.cursor.map(|c| c.id)),
        wake_at: Set(wake_at(update.state)),
        updated_at: Set(Utc::now()),
    };
    let inserted = rule_states::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([C::ApplicationId, C::UserId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(inserted == 1)
}

async fn update_state(
    txn: &impl ConnectionTrait,
    update: &RuleUpdate<'_>,
    version: i64,
) -> Result<bool, StoreError> {
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

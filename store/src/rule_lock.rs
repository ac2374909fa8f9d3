//! Notification-rule state inside a job's unit of work: the users' states are locked, evaluated and
//! written in the same transaction as the events that changed them (see [`crate::IngestTxn`]).
//!
//! On PostgreSQL each state row is locked (`FOR UPDATE`, in user order, so concurrent jobs cannot deadlock
//! on them); on SQLite the transaction already holds the database's single write lock once it has written
//! the events. Either way, two jobs of one user evaluate one after the other, each seeing what the other
//! committed.

use crate::entities::rule_states;
use crate::notifications::insert_notifications;
use crate::rule_events::{ReadBack, RuleEventRow, USERS_PER_QUERY, events_after};
use crate::rule_state::{Checkpoint, StoredRuleState, UserKey, state_json, wake_at};
use crate::sql::{json_param, stored_time};
use crate::{EventCursor, IngestTxn, RuleRevision, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::ApplicationId;
use eye_rules::{Notification, UserRuleState};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A user's new state, written under the lock taken by [`IngestTxn::lock_rule_states`].
#[derive(Debug, Clone)]
pub struct RuleWrite<'a> {
    /// Whose state.
    pub key: &'a UserKey,
    /// The new state.
    pub state: &'a UserRuleState,
    /// The last event evaluated into it.
    pub cursor: Option<EventCursor>,
    /// What becomes of the stored checkpoint.
    pub checkpoint: CheckpointWrite<'a>,
    /// The notifications it decided (once per occasion).
    pub notifications: &'a [Notification],
    /// The rules' revision it was evaluated with.
    pub revision: RuleRevision,
}

/// What a write does to the stored checkpoint.
#[derive(Debug, Clone, Copy)]
pub enum CheckpointWrite<'a> {
    /// Leave it: it still describes the user's history up to its cursor.
    Keep,
    /// Replace it with a later one.
    Set(&'a Checkpoint),
    /// Drop it: an event older than it arrived, so it no longer describes the history.
    Clear,
}

/// PostgreSQL: each user's state row by its primary key, locked in the order the users are given (sorted,
/// so concurrent jobs cannot deadlock). The users travel as one JSON parameter, so the statement is the
/// same for any number of them, and its plan is an index probe per user whatever the table held when the
/// plan was cached. A `user_id IN (...)` list, once its connection switched to the generic plan it made
/// while `rule_states` was still empty (PostgreSQL does after five runs), probed the key by application
/// alone and filtered every user's row, until an `ANALYZE`, which a server without autovacuum never runs:
/// 7 ms a job at 15,000 users, a sixth of PostgreSQL's time while storing (BENCHMARKS.md, "The third
/// round").
const LOCK_PER_USER: &str = r#"SELECT s.* FROM json_array_elements_text($2::json) WITH ORDINALITY AS u(user_id, n)
CROSS JOIN LATERAL (
    SELECT * FROM rule_states WHERE application_id = $1 AND user_id = u.user_id FOR UPDATE
) s
ORDER BY u.n"#;

fn lock_per_user(application: ApplicationId, users: &[String]) -> Result<Statement, StoreError> {
    let users = json_param(&users)?;
    Ok(Statement::from_sql_and_values(
        DbBackend::Postgres,
        LOCK_PER_USER,
        [application.as_uuid().into(), users.into()],
    ))
}

/// PostgreSQL: users' new states, as an upsert keyed by the primary key. Every row exists (the lock
/// created the missing ones), so each is found by a probe of the key; an `UPDATE … FROM` the same rows
/// would leave the choice to the planner, which, with a plan cached while `rule_states` was small, may scan
/// the table instead (see [`LOCK_PER_USER`]).
macro_rules! write_states {
    ($checkpoint:literal) => {
        concat!(
            r#"INSERT INTO rule_states AS r (application_id, user_id, state, version, cursor_at, cursor_id,
    wake_at, checkpoint, checkpoint_at, checkpoint_id, updated_at, rules_revision)
SELECT $1, w.user_id, w.state, 1, w.cursor_at, w.cursor_id, w.wake_at, w.checkpoint, w.checkpoint_at,
    w.checkpoint_id, $2, w.rules_revision
FROM json_to_recordset($3::json) AS w(user_id text, state jsonb, cursor_at timestamptz, cursor_id bigint,
    wake_at timestamptz, checkpoint jsonb, checkpoint_at timestamptz, checkpoint_id bigint,
    rules_revision bigint)
ON CONFLICT (application_id, user_id) DO UPDATE SET state = excluded.state, version = r.version + 1,
    cursor_at = excluded.cursor_at, cursor_id = excluded.cursor_id, wake_at = excluded.wake_at,
    updated_at = excluded.updated_at, rules_revision = excluded.rules_revision"#,
            $checkpoint
        )
    };
}

/// The checkpoint stays as stored.
const WRITE_STATES_KEEPING_CHECKPOINTS: &str = write_states!("");

/// The checkpoint is replaced or cleared (NULLs).
const WRITE_STATES_AND_CHECKPOINTS: &str = write_states!(
    ", checkpoint = excluded.checkpoint, checkpoint_at = excluded.checkpoint_at, \
     checkpoint_id = excluded.checkpoint_id"
);

/// One row of the states' JSON parameter; the field names are its column names.
#[derive(Serialize)]
struct StateRow<'a> {
    user_id: &'a str,
    state: &'a UserRuleState,
    cursor_at: Option<DateTime<Utc>>,
    cursor_id: Option<i64>,
    wake_at: Option<DateTime<Utc>>,
    checkpoint: Option<&'a UserRuleState>,
    checkpoint_at: Option<DateTime<Utc>>,
    checkpoint_id: Option<i64>,
    rules_revision: i64,
}

impl<'a> From<&RuleWrite<'a>> for StateRow<'a> {
    fn from(write: &RuleWrite<'a>) -> Self {
        let checkpoint = match write.checkpoint {
            CheckpointWrite::Set(checkpoint) => Some(checkpoint),
            CheckpointWrite::Keep | CheckpointWrite::Clear => None,
        };
        Self {
            user_id: write.key.user_id.as_str(),
            state: write.state,
            cursor_at: write.cursor.map(|c| stored_time(c.at)),
            cursor_id: write.cursor.map(|c| c.id),
            // Times as the database keeps them (microseconds), as the driver binds them elsewhere.
            wake_at: wake_at(write.state).map(stored_time),
            checkpoint: checkpoint.map(|c| &c.state),
            checkpoint_at: checkpoint.map(|c| stored_time(c.cursor.at)),
            checkpoint_id: checkpoint.map(|c| c.cursor.id),
            rules_revision: write.revision.get(),
        }
    }
}

impl IngestTxn {
    /// Locks the users' rule states until this unit of work ends, creating the rows of users never seen.
    #[tracing::instrument(skip_all, fields(application = %application, users = users.len()), err)]
    pub async fn lock_rule_states(
        &self,
        application: ApplicationId,
        users: &[String],
    ) -> Result<HashMap<String, StoredRuleState>, StoreError> {
        let mut sorted = users.to_vec();
        sorted.sort();
        sorted.dedup();
        let mut found = HashMap::with_capacity(sorted.len());
        for chunk in sorted.chunks(USERS_PER_QUERY) {
            self.create_missing_states(application, chunk).await?;
            let rows = match self.txn.get_database_backend() {
                DbBackend::Postgres => {
                    rule_states::Entity::find()
                        .from_raw_sql(lock_per_user(application, chunk)?)
                        .all(&self.txn)
                        .await?
                }
                // SQLite: the transaction already holds the database's single write lock.
                _ => {
                    rule_states::Entity::find()
                        .filter(rule_states::Column::ApplicationId.eq(application.as_uuid()))
                        .filter(rule_states::Column::UserId.is_in(chunk.iter().map(String::as_str)))
                        .all(&self.txn)
                        .await?
                }
            };
            for row in rows {
                let user = row.user_id.clone();
                found.insert(user, StoredRuleState::try_from(row)?);
            }
        }
        Ok(found)
    }

    /// Empty states (version 0) for users without a row; rows created meanwhile by another job are kept.
    async fn create_missing_states(
        &self,
        application: ApplicationId,
        users: &[String],
    ) -> Result<(), StoreError> {
        use rule_states::Column as C;
        let empty = state_json(&UserRuleState::default())?;
        let now = Utc::now();
        let rows = users.iter().map(|user| rule_states::ActiveModel {
            application_id: Set(application.as_uuid()),
            user_id: Set(user.clone()),
            state: Set(empty.clone()),
            version: Set(0),
            cursor_at: Set(None),
            cursor_id: Set(None),
            wake_at: Set(None),
            checkpoint: Set(None),
            checkpoint_at: Set(None),
            checkpoint_id: Set(None),
            updated_at: Set(now),
            rules_revision: Set(None),
        });
        rule_states::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([C::ApplicationId, C::UserId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.txn)
            .await?;
        Ok(())
    }

    /// Each listed user's stored events of `types` (those the rules react to) after their cursor (all
    /// of them when `None`), in event-time order, including the ones this unit of work stored but for
    /// those the caller holds already.
    pub async fn rule_events_after(
        &self,
        application: ApplicationId,
        from: &[ReadBack],
        types: &[(&str, &str)],
    ) -> Result<HashMap<String, Vec<RuleEventRow>>, StoreError> {
        events_after(&self.txn, application, from, types).await
    }

    /// Writes the users' new states (their version goes up by one, which tells optimistic writers such
    /// as the timer sweeper to read again) and inserts the notifications they decided.
    #[tracing::instrument(skip_all, fields(users = writes.len()), err)]
    pub async fn write_rule_states(&self, writes: &[RuleWrite<'_>]) -> Result<(), StoreError> {
        match self.txn.get_database_backend() {
            DbBackend::Postgres => self.write_states_together(writes).await?,
            _ => {
                for write in writes {
                    self.write_rule_state(write).await?;
                }
            }
        }
        for write in writes {
            insert_notifications(&self.txn, write.key, write.notifications).await?;
        }
        Ok(())
    }

    /// PostgreSQL: one statement per application and kind of checkpoint write, instead of one per user
    /// (a job writes ~25 users; each statement is a round trip both sides pay for).
    async fn write_states_together(&self, writes: &[RuleWrite<'_>]) -> Result<(), StoreError> {
        let mut groups: BTreeMap<(ApplicationId, bool), Vec<StateRow<'_>>> = BTreeMap::new();
        for write in writes {
            let keep = matches!(write.checkpoint, CheckpointWrite::Keep);
            groups
                .entry((write.key.application_id, keep))
                .or_default()
                .push(StateRow::from(write));
        }
        let now = Utc::now();
        for ((application, keep), rows) in groups {
            let sql = if keep {
                WRITE_STATES_KEEPING_CHECKPOINTS
            } else {
                WRITE_STATES_AND_CHECKPOINTS
            };
            let rows = json_param(&rows)?;
            self.txn
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    [application.as_uuid().into(), now.into(), rows.into()],
                ))
                .await?;
        }
        Ok(())
    }

    async fn write_rule_state(&self, write: &RuleWrite<'_>) -> Result<(), StoreError> {
        use rule_states::Column as C;
        let mut update = rule_states::Entity::update_many()
            .col_expr(C::State, Expr::value(state_json(write.state)?))
            .col_expr(C::Version, Expr::col(C::Version).add(1))
            .col_expr(C::CursorAt, Expr::value(write.cursor.map(|c| c.at)))
            .col_expr(C::CursorId, Expr::value(write.cursor.map(|c| c.id)))
            .col_expr(C::WakeAt, Expr::value(wake_at(write.state)))
            .col_expr(C::UpdatedAt, Expr::value(Utc::now()))
            .col_expr(C::RulesRevision, Expr::value(write.revision.get()));
        match write.checkpoint {
            CheckpointWrite::Keep => {}
            CheckpointWrite::Set(checkpoint) => {
                update = update
                    .col_expr(C::Checkpoint, Expr::value(state_json(&checkpoint.state)?))
                    .col_expr(C::CheckpointAt, Expr::value(checkpoint.cursor.at))
                    .col_expr(C::CheckpointId, Expr::value(checkpoint.cursor.id));
            }
            CheckpointWrite::Clear => {
                update = update
                    .col_expr(
                        C::Checkpoint,
                        Expr::value(Option::<serde_json::Value>::None),
                    )
                    .col_expr(
                        C::CheckpointAt,
                        Expr::value(Option::<chrono::DateTime<Utc>>::None),
                    )
                    .col_expr(C::CheckpointId, Expr::value(Option::<i64>::None));
            }
        }
        update
            .filter(C::ApplicationId.eq(write.key.application_id.as_uuid()))
            .filter(C::UserId.eq(write.key.user_id.as_str()))
            .exec(&self.txn)
            .await?;
        Ok(())
    }
}

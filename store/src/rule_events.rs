//! Stored events as the notification rules read them: each user's events after their rule cursor.

use crate::entities::events;
use crate::sql::json_param;
use crate::{EventCursor, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::ApplicationId;
use eye_rules::RuleEvent;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    Statement,
};
use serde_json::{Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

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

/// One user's stored events to read back: those after `after` (all of them when `None`), but for the ones
/// the caller stored itself and holds already (`known`, row ids), which need not travel back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBack {
    /// Whose events.
    pub user_id: String,
    /// The position to read after.
    pub after: Option<EventCursor>,
    /// Row ids not to read.
    pub known: Vec<i64>,
}

/// Users per query when reading several users' states or events.
pub(crate) const USERS_PER_QUERY: usize = 200;

/// PostgreSQL: one index range scan per user, after that user's cursor, keeping the types the rules
/// react to. The users and the types travel as JSON parameters, so the statement is the same for every
/// call. The types are compared as one JSON array per row, which no index can serve: an `IN` on
/// `(category, name)` would let the planner walk the category index over every user's events instead.
/// `OFFSET 0` keeps the planner from flattening the subquery into a join: with statistics lagging
/// behind a fast-growing table it then chose to hash every event of the application (measured: 300 ms to
/// 1.1 s a call, against ~10 ms). An OR of per-user conditions took 11 ms to plan for 200 users and ran
/// as a parallel bitmap scan, ~40 ms in all.
const PER_USER_LATERAL: &str = r#"SELECT e.* FROM json_to_recordset($2::json)
    AS c(user_id text, after_at timestamptz, after_id bigint, known bigint[])
CROSS JOIN LATERAL (
    SELECT * FROM events
    WHERE application_id = $1 AND user_id = c.user_id
      AND ("timestamp", id) > (COALESCE(c.after_at, '-infinity'), COALESCE(c.after_id, 0))
      AND id <> ALL (c.known)
      AND jsonb_build_array(category, name) = ANY (ARRAY(SELECT jsonb_array_elements($3::jsonb)))
    OFFSET 0
) e
ORDER BY e."timestamp", e.id"#;

fn per_user_lateral(
    application: ApplicationId,
    users: &[ReadBack],
    types: &[(&str, &str)],
) -> Result<Statement, StoreError> {
    let users: Vec<Value> = users
        .iter()
        .map(|user| {
            serde_json::json!({
                "user_id": user.user_id,
                "after_at": user.after.map(|a| a.at),
                "after_id": user.after.map(|a| a.id),
                "known": user.known,
            })
        })
        .collect();
    let types: Vec<Value> = types
        .iter()
        .map(|(category, name)| serde_json::json!([category, name]))
        .collect();
    Ok(Statement::from_sql_and_values(
        DbBackend::Postgres,
        PER_USER_LATERAL,
        [
            application.as_uuid().into(),
            json_param(&users)?.into(),
            json_param(&types)?.into(),
        ],
    ))
}

/// Other databases (SQLite): a user's events after `after` (all of them when `None`), as one row
/// comparison, a range on the user index, without the known ones.
fn events_of(read: &ReadBack) -> Condition {
    use events::Column as C;
    let mut user = Condition::all().add(C::UserId.eq(read.user_id.as_str()));
    if !read.known.is_empty() {
        user = user.add(C::Id.is_not_in(read.known.iter().copied()));
    }
    let Some(after) = read.after else { return user };
    let position = Expr::tuple([Expr::col(C::Timestamp), Expr::col(C::Id)]);
    user.add(position.gt(Expr::tuple([Expr::val(after.at), Expr::val(after.id)])))
}

/// One of `types`, as a condition (other databases).
fn of_types(types: &[(&str, &str)]) -> Condition {
    use events::Column as C;
    types
        .iter()
        .fold(Condition::any(), |any, (category, name)| {
            any.add(C::Category.eq(*category).and(C::Name.eq(*name)))
        })
}

/// On PostgreSQL, the read-back is planned for the table as it is at each call. Its statement is prepared
/// once per connection, and after five runs PostgreSQL may keep one generic plan until an `ANALYZE`. Made
/// while `events` was empty (a fresh database: its indexes were built on no rows, so the table counts as
/// holding none), that plan scanned the whole table for every user, and a server without autovacuum never
/// replaces it (test: `queries::plans::the_rules_read_back_reads_only_the_users_events_after_the_table_grew`).
/// Planning it anew costs a few tenths of a millisecond per job; `SET LOCAL` keeps the setting to this
/// transaction, and it is restored for the job's statements that follow.
const PLAN_FOR_THE_TABLE_AT_HAND: &str = "SET LOCAL plan_cache_mode = force_custom_plan";
const PLAN_AS_USUAL: &str = "SET LOCAL plan_cache_mode TO DEFAULT";

/// Each listed user's events of `types` after their cursor (all of them when `None`), but for the known
/// ones, in event-time order, inside the caller's transaction. Events of other types would change nothing
/// (the rules ignore a type none of them names), so they are neither read nor sent.
pub(crate) async fn events_after(
    db: &impl ConnectionTrait,
    application: ApplicationId,
    from: &[ReadBack],
    types: &[(&str, &str)],
) -> Result<HashMap<String, Vec<RuleEventRow>>, StoreError> {
    let mut found: HashMap<String, Vec<RuleEventRow>> = HashMap::new();
    if types.is_empty() {
        return Ok(found);
    }
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    if postgres {
        db.execute_unprepared(PLAN_FOR_THE_TABLE_AT_HAND).await?;
    }
    for chunk in from.chunks(USERS_PER_QUERY) {
        for row in events_after_chunk(db, application, chunk, types).await? {
            let Some(user) = row.user_id.clone() else {
                continue;
            };
            found.entry(user).or_default().push(row);
        }
    }
    if postgres {
        db.execute_unprepared(PLAN_AS_USUAL).await?;
    }
    Ok(found)
}

/// One query's worth of [`events_after`].
async fn events_after_chunk(
    db: &impl ConnectionTrait,
    application: ApplicationId,
    users: &[ReadBack],
    types: &[(&str, &str)],
) -> Result<Vec<RuleEventRow>, StoreError> {
    let rows = match db.get_database_backend() {
        DbBackend::Postgres => {
            events::Entity::find()
                .from_raw_sql(per_user_lateral(application, users, types)?)
                .all(db)
                .await?
        }
        _ => {
            let any_user = users
                .iter()
                .fold(Condition::any(), |any, user| any.add(events_of(user)));
            events::Entity::find()
                .filter(events::Column::ApplicationId.eq(application.as_uuid()))
                .filter(any_user)
                .filter(of_types(types))
                .order_by_asc(events::Column::Timestamp)
                .order_by_asc(events::Column::Id)
                .all(db)
                .await?
        }
    };
    Ok(rows.into_iter().map(RuleEventRow::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::QueryTrait;

    #[test]
    fn events_after_a_cursor_are_one_row_comparison() {
        let at = DateTime::UNIX_EPOCH;
        let read = |after, known: &[i64]| ReadBack {
            user_id: "u1".into(),
            after,
            known: known.to_vec(),
        };
        let query = events::Entity::find()
            .filter(events_of(&read(Some(EventCursor { at, id: 7 }), &[])))
            .build(DbBackend::Sqlite)
            .to_string();
        assert!(query.contains(r#"("timestamp", "id") > ("#), "{query}");
        let all = events::Entity::find()
            .filter(events_of(&read(None, &[])))
            .build(DbBackend::Sqlite)
            .to_string();
        assert!(all.ends_with(r#"WHERE "events"."user_id" = 'u1'"#), "{all}");
        let but_known = events::Entity::find()
            .filter(events_of(&read(None, &[8, 9])))
            .build(DbBackend::Sqlite)
            .to_string();
        assert!(but_known.contains(r#""id" NOT IN (8, 9)"#), "{but_known}");
    }
}

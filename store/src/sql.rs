//! Raw statements that run unchanged on PostgreSQL and SQLite, but for the placeholder syntax; values
//! as the database keeps them; JSON parameters.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{DbBackend, DbErr, Statement, Value};
use serde::Serialize;

/// The time PostgreSQL keeps: microseconds. Every way of storing an event or a rule state writes it so
/// (SQLite keeps an event's own times, `timestamp`, `sent_at` and `client_timestamp`, as sent, and its
/// `received_at` so), and the cursors handed to the rules carry the very value stored.
pub fn stored_time(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// A schema version as the `integer` column holds it, the same way on every path (versions count up from
/// 1; one past `i32::MAX` would take two billion publications).
pub(crate) fn stored_version(version: u32) -> i32 {
    i32::try_from(version).unwrap_or(i32::MAX)
}

/// A value as one JSON text parameter, for PostgreSQL to unpack (`json_to_recordset` and friends).
pub(crate) fn json_param(value: &impl Serialize) -> Result<String, DbErr> {
    serde_json::to_string(value).map_err(|err| DbErr::Json(err.to_string()))
}

/// The bound values of one statement and their placeholders (`$n` on PostgreSQL, `?` on SQLite).
pub(crate) struct Params {
    backend: DbBackend,
    values: Vec<Value>,
}

impl Params {
    pub(crate) fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            values: Vec::new(),
        }
    }

    /// Binds `value` and answers its placeholder. Bind in the order the placeholders appear in the
    /// statement: SQLite's `?` are positional.
    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_owned(),
        }
    }

    /// `(p, p, …)` over `values`, for `IN` lists.
    pub(crate) fn list<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> String {
        let marks: Vec<String> = values.into_iter().map(|v| self.bind(v)).collect();
        format!("({})", marks.join(", "))
    }

    /// The statement `sql` with these values.
    pub(crate) fn statement(self, sql: &str) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_on_postgres_and_anonymous_on_sqlite() {
        let mut pg = Params::new(DbBackend::Postgres);
        assert_eq!(pg.bind(1_i64), "$1");
        assert_eq!(pg.list(["a", "b"]), "($2, $3)");
        let mut lite = Params::new(DbBackend::Sqlite);
        assert_eq!(lite.bind(1_i64), "?");
        assert_eq!(lite.list(["a", "b"]), "(?, ?)");
    }
}

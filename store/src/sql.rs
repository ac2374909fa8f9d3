//! Raw statements that run unchanged on PostgreSQL and SQLite, but for the placeholder syntax.

use sea_orm::{DbBackend, Statement, Value};

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

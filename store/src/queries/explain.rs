//! The plans of the query endpoints' SQL, so tests (and operators) can check that indexes serve them.

use super::{
    EventFilter, StatsFilter, events::select_events, scope_condition, stats::count_queries,
};
use crate::entities::events;
use crate::{Store, StoreError};
use sea_orm::{Condition, ConnectionTrait, QueryTrait, Statement};

impl Store {
    /// The database's plan for [`Store::query_events`] with this filter, one line per plan row
    /// (`EXPLAIN` on PostgreSQL, `EXPLAIN QUERY PLAN` on SQLite). A session filter is planned as given:
    /// name its application in the scope, as `query_events` does before it runs.
    pub async fn explain_events(&self, filter: &EventFilter) -> Result<Vec<String>, StoreError> {
        let scope = scope_condition(&filter.scope, events::Column::ApplicationId)
            .unwrap_or_else(Condition::all);
        let statement = select_events(filter, scope).build(self.db.get_database_backend());
        self.explain(statement).await
    }

    /// The database's plans for [`Store::event_counts`] with this filter: one per statement it runs
    /// (whole hours from the hourly counts, the ends of the range from the events).
    pub async fn explain_counts(&self, filter: &StatsFilter) -> Result<Vec<String>, StoreError> {
        let mut plans = Vec::new();
        for select in count_queries(filter, self.is_postgres()) {
            let statement = self.db.get_database_backend().build(&select);
            plans.extend(self.explain(statement).await?);
        }
        Ok(plans)
    }

    async fn explain(&self, statement: Statement) -> Result<Vec<String>, StoreError> {
        let prefix = if self.is_postgres() {
            "EXPLAIN "
        } else {
            "EXPLAIN QUERY PLAN "
        };
        let values = statement.values.map(|values| values.0).unwrap_or_default();
        let explain = Statement::from_sql_and_values(
            statement.db_backend,
            format!("{prefix}{}", statement.sql),
            values,
        );
        let rows = self.db.query_all_raw(explain).await?;
        let column = if self.is_postgres() {
            "QUERY PLAN"
        } else {
            "detail"
        };
        rows.iter()
            .map(|row| row.try_get::<String>("", column).map_err(StoreError::from))
            .collect()
    }
}

//! Fast dashboard counts on PostgreSQL (`GET /v1/stats/events`), measured at 1,000,000 events, where a
//! day holds ~34,560 rows:
//! - the time index also carries `application_id`, `category` and `name`, so counting a day reads the
//!   index alone (an index-only scan) instead of visiting every row, whatever the scope and grouping;
//! - statistics on the bucket expressions tell the planner how few buckets a range has, so it counts in
//!   a hash table instead of sorting every row first.
//!
//! SQLite has neither covering indexes nor expression statistics; there it changes nothing.

use crate::statements::run_all;
use sea_orm_migration::prelude::{
    DbErr, DeriveMigrationName, MigrationTrait, SchemaManager, async_trait,
};
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The bucket units of `GET /v1/stats/events`; each expression must match the query's exactly.
const UNITS: [&str; 3] = ["minute", "hour", "day"];

const COVERING_INDEX: [&str; 2] = [
    "DROP INDEX events_time_idx",
    "CREATE INDEX events_time_idx ON events (\"timestamp\") INCLUDE (application_id, category, name)",
];

const PLAIN_INDEX: [&str; 2] = [
    "DROP INDEX events_time_idx",
    "CREATE INDEX events_time_idx ON events (\"timestamp\")",
];

fn create_statistics(unit: &str) -> String {
    format!(
        "CREATE STATISTICS events_{unit}_bucket_stats \
         ON (date_trunc('{unit}', \"timestamp\" AT TIME ZONE 'UTC')) FROM events"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let statements: Vec<String> = COVERING_INDEX
            .iter()
            .map(|s| s.to_string())
            .chain(UNITS.iter().map(|unit| create_statistics(unit)))
            .chain(std::iter::once("ANALYZE events".to_owned()))
            .collect();
        run_all(manager, &statements).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let statements: Vec<String> = UNITS
            .iter()
            .map(|unit| format!("DROP STATISTICS events_{unit}_bucket_stats"))
            .chain(PLAIN_INDEX.iter().map(|s| s.to_string()))
            .collect();
        run_all(manager, &statements).await
    }
}

//! Only the indexes a query uses. Each index of `events` is written with every stored event (BENCHMARKS.md
//! has each one's bytes and time per row, measured at 10,000,000 events):
//! - `events_type_time_idx (category, name, timestamp)` goes: a category (and name) page reads
//!   `events_category_time_idx (category, timestamp, id)` in the page's order and checks the name on the
//!   rows it visits; the old index lacked the `id` tiebreak, so it never served a page on its own.
//! - `events_time_idx` loses the columns migration 7 included for counting days from the index alone:
//!   whole hours now come from `event_counts`, so the index only orders the events by time (retention,
//!   a time range across every application, minute buckets).
//!
//! And on PostgreSQL, the foreign key from `events` to `applications` goes: it checked every stored event
//! with a query that share-locks the application's row (measured: 7 % of PostgreSQL's time while storing),
//! for a guarantee the worker already gives (it stores only the application a verified key named), and
//! applications are never deleted. SQLite keeps it: dropping a constraint there means rebuilding the table.

use crate::statements::run_all;
use sea_orm_migration::prelude::{
    DbErr, DeriveMigrationName, MigrationTrait, SchemaManager, async_trait,
};
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: [&str; 4] = [
    "DROP INDEX events_type_time_idx",
    "DROP INDEX events_time_idx",
    "CREATE INDEX events_time_idx ON events (\"timestamp\")",
    "ALTER TABLE events DROP CONSTRAINT events_application_id_fkey",
];

const DOWN_POSTGRES: [&str; 4] = [
    "CREATE INDEX events_type_time_idx ON events (category, name, \"timestamp\")",
    "DROP INDEX events_time_idx",
    "CREATE INDEX events_time_idx ON events (\"timestamp\") INCLUDE (application_id, category, name)",
    "ALTER TABLE events ADD CONSTRAINT events_application_id_fkey FOREIGN KEY (application_id) \
     REFERENCES applications (id) ON DELETE CASCADE",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite's time index never carried the included columns, and its foreign key stays (above).
        match manager.get_database_backend() {
            DbBackend::Postgres => run_all(manager, &UP).await,
            _ => run_all(manager, &UP[..1]).await,
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => run_all(manager, &DOWN_POSTGRES).await,
            _ => run_all(manager, &DOWN_POSTGRES[..1]).await,
        }
    }
}

//! Pre-aggregated event counts for `GET /v1/stats/events`: one row per hour, application and event type
//! (times a few `slot`s, see below), kept exact by the worker in the same transaction that stores the
//! events, and by retention and erasure in the transactions that delete them. A day per hour reads 24 rows
//! per event type (up to 8 slots each in hours not folded yet) instead of every event; 30 days, 720.
//!
//! `slot`: every concurrent ingest transaction adds to the current hour's rows, and a row's lock is held
//! until commit, so with one row per key the workers would take turns, each waiting for the other's
//! commit to reach the disk. Each transaction adds to the slot of its connection instead (PostgreSQL:
//! the backend's process id modulo 8; SQLite has one writer and uses slot 0), and readers sum the slots.
//! The workers fold the slots of past hours back into slot 0 (`worker/src/count_folder.rs`).
//!
//! The backfill counts the events already stored. It takes a SHARE lock on `events` first, so no event
//! commits between the count and the end of the migration unnoticed; workers of an older version (which
//! do not maintain the counts) must be stopped before migrating.

use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, ForeignKey, ForeignKeyAction, Index, MigrationTrait,
    SchemaManager, Table, TableCreateStatement, async_trait,
};
use sea_orm_migration::schema::{
    big_integer, small_integer, string_len, timestamp_with_time_zone, uuid,
};
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Applications {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum EventCounts {
    Table,
    Hour,
    ApplicationId,
    Category,
    Name,
    Slot,
    Events,
}

fn event_counts_table() -> TableCreateStatement {
    Table::create()
        .table(EventCounts::Table)
        // The start of the hour (UTC) the events occurred in.
        .col(timestamp_with_time_zone(EventCounts::Hour))
        .col(uuid(EventCounts::ApplicationId))
        .col(string_len(EventCounts::Category, 64))
        .col(string_len(EventCounts::Name, 64))
        .col(small_integer(EventCounts::Slot))
        // May be negative in one slot (a deletion subtracts in its own slot); the slots' sum is exact.
        .col(big_integer(EventCounts::Events))
        // Hour first: every query asks for a time range, with or without an application.
        .primary_key(
            Index::create()
                .name("event_counts_pkey")
                .col(EventCounts::Hour)
                .col(EventCounts::ApplicationId)
                .col(EventCounts::Category)
                .col(EventCounts::Name)
                .col(EventCounts::Slot),
        )
        .foreign_key(
            ForeignKey::create()
                .name("event_counts_application_id_fkey")
                .from(EventCounts::Table, EventCounts::ApplicationId)
                .to(Applications::Table, Applications::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

/// The hour of `"timestamp"` in the encoding each backend stores timestamps in: `timestamptz` on
/// PostgreSQL (truncated in UTC, whatever the session's time zone), RFC 3339 text on SQLite, as sqlx
/// writes a `DateTime<Utc>` (`2026-01-01T06:00:00+00:00`).
fn hour_of_timestamp(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "date_trunc('hour', \"timestamp\" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        }
        _ => "strftime('%Y-%m-%dT%H:00:00+00:00', \"timestamp\")",
    }
}

fn backfill(backend: DbBackend) -> String {
    format!(
        "INSERT INTO event_counts (hour, application_id, category, name, slot, events) \
         SELECT {hour}, application_id, category, name, 0, count(*) FROM events \
         GROUP BY {hour}, application_id, category, name",
        hour = hour_of_timestamp(backend)
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(event_counts_table()).await?;
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        if backend == DbBackend::Postgres {
            // Held to the end of the migration's transaction: ingest waits rather than commit uncounted.
            db.execute_unprepared("LOCK TABLE events IN SHARE MODE")
                .await?;
        }
        db.execute_unprepared(&backfill(backend)).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EventCounts::Table).to_owned())
            .await
    }
}

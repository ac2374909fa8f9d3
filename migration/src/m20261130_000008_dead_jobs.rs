//! Dead jobs: queued batches that failed for a reason that is not transient, kept whole so that an operator
//! can look at them and replay them once the cause is fixed.

use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, Index, MigrationTrait, SchemaManager, Table,
    async_trait,
};
use sea_orm_migration::schema::{
    big_integer, integer, text, timestamp_with_time_zone, timestamp_with_time_zone_null, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeadJobs {
    Table,
    JobId,
    ApplicationId,
    EventCount,
    Error,
    Attempts,
    Batch,
    FirstFailedAt,
    LastFailedAt,
    ReplayedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeadJobs::Table)
                    // One row per job: a job that dies again after a replay updates its row.
                    .col(uuid(DeadJobs::JobId).primary_key())
                    // No foreign key: a job must be recordable even when its application is gone.
                    .col(uuid(DeadJobs::ApplicationId))
                    .col(integer(DeadJobs::EventCount))
                    .col(text(DeadJobs::Error))
                    .col(big_integer(DeadJobs::Attempts))
                    // The batch as serialized JSON text, not jsonb: jsonb refuses the escaped NUL (\u0000)
                    // that a payload may carry, and a dead job must be kept whole, byte for byte.
                    .col(text(DeadJobs::Batch))
                    .col(timestamp_with_time_zone(DeadJobs::FirstFailedAt))
                    .col(timestamp_with_time_zone(DeadJobs::LastFailedAt))
                    .col(timestamp_with_time_zone_null(DeadJobs::ReplayedAt))
                    .to_owned(),
            )
            .await?;
        // Listing is newest first, keyset-paginated on (last_failed_at, job_id).
        manager
            .create_index(
                Index::create()
                    .name("dead_jobs_time_idx")
                    .table(DeadJobs::Table)
                    .col(DeadJobs::LastFailedAt)
                    .col(DeadJobs::JobId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeadJobs::Table).to_owned())
            .await
    }
}

//! Events the service accepted but could not store, kept with the reason so the team can monitor them.

use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, Index, MigrationTrait, SchemaManager, Table,
    async_trait,
};
use sea_orm_migration::schema::{
    big_pk_auto, json_binary, string_len, text, timestamp_with_time_zone, uuid, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IngestErrors {
    Table,
    Id,
    ApplicationId,
    JobId,
    EventId,
    Reason,
    Detail,
    Raw,
    ReceivedAt,
    RecordedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IngestErrors::Table)
                    .col(big_pk_auto(IngestErrors::Id))
                    // No foreign key: an error must be recordable even when its application is gone.
                    .col(uuid(IngestErrors::ApplicationId))
                    .col(uuid(IngestErrors::JobId))
                    .col(uuid_null(IngestErrors::EventId))
                    .col(string_len(IngestErrors::Reason, 64))
                    .col(text(IngestErrors::Detail))
                    .col(json_binary(IngestErrors::Raw))
                    .col(timestamp_with_time_zone(IngestErrors::ReceivedAt))
                    .col(timestamp_with_time_zone(IngestErrors::RecordedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ingest_errors_reason_time_idx")
                    .table(IngestErrors::Table)
                    .col(IngestErrors::Reason)
                    .col(IngestErrors::RecordedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ingest_errors_time_idx")
                    .table(IngestErrors::Table)
                    .col(IngestErrors::RecordedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IngestErrors::Table).to_owned())
            .await
    }
}

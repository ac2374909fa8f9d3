//! Event types with versioned JSON Schemas; what validation records on events and errors.

use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, Index, MigrationTrait, SchemaManager, Table,
    async_trait,
};
use sea_orm_migration::schema::{
    big_pk_auto, integer, integer_null, json_binary, string_len, string_len_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventTypes {
    Table,
    Id,
    Category,
    Name,
    Version,
    Schema,
    CreatedAt,
    RetiredAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    ClientTimestamp,
    SchemaVersion,
}

#[derive(DeriveIden)]
enum IngestErrors {
    Table,
    ApplicationId,
    EventId,
    Category,
    Name,
    RecordedAt,
    ResolvedAt,
}

async fn create_event_types(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(EventTypes::Table)
                // Monotonic: workers notice a newly published version by the highest id.
                .col(big_pk_auto(EventTypes::Id))
                .col(string_len(EventTypes::Category, 64))
                .col(string_len(EventTypes::Name, 64))
                .col(integer(EventTypes::Version))
                .col(json_binary(EventTypes::Schema))
                .col(timestamp_with_time_zone(EventTypes::CreatedAt))
                .col(timestamp_with_time_zone_null(EventTypes::RetiredAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("event_types_type_version_key")
                .table(EventTypes::Table)
                .col(EventTypes::Category)
                .col(EventTypes::Name)
                .col(EventTypes::Version)
                .unique()
                .to_owned(),
        )
        .await
}

async fn add_validation_columns(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // SQLite adds one column per ALTER TABLE.
    let events_columns = [
        timestamp_with_time_zone_null(Events::ClientTimestamp),
        integer_null(Events::SchemaVersion),
    ];
    for column in events_columns {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
    }
    let error_columns = [
        string_len_null(IngestErrors::Category, 64),
        string_len_null(IngestErrors::Name, 64),
        timestamp_with_time_zone_null(IngestErrors::ResolvedAt),
    ];
    for column in error_columns {
        manager
            .alter_table(
                Table::alter()
                    .table(IngestErrors::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
    }
    Ok(())
}

async fn index_errors(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_index(
            Index::create()
                .name("ingest_errors_type_time_idx")
                .table(IngestErrors::Table)
                .col(IngestErrors::Category)
                .col(IngestErrors::Name)
                .col(IngestErrors::RecordedAt)
                .to_owned(),
        )
        .await?;
    // A client retrying a bad event, or a job retried after a crash, records it once.
    manager
        .create_index(
            Index::create()
                .name("ingest_errors_application_event_key")
                .table(IngestErrors::Table)
                .col(IngestErrors::ApplicationId)
                .col(IngestErrors::EventId)
                .unique()
                .to_owned(),
        )
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_event_types(manager).await?;
        add_validation_columns(manager).await?;
        index_errors(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "ingest_errors_application_event_key",
            "ingest_errors_type_time_idx",
        ] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(IngestErrors::Table)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(EventTypes::Table).to_owned())
            .await
    }
}

//! Events and the sessions they belong to.

use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, ForeignKey, ForeignKeyAction, Index,
    IndexCreateStatement, MigrationTrait, SchemaManager, Table, async_trait,
};
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, json_binary, string_len, string_len_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Applications {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    EventId,
    ApplicationId,
    SessionId,
    Category,
    Name,
    Data,
    Timestamp,
    SentAt,
    ReceivedAt,
    StoredAt,
    UserId,
    DeviceId,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    ApplicationId,
    SessionId,
    FirstSeen,
    LastSeen,
    EventCount,
}

fn events_table() -> sea_orm_migration::prelude::TableCreateStatement {
    Table::create()
        .table(Events::Table)
        // A surrogate key gives a stable tiebreak for events with equal timestamps (keyset pagination).
        .col(big_pk_auto(Events::Id))
        .col(uuid(Events::EventId))
        .col(uuid(Events::ApplicationId))
        .col(string_len(Events::SessionId, 128))
        .col(string_len(Events::Category, 64))
        .col(string_len(Events::Name, 64))
        .col(json_binary(Events::Data))
        .col(timestamp_with_time_zone(Events::Timestamp))
        .col(timestamp_with_time_zone_null(Events::SentAt))
        .col(timestamp_with_time_zone(Events::ReceivedAt))
        .col(timestamp_with_time_zone(Events::StoredAt))
        .col(string_len_null(Events::UserId, 128))
        .col(string_len_null(Events::DeviceId, 128))
        .foreign_key(
            ForeignKey::create()
                .name("events_application_id_fkey")
                .from(Events::Table, Events::ApplicationId)
                .to(Applications::Table, Applications::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

fn sessions_table() -> sea_orm_migration::prelude::TableCreateStatement {
    Table::create()
        .table(Sessions::Table)
        .col(uuid(Sessions::ApplicationId))
        .col(string_len(Sessions::SessionId, 128))
        .col(timestamp_with_time_zone(Sessions::FirstSeen))
        .col(timestamp_with_time_zone(Sessions::LastSeen))
        .col(big_integer(Sessions::EventCount))
        .primary_key(
            Index::create()
                .name("sessions_pkey")
                .col(Sessions::ApplicationId)
                .col(Sessions::SessionId),
        )
        .foreign_key(
            ForeignKey::create()
                .name("sessions_application_id_fkey")
                .from(Sessions::Table, Sessions::ApplicationId)
                .to(Applications::Table, Applications::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

fn events_indexes() -> Vec<IndexCreateStatement> {
    let index = |name: &str| Index::create().name(name).table(Events::Table).to_owned();
    vec![
        // Retries and duplicates are stored once: the worker inserts with ON CONFLICT DO NOTHING on this.
        index("events_application_event_key")
            .col(Events::ApplicationId)
            .col(Events::EventId)
            .unique()
            .to_owned(),
        index("events_session_time_idx")
            .col(Events::ApplicationId)
            .col(Events::SessionId)
            .col(Events::Timestamp)
            .col(Events::Id)
            .to_owned(),
        index("events_type_time_idx")
            .col(Events::Category)
            .col(Events::Name)
            .col(Events::Timestamp)
            .to_owned(),
        index("events_time_idx").col(Events::Timestamp).to_owned(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(events_table()).await?;
        for index in events_indexes() {
            manager.create_index(index).await?;
        }
        manager.create_table(sessions_table()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}

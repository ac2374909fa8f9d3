//! Analyst queries: read keys, and the indexes that serve every filter of the query endpoints.

use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, Index, IndexCreateStatement, MigrationTrait,
    SchemaManager, Table, TableCreateStatement, async_trait,
};
use sea_orm_migration::schema::{
    char_len, json_binary_null, pk_uuid, string_len, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReadKeys {
    Table,
    Id,
    Name,
    KeyHash,
    KeyPrefix,
    ApplicationIds,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    ApplicationId,
    Category,
    Timestamp,
    UserId,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    ApplicationId,
    SessionId,
    FirstSeen,
}

fn read_keys_table() -> TableCreateStatement {
    Table::create()
        .table(ReadKeys::Table)
        .col(pk_uuid(ReadKeys::Id))
        .col(string_len(ReadKeys::Name, 128))
        // SHA-256 of the key, hex, like ingest keys.
        .col(char_len(ReadKeys::KeyHash, 64))
        .col(string_len(ReadKeys::KeyPrefix, 16))
        // A JSON array of application ids; NULL reads every application.
        .col(json_binary_null(ReadKeys::ApplicationIds))
        .col(timestamp_with_time_zone(ReadKeys::CreatedAt))
        .col(timestamp_with_time_zone_null(ReadKeys::RevokedAt))
        .to_owned()
}

/// Each index ends in the query's sort order (`timestamp, id`), so a page is read straight off it.
fn indexes() -> Vec<IndexCreateStatement> {
    let events = |name: &str| Index::create().name(name).table(Events::Table).to_owned();
    let sessions = |name: &str| Index::create().name(name).table(Sessions::Table).to_owned();
    vec![
        Index::create()
            .name("read_keys_key_hash_key")
            .table(ReadKeys::Table)
            .col(ReadKeys::KeyHash)
            .unique()
            .to_owned(),
        events("events_application_time_idx")
            .col(Events::ApplicationId)
            .col(Events::Timestamp)
            .col(Events::Id)
            .to_owned(),
        events("events_category_time_idx")
            .col(Events::Category)
            .col(Events::Timestamp)
            .col(Events::Id)
            .to_owned(),
        events("events_user_time_idx")
            .col(Events::UserId)
            .col(Events::Timestamp)
            .col(Events::Id)
            .to_owned(),
        // A session id without its application: find the applications, then use the session index.
        sessions("sessions_session_idx")
            .col(Sessions::SessionId)
            .to_owned(),
        sessions("sessions_application_first_seen_idx")
            .col(Sessions::ApplicationId)
            .col(Sessions::FirstSeen)
            .col(Sessions::SessionId)
            .to_owned(),
        sessions("sessions_first_seen_idx")
            .col(Sessions::FirstSeen)
            .col(Sessions::ApplicationId)
            .col(Sessions::SessionId)
            .to_owned(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(read_keys_table()).await?;
        for index in indexes() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "events_application_time_idx",
            "events_category_time_idx",
            "events_user_time_idx",
        ] {
            manager
                .drop_index(Index::drop().name(name).table(Events::Table).to_owned())
                .await?;
        }
        for name in [
            "sessions_session_idx",
            "sessions_application_first_seen_idx",
            "sessions_first_seen_idx",
        ] {
            manager
                .drop_index(Index::drop().name(name).table(Sessions::Table).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(ReadKeys::Table).to_owned())
            .await
    }
}

//! The record of every user erasure (`DELETE /v1/admin/applications/{id}/users/{user_id}`): when, by whom,
//! what it removed, and the boundary that later events of the user are judged against. The user is kept
//! only as a hash (SHA-256 of the application id and the user id), the least needed to recognise them.

use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, Index, MigrationTrait, SchemaManager, Table,
    async_trait,
};
use sea_orm_migration::schema::{
    big_integer_null, char_len, pk_uuid, string_len, timestamp_with_time_zone,
    timestamp_with_time_zone_null, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Erasures {
    Table,
    Id,
    ApplicationId,
    UserHash,
    RequestedBy,
    ErasedAt,
    CompletedAt,
    Events,
    SessionsRemoved,
    SessionsAdjusted,
    RuleStates,
    Notifications,
    RefusedEvents,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Erasures::Table)
                    .col(pk_uuid(Erasures::Id))
                    // No foreign key: the record outlives the application's data.
                    .col(uuid(Erasures::ApplicationId))
                    .col(char_len(Erasures::UserHash, 64))
                    .col(string_len(Erasures::RequestedBy, 64))
                    .col(timestamp_with_time_zone(Erasures::ErasedAt))
                    // Null until every step ran; the counts with it.
                    .col(timestamp_with_time_zone_null(Erasures::CompletedAt))
                    .col(big_integer_null(Erasures::Events))
                    .col(big_integer_null(Erasures::SessionsRemoved))
                    .col(big_integer_null(Erasures::SessionsAdjusted))
                    .col(big_integer_null(Erasures::RuleStates))
                    .col(big_integer_null(Erasures::Notifications))
                    .col(big_integer_null(Erasures::RefusedEvents))
                    .to_owned(),
            )
            .await?;
        // Workers look up a batch's users here before storing their events.
        manager
            .create_index(
                Index::create()
                    .name("erasures_user_idx")
                    .table(Erasures::Table)
                    .col(Erasures::ApplicationId)
                    .col(Erasures::UserHash)
                    .col(Erasures::ErasedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Erasures::Table).to_owned())
            .await
    }
}

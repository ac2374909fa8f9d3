//! Notification rules: each user's rule state (with its pending absence timers) and the notifications
//! outbox, unique per occasion.

use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, Index, MigrationTrait, SchemaManager, Table,
    async_trait,
};
use sea_orm_migration::schema::{
    big_integer, big_integer_null, integer, json_binary, string_len, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RuleStates {
    Table,
    ApplicationId,
    UserId,
    State,
    Version,
    CursorAt,
    CursorId,
    WakeAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    ApplicationId,
    Occasion,
    Rule,
    UserId,
    Message,
    TriggeredAt,
    Status,
    Attempts,
    LastError,
    NextAttemptAt,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    ApplicationId,
    UserId,
    Timestamp,
    Id,
}

async fn create_rule_states(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(RuleStates::Table)
                .col(uuid(RuleStates::ApplicationId))
                .col(string_len(RuleStates::UserId, 128))
                // Open pairs and pending timers, as the rules crate's JSON.
                .col(json_binary(RuleStates::State))
                // Optimistic lock: every write checks and bumps it.
                .col(big_integer(RuleStates::Version))
                // The last evaluated event, (timestamp, events.id): an older one means a rebuild.
                .col(timestamp_with_time_zone_null(RuleStates::CursorAt))
                .col(big_integer_null(RuleStates::CursorId))
                // Earliest max(deadline, received_at) of the pending timers; the sweeper adds lateness.
                .col(timestamp_with_time_zone_null(RuleStates::WakeAt))
                .col(timestamp_with_time_zone(RuleStates::UpdatedAt))
                .primary_key(
                    Index::create()
                        .col(RuleStates::ApplicationId)
                        .col(RuleStates::UserId),
                )
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("rule_states_wake_idx")
                .table(RuleStates::Table)
                .col(RuleStates::WakeAt)
                .to_owned(),
        )
        .await
}

async fn create_notifications(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Notifications::Table)
                .col(uuid(Notifications::Id).primary_key())
                .col(uuid(Notifications::ApplicationId))
                .col(string_len(Notifications::Occasion, 320))
                .col(string_len(Notifications::Rule, 64))
                .col(string_len(Notifications::UserId, 128))
                .col(text(Notifications::Message))
                .col(timestamp_with_time_zone(Notifications::TriggeredAt))
                .col(string_len(Notifications::Status, 16))
                .col(integer(Notifications::Attempts))
                .col(text_null(Notifications::LastError))
                .col(timestamp_with_time_zone_null(Notifications::NextAttemptAt))
                .col(timestamp_with_time_zone(Notifications::CreatedAt))
                .col(timestamp_with_time_zone_null(Notifications::DeliveredAt))
                .to_owned(),
        )
        .await?;
    index_notifications(manager).await
}

async fn index_notifications(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let indexes = [
        // One notification per occasion, whatever duplicates, retries and replays happen.
        Index::create()
            .name("notifications_occasion_key")
            .table(Notifications::Table)
            .col(Notifications::ApplicationId)
            .col(Notifications::Occasion)
            .unique()
            .to_owned(),
        Index::create()
            .name("notifications_due_idx")
            .table(Notifications::Table)
            .col(Notifications::Status)
            .col(Notifications::NextAttemptAt)
            .to_owned(),
        Index::create()
            .name("notifications_user_time_idx")
            .table(Notifications::Table)
            .col(Notifications::UserId)
            .col(Notifications::CreatedAt)
            .to_owned(),
    ];
    for index in indexes {
        manager.create_index(index).await?;
    }
    Ok(())
}

async fn index_user_events(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // Rebuilding a user's rule state replays their events in time order.
    manager
        .create_index(
            Index::create()
                .name("events_rules_user_time_idx")
                .table(Events::Table)
                .col(Events::ApplicationId)
                .col(Events::UserId)
                .col(Events::Timestamp)
                .col(Events::Id)
                .to_owned(),
        )
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_rule_states(manager).await?;
        create_notifications(manager).await?;
        index_user_events(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("events_rules_user_time_idx")
                    .table(Events::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Notifications::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RuleStates::Table).to_owned())
            .await
    }
}

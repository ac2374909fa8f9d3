//! Notification rules as data: every published version of every rule, and a revision counter bumped in
//! each transaction that publishes or deletes one. Workers read the counter inside each job's transaction
//! and reload the rules when it moved (the schema registry's mechanism, migration 10).

use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, Index, MigrationTrait, Query, SchemaManager, Table,
    async_trait,
};
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, integer, json_binary, string_len, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Rules {
    Table,
    Id,
    Name,
    Version,
    Definition,
    CreatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum RuleRevision {
    Table,
    Id,
    Revision,
}

async fn create_rules(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Rules::Table)
                .col(big_pk_auto(Rules::Id))
                .col(string_len(Rules::Name, 64))
                .col(integer(Rules::Version))
                // The rule object as published (the fields of a `[[rule]]` table, without `name`).
                .col(json_binary(Rules::Definition))
                .col(timestamp_with_time_zone(Rules::CreatedAt))
                // Set on every version of a deleted rule; a later publish starts the next version.
                .col(timestamp_with_time_zone_null(Rules::DeletedAt))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("rules_name_version_key")
                .table(Rules::Table)
                .col(Rules::Name)
                .col(Rules::Version)
                .unique()
                .to_owned(),
        )
        .await
}

async fn create_revision(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(RuleRevision::Table)
                // Always 1: the table has exactly one row.
                .col(integer(RuleRevision::Id).primary_key())
                .col(big_integer(RuleRevision::Revision))
                .to_owned(),
        )
        .await?;
    let row = Query::insert()
        .into_table(RuleRevision::Table)
        .columns([RuleRevision::Id, RuleRevision::Revision])
        .values_panic([1.into(), 0.into()])
        .to_owned();
    manager.exec_stmt(row).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_rules(manager).await?;
        create_revision(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RuleRevision::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Rules::Table).to_owned())
            .await
    }
}

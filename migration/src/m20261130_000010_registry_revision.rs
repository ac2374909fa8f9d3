//! A revision counter for the schema registry, bumped in every transaction that publishes a schema or
//! retires a type. Workers compare it to their cache's. It replaces the fingerprint `max(id)` plus a count:
//! PostgreSQL hands out ids before commit, so a publish with a smaller id that commits after a larger
//! one was seen left that fingerprint unchanged. The counter is one row updated with
//! `revision = revision + 1`: the row lock orders the bumps, so every commit raises what readers see.

use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, MigrationTrait, Query, SchemaManager, Table,
    async_trait,
};
use sea_orm_migration::schema::{big_integer, integer};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RegistryRevision {
    Table,
    Id,
    Revision,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RegistryRevision::Table)
                    // Always 1: the table has exactly one row.
                    .col(integer(RegistryRevision::Id).primary_key())
                    .col(big_integer(RegistryRevision::Revision))
                    .to_owned(),
            )
            .await?;
        let row = Query::insert()
            .into_table(RegistryRevision::Table)
            .columns([RegistryRevision::Id, RegistryRevision::Revision])
            .values_panic([1.into(), 0.into()])
            .to_owned();
        manager.exec_stmt(row).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RegistryRevision::Table).to_owned())
            .await
    }
}

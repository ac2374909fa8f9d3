//! A checkpoint per user's rule state: the state as it stood after an event well behind the user's newest.
//! An event that arrives older than the rule cursor then rebuilds the state from the checkpoint, reading
//! only the events after it, instead of the user's whole history.

use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, MigrationTrait, SchemaManager, Table, async_trait,
};
use sea_orm_migration::schema::{
    big_integer_null, json_binary_null, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RuleStates {
    Table,
    Checkpoint,
    CheckpointAt,
    CheckpointId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        let columns = [
            json_binary_null(RuleStates::Checkpoint),
            timestamp_with_time_zone_null(RuleStates::CheckpointAt),
            big_integer_null(RuleStates::CheckpointId),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(RuleStates::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            RuleStates::Checkpoint,
            RuleStates::CheckpointAt,
            RuleStates::CheckpointId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(RuleStates::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

//! The rules' revision each user's state was last evaluated with. While it is still the current one, every
//! stored event of the user that the rules name is evaluated up to the rule cursor, so a job whose events
//! all come after the cursor evaluates them from memory instead of reading them back; a publish or delete
//! since (or a state never evaluated, `NULL`) reads them back once.

use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, MigrationTrait, SchemaManager, Table, async_trait,
};
use sea_orm_migration::schema::big_integer_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RuleStates {
    Table,
    RulesRevision,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RuleStates::Table)
                    .add_column(big_integer_null(RuleStates::RulesRevision))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RuleStates::Table)
                    .drop_column(RuleStates::RulesRevision)
                    .to_owned(),
            )
            .await
    }
}

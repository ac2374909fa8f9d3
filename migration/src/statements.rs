//! Raw SQL for what SeaORM's schema builder does not express (expression statistics, `INCLUDE`
//! columns, dropping a constraint).

use sea_orm_migration::prelude::{DbErr, SchemaManager};
use sea_orm_migration::sea_orm::ConnectionTrait;

/// Runs `statements` in order, in the migration's connection (its transaction on PostgreSQL).
pub(crate) async fn run_all(
    manager: &SchemaManager<'_>,
    statements: &[impl AsRef<str>],
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for statement in statements {
        db.execute_unprepared(statement.as_ref()).await?;
    }
    Ok(())
}

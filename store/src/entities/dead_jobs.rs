//! Dead jobs: whole batches that failed for a reason that is not transient.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "dead_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub job_id: Uuid,
    pub application_id: Uuid,
    pub event_count: i32,
    #[sea_orm(column_type = "Text")]
    pub error: String,
    pub attempts: i64,
    #[sea_orm(column_type = "Text")]
    pub batch: String,
    pub first_failed_at: DateTimeUtc,
    pub last_failed_at: DateTimeUtc,
    pub replayed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

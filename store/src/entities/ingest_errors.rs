use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ingest_errors")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub application_id: Uuid,
    pub job_id: Uuid,
    pub event_id: Option<Uuid>,
    pub reason: String,
    #[sea_orm(column_type = "Text")]
    pub detail: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub raw: Json,
    pub received_at: DateTimeUtc,
    pub recorded_at: DateTimeUtc,
    pub category: Option<String>,
    pub name: Option<String>,
    pub resolved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

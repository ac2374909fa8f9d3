use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub event_id: Uuid,
    pub application_id: Uuid,
    pub session_id: String,
    pub category: String,
    pub name: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
    pub timestamp: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub received_at: DateTimeUtc,
    pub stored_at: DateTimeUtc,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub client_timestamp: Option<DateTimeUtc>,
    pub schema_version: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

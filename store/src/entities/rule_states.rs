//! One user's notification-rule state (see the `eye-rules` crate's persistence contract).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "rule_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub application_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub state: Json,
    pub version: i64,
    pub cursor_at: Option<DateTimeUtc>,
    pub cursor_id: Option<i64>,
    pub wake_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub checkpoint: Option<Json>,
    pub checkpoint_at: Option<DateTimeUtc>,
    pub checkpoint_id: Option<i64>,
    pub updated_at: DateTimeUtc,
    pub rules_revision: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

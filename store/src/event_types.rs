//! Event types and their versioned payload schemas.

use crate::entities::event_types;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::EventType;
use sea_orm::sea_query::{Expr, Func, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde_json::Value;

/// The current schema of an event type.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTypeSchema {
    /// Category and name.
    pub event_type: EventType,
    /// Version, counting from 1.
    pub version: u32,
    /// The JSON Schema.
    pub schema: Value,
    /// When this version was published.
    pub published_at: DateTime<Utc>,
}

/// What publishing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The type is new (or was retired): version 1 or the next after the retired ones.
    NewType(u32),
    /// A new version of a live type.
    NewVersion(u32),
}

/// Changes whenever a schema is published or a type retired; workers compare it to refresh their cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegistryRevision {
    latest_id: i64,
    retired: i64,
}

impl Store {
    /// Stores `schema` as the next version of `event_type`. Concurrent publishers of one type each get
    /// their own version: a lost race on the version number is retried.
    #[tracing::instrument(skip(self, schema), fields(event_type = %event_type), err)]
    pub async fn publish_schema(
        &self,
        event_type: &EventType,
        schema: Value,
    ) -> Result<Published, StoreError> {
        let mut attempt = 0;
        loop {
            match self.try_publish(event_type, &schema).await {
                Err(StoreError::Database(err)) if is_unique_violation(&err) && attempt < 5 => {
                    attempt += 1
                }
                other => return other,
            }
        }
    }

    async fn try_publish(
        &self,
        event_type: &EventType,
        schema: &Value,
    ) -> Result<Published, StoreError> {
        let txn = self.db.begin().await?;
        let versions = versions_of(&txn, event_type).await?;
        let live = versions.iter().any(|v| v.retired_at.is_none());
        let version = versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        event_types::Entity::insert(new_version(event_type, version, schema.clone()))
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        let version = u32::try_from(version).unwrap_or(u32::MAX);
        Ok(if live {
            Published::NewVersion(version)
        } else {
            Published::NewType(version)
        })
    }

    /// Publishes `schema` as version 1 unless the type has a version already (built-in schemas at start).
    /// Safe when several processes start at once: only one version 1 is stored. Answers whether it was.
    pub async fn seed_schema(
        &self,
        event_type: &EventType,
        schema: Value,
    ) -> Result<bool, StoreError> {
        if !versions_of(&self.db, event_type).await?.is_empty() {
            return Ok(false);
        }
        let conflict = OnConflict::columns([
            event_types::Column::Category,
            event_types::Column::Name,
            event_types::Column::Version,
        ])
        .do_nothing()
        .to_owned();
        let inserted = event_types::Entity::insert(new_version(event_type, 1, schema))
            .on_conflict(conflict)
            .exec_without_returning(&self.db)
            .await?;
        Ok(inserted > 0)
    }

    /// Retires a type: its events are then judged as unknown. Answers whether it was live.
    pub async fn retire_event_type(&self, event_type: &EventType) -> Result<bool, StoreError> {
        let result = event_types::Entity::update_many()
            .col_expr(event_types::Column::RetiredAt, Expr::value(Utc::now()))
            .filter(matches(event_type))
            .filter(event_types::Column::RetiredAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// The latest version of every live type.
    pub async fn current_schemas(&self) -> Result<Vec<EventTypeSchema>, StoreError> {
        let rows = event_types::Entity::find()
            .filter(event_types::Column::RetiredAt.is_null())
            .order_by_asc(event_types::Column::Category)
            .order_by_asc(event_types::Column::Name)
            .order_by_desc(event_types::Column::Version)
            .all(&self.db)
            .await?;
        let mut current: Vec<EventTypeSchema> = Vec::new();
        for row in rows {
            let Some(schema) = to_schema(row) else {
                continue;
            };
            if current
                .last()
                .is_none_or(|last| last.event_type != schema.event_type)
            {
                current.push(schema);
            }
        }
        Ok(current)
    }

    /// A cheap fingerprint of the registry's state.
    pub async fn registry_revision(&self) -> Result<RegistryRevision, StoreError> {
        let row: Option<(Option<i64>, i64)> = event_types::Entity::find()
            .select_only()
            .expr_as(Func::max(Expr::col(event_types::Column::Id)), "latest_id")
            .expr_as(
                Func::count(Expr::col(event_types::Column::RetiredAt)),
                "retired",
            )
            .into_tuple()
            .one(&self.db)
            .await?;
        let (latest_id, retired) = row.unwrap_or_default();
        Ok(RegistryRevision {
            latest_id: latest_id.unwrap_or(0),
            retired,
        })
    }
}

fn new_version(event_type: &EventType, version: i32, schema: Value) -> event_types::ActiveModel {
    event_types::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        category: Set(event_type.category.as_str().to_owned()),
        name: Set(event_type.name.as_str().to_owned()),
        version: Set(version),
        schema: Set(schema),
        created_at: Set(Utc::now()),
        retired_at: Set(None),
    }
}

fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

fn matches(event_type: &EventType) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(event_types::Column::Category.eq(event_type.category.as_str()))
        .add(event_types::Column::Name.eq(event_type.name.as_str()))
}

async fn versions_of(
    db: &impl sea_orm::ConnectionTrait,
    event_type: &EventType,
) -> Result<Vec<event_types::Model>, StoreError> {
    Ok(event_types::Entity::find()
        .filter(matches(event_type))
        .all(db)
        .await?)
}

fn to_schema(row: event_types::Model) -> Option<EventTypeSchema> {
    let event_type = EventType {
        category: eye_domain::Category::parse(row.category).ok()?,
        name: eye_domain::EventName::parse(row.name).ok()?,
    };
    Some(EventTypeSchema {
        event_type,
        version: u32::try_from(row.version).ok()?,
        schema: row.schema,
        published_at: row.created_at,
    })
}

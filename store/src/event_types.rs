//! Event types and their versioned payload schemas.

use crate::entities::event_types;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::EventType;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DeriveIden, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
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

/// The registry's revision: raised by every committed publish or retirement, so workers compare it to
/// their cache's. A counter bumped inside the writing transaction, not `max(id)`: PostgreSQL hands out ids
/// before commit, and a smaller id committing after a larger one was seen would go unnoticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct RegistryRevision(i64);

impl RegistryRevision {
    /// The counter's value.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// The one-row table `registry_revision` (migration 10).
#[derive(DeriveIden)]
enum RevisionTable {
    #[sea_orm(iden = "registry_revision")]
    Table,
    Id,
    Revision,
}

/// Raises the revision inside `txn`. The row lock it takes orders concurrent publishers' bumps, so each
/// commit raises the value readers see; take it last, just before the commit, to hold it briefly.
async fn bump_revision(txn: &impl ConnectionTrait) -> Result<(), StoreError> {
    let bump = Query::update()
        .table(RevisionTable::Table)
        .value(
            RevisionTable::Revision,
            Expr::col(RevisionTable::Revision).add(1),
        )
        .and_where(Expr::col(RevisionTable::Id).eq(1))
        .to_owned();
    txn.execute(&bump).await?;
    Ok(())
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
        bump_revision(&txn).await?;
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
        let txn = self.db.begin().await?;
        let inserted = event_types::Entity::insert(new_version(event_type, 1, schema))
            .on_conflict(conflict)
            .exec_without_returning(&txn)
            .await?;
        if inserted > 0 {
            bump_revision(&txn).await?;
        }
        txn.commit().await?;
        Ok(inserted > 0)
    }

    /// Retires a type: its events are then judged as unknown. Answers whether it was live.
    pub async fn retire_event_type(&self, event_type: &EventType) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let result = event_types::Entity::update_many()
            .col_expr(event_types::Column::RetiredAt, Expr::value(Utc::now()))
            .filter(matches(event_type))
            .filter(event_types::Column::RetiredAt.is_null())
            .exec(&txn)
            .await?;
        if result.rows_affected > 0 {
            bump_revision(&txn).await?;
        }
        txn.commit().await?;
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

    /// The registry's revision: one single-row read. Read it *before* loading the schemas, so the loaded
    /// registry is at least as new as the revision recorded with it.
    pub async fn registry_revision(&self) -> Result<RegistryRevision, StoreError> {
        let read = Query::select()
            .column(RevisionTable::Revision)
            .from(RevisionTable::Table)
            .and_where(Expr::col(RevisionTable::Id).eq(1))
            .to_owned();
        let row = self.db.query_one(&read).await?;
        let revision = row
            .map(|row| row.try_get::<i64>("", "revision"))
            .transpose()?
            .unwrap_or_default();
        Ok(RegistryRevision(revision))
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

pub(crate) fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
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

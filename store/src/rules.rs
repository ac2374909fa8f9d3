//! Notification rules as data: their published versions, and the revision counter workers follow.
//!
//! Every publish and delete bumps `rule_revision` in its own transaction. A job reads the counter inside
//! its unit of work ([`IngestTxn::rule_revision`]), on PostgreSQL under a share lock held to its commit: a
//! publish cannot commit while a job evaluates, so each job is evaluated wholly before or wholly after
//! it, and a job whose transaction began after the publish answered sees the new rules.

use crate::entities::rules;
use crate::event_types::is_unique_violation;
use crate::{IngestTxn, Store, StoreError};
use chrono::{DateTime, Utc};
use eye_rules::RuleName;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Statement, TransactionTrait,
};
use serde_json::{Map, Value};

/// One published version of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRule {
    /// The rule's name.
    pub name: String,
    /// Its version, counting from 1 across deletions.
    pub version: u32,
    /// The rule object (without `name`).
    pub definition: Map<String, Value>,
    /// When this version was published.
    pub published_at: DateTime<Utc>,
    /// When the rule was deleted, if it was (every version of it).
    pub deleted_at: Option<DateTime<Utc>>,
}

/// What publishing a rule did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulePublished {
    /// The rule is new (or was deleted): its first live version.
    Created(u32),
    /// A new version of a live rule.
    NewVersion(u32),
}

/// The rules' revision: raised by every committed publish or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct RuleRevision(i64);

impl RuleRevision {
    /// The counter's value.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl From<i64> for RuleRevision {
    /// A revision as the database keeps it.
    fn from(revision: i64) -> Self {
        Self(revision)
    }
}

const BUMP: &str = "UPDATE rule_revision SET revision = revision + 1 WHERE id = 1";
const READ: &str = "SELECT revision FROM rule_revision WHERE id = 1";

async fn bump(db: &impl ConnectionTrait) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_string(backend, BUMP))
        .await?;
    Ok(())
}

async fn revision(db: &impl ConnectionTrait, sql: String) -> Result<RuleRevision, StoreError> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?;
    let revision = row
        .map(|row| row.try_get::<i64>("", "revision"))
        .transpose()?
        .unwrap_or_default();
    Ok(RuleRevision(revision))
}

async fn versions_of(
    db: &impl ConnectionTrait,
    name: &RuleName,
) -> Result<Vec<rules::Model>, StoreError> {
    Ok(rules::Entity::find()
        .filter(rules::Column::Name.eq(name.as_str()))
        .order_by_desc(rules::Column::Version)
        .all(db)
        .await?)
}

/// The latest version of every live rule, by name.
async fn live(db: &impl ConnectionTrait) -> Result<Vec<StoredRule>, StoreError> {
    let rows = rules::Entity::find()
        .filter(rules::Column::DeletedAt.is_null())
        .order_by_asc(rules::Column::Name)
        .order_by_desc(rules::Column::Version)
        .all(db)
        .await?;
    let mut current: Vec<StoredRule> = Vec::new();
    for row in rows {
        if current.last().is_none_or(|last| last.name != row.name) {
            current.push(to_stored(row));
        }
    }
    Ok(current)
}

fn to_stored(row: rules::Model) -> StoredRule {
    let definition = match row.definition {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    StoredRule {
        name: row.name,
        version: u32::try_from(row.version).unwrap_or_default(),
        definition,
        published_at: row.created_at,
        deleted_at: row.deleted_at,
    }
}

fn new_version(
    name: &RuleName,
    version: i32,
    definition: &Map<String, Value>,
) -> rules::ActiveModel {
    rules::ActiveModel {
        id: sea_orm::ActiveValue::NotSet,
        name: Set(name.as_str().to_owned()),
        version: Set(version),
        definition: Set(Value::Object(definition.clone())),
        created_at: Set(Utc::now()),
        deleted_at: Set(None),
    }
}

impl Store {
    /// Stores `definition` (checked by the caller) as the next version of `name`. Concurrent publishers
    /// of one rule each get their own version: a lost race on the version number is retried.
    #[tracing::instrument(skip(self, definition), fields(rule = %name), err)]
    pub async fn publish_rule(
        &self,
        name: &RuleName,
        definition: &Map<String, Value>,
    ) -> Result<RulePublished, StoreError> {
        let mut attempt = 0;
        loop {
            match self.try_publish_rule(name, definition).await {
                Err(StoreError::Database(err)) if is_unique_violation(&err) && attempt < 5 => {
                    attempt += 1
                }
                other => return other,
            }
        }
    }

    async fn try_publish_rule(
        &self,
        name: &RuleName,
        definition: &Map<String, Value>,
    ) -> Result<RulePublished, StoreError> {
        let txn = self.db.begin().await?;
        let versions = versions_of(&txn, name).await?;
        let live = versions.iter().any(|v| v.deleted_at.is_none());
        let version = versions.first().map_or(0, |v| v.version) + 1;
        rules::Entity::insert(new_version(name, version, definition))
            .exec_without_returning(&txn)
            .await?;
        // Last, just before the commit: the counter's row lock is held briefly.
        bump(&txn).await?;
        txn.commit().await?;
        let version = u32::try_from(version).unwrap_or(u32::MAX);
        Ok(if live {
            RulePublished::NewVersion(version)
        } else {
            RulePublished::Created(version)
        })
    }

    /// Publishes `definition` as version 1 of `name` unless the rule has any version, deleted ones
    /// included (the rules file seeds a rule once; a deletion survives restarts). Safe when several
    /// processes start at once. Answers whether it was stored.
    pub async fn seed_rule(
        &self,
        name: &RuleName,
        definition: &Map<String, Value>,
    ) -> Result<bool, StoreError> {
        if !versions_of(&self.db, name).await?.is_empty() {
            return Ok(false);
        }
        let txn = self.db.begin().await?;
        let inserted = rules::Entity::insert(new_version(name, 1, definition))
            .exec_without_returning(&txn)
            .await;
        match inserted {
            Err(sea_orm::DbErr::RecordNotInserted) => return Ok(false),
            Err(err) if is_unique_violation(&err) => return Ok(false),
            Err(err) => return Err(err.into()),
            Ok(_) => bump(&txn).await?,
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Deletes a rule (every version is kept, marked deleted). Answers whether it was live.
    pub async fn delete_rule(&self, name: &RuleName) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let result = rules::Entity::update_many()
            .col_expr(rules::Column::DeletedAt, Expr::value(Utc::now()))
            .filter(rules::Column::Name.eq(name.as_str()))
            .filter(rules::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
        if result.rows_affected > 0 {
            bump(&txn).await?;
        }
        txn.commit().await?;
        Ok(result.rows_affected > 0)
    }

    /// The latest version of every live rule, by name.
    pub async fn live_rules(&self) -> Result<Vec<StoredRule>, StoreError> {
        live(&self.db).await
    }

    /// Every version of a rule, newest first (empty if it never existed).
    pub async fn rule_versions(&self, name: &RuleName) -> Result<Vec<StoredRule>, StoreError> {
        let rows = versions_of(&self.db, name).await?;
        Ok(rows.into_iter().map(to_stored).collect())
    }
}

impl IngestTxn {
    /// The rules' revision as this unit of work sees it. On PostgreSQL the row is share-locked until the
    /// unit commits, so no publish or delete commits in between: the rules read next by
    /// [`Self::live_rules`] are exactly those of this revision, and so is the whole job's evaluation.
    /// (SQLite has one writer: a publish waits for the unit's commit anyway.)
    pub async fn rule_revision(&self) -> Result<RuleRevision, StoreError> {
        let sql = match self.txn.get_database_backend() {
            DbBackend::Postgres => format!("{READ} FOR SHARE"),
            _ => READ.to_owned(),
        };
        revision(&self.txn, sql).await
    }

    /// The latest version of every live rule, as this unit of work sees them.
    pub async fn live_rules(&self) -> Result<Vec<StoredRule>, StoreError> {
        live(&self.txn).await
    }
}

//! Persistence for The Eye: SeaORM entities and every query the service runs.
//!
//! The rest of the workspace talks to [`Store`] in domain types; entities never leave this crate.

mod applications;
mod dead_jobs;
mod entities;
mod error;
mod event_copy;
mod event_counts;
mod event_insert;
mod event_types;
mod events;
mod ingest_errors;
mod job_txn;
mod keys;
mod lifecycle;
mod notifications;
pub mod queries;
mod read_keys;
mod rule_events;
mod rule_history;
mod rule_lock;
mod rule_state;
mod rules;
mod sql;

pub use applications::{Application, CreatedApplication};
pub use dead_jobs::{
    DeadJob, DeadJobCursor, DeadJobFilter, DeadJobStatus, DeadJobSummary, ReplaySelection,
};
pub use error::StoreError;
pub use event_copy::{MIN_ROWS as COPY_MIN_ROWS, ROWS_PER_PIECE as COPY_ROWS_PER_PIECE};
pub use event_types::{EventTypeSchema, Published, RegistryRevision};
pub use events::{EventCursor, EventRecord, IngestTxn, InsertOutcome, InsertedEvent, StoredBatch};
pub use ingest_errors::{ErrorFilter, IngestErrorRecord, RejectReason, StoredIngestError};
pub use keys::{ApiKey, KeyHash};
pub use lifecycle::{ErasureReport, ErasureRequest, RetentionStep, UserHash};
pub use notifications::{
    DeliveryResult, NotificationFilter, NotificationLease, NotificationRecord, NotificationStatus,
};
pub use read_keys::{CreatedReadKey, NewReadKey, ReadKeyId, ReadScope};
pub use rule_events::{ReadBack, RuleEventRow};
pub use rule_history::HistoryFilter;
pub use rule_lock::{CheckpointWrite, RuleWrite};
pub use rule_state::{Checkpoint, RuleUpdate, StoredRuleState, UserKey};
pub use rules::{RulePublished, RuleRevision, StoredRule};
pub use sea_orm::DbErr;
pub use sql::stored_time;

use eye_migration::Migrator;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

/// How long a SQLite statement waits for the database's single write lock. The writers are the workers'
/// batch inserts (up to `EYE_WORKER_CONCURRENCY` at once, each one transaction of at most a job's events)
/// and the API's admin writes: under load each waits for the others' transactions, seconds at worst on a
/// busy 2-core machine. Past this, the insert fails as transient and the job is retried.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Every pooled connection of the embedded database: WAL, so readers (queries, dashboards) never block
/// the writer nor it them; `synchronous = FULL`, so a stored event is on disk before its queue job is
/// acknowledged (WAL's `NORMAL` could lose the last commits on power loss after the job was deleted).
fn sqlite_options(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
}

/// The database behind The Eye (PostgreSQL in production, SQLite as the embedded default).
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

/// What [`Store::migrate_reporting`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The names of the migrations applied, in order.
    pub applied: Vec<String>,
    /// How many migrations the schema has in all.
    pub total: usize,
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `postgres://…` or `sqlite://…`.
    pub url: String,
    /// Upper bound of pooled connections.
    pub max_connections: u32,
}

impl Store {
    /// Connects (without migrating).
    #[tracing::instrument(skip_all, err)]
    pub async fn connect(options: &StoreOptions) -> Result<Self, StoreError> {
        let mut connect = ConnectOptions::new(options.url.clone());
        connect
            .max_connections(options.max_connections)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(sqlite_options);
        let db = Database::connect(connect).await?;
        Ok(Self { db })
    }

    /// Brings the schema up to date; safe to run on every start.
    #[tracing::instrument(skip_all, err)]
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// Like [`Store::migrate`], and says what it did: the migrations it applied, in order (none when the
    /// schema was already current), out of how many the schema has.
    #[tracing::instrument(skip_all, err)]
    pub async fn migrate_reporting(&self) -> Result<Migrated, StoreError> {
        let pending = Migrator::get_pending_migrations(&self.db).await?;
        let applied = pending.iter().map(|m| m.name().to_owned()).collect();
        Migrator::up(&self.db, None).await?;
        Ok(Migrated {
            applied,
            total: Migrator::migrations().len(),
        })
    }

    /// Round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await?;
        Ok(())
    }

    /// The connection, for tests and tools that need raw SQL.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Whether this store runs on PostgreSQL (as opposed to SQLite).
    pub fn is_postgres(&self) -> bool {
        matches!(
            self.db.get_database_backend(),
            sea_orm::DatabaseBackend::Postgres
        )
    }
}

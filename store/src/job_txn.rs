//! A job's transaction: SeaORM's own on SQLite; on PostgreSQL one held on the driver's connection, so that
//! the events can travel by `COPY` in the same transaction as their sessions, counts and rule states.
//!
//! SeaORM's `DatabaseTransaction` keeps its connection private, and `COPY … FROM STDIN` is a protocol of
//! its own that a statement cannot start. So on PostgreSQL the job's transaction is begun on a connection
//! of SeaORM's own pool and exposed to the rest of the store as a SeaORM [`ConnectionTrait`]: entities,
//! query builders and raw statements run on it unchanged, bound by the same `sea-query-sqlx` binder SeaORM
//! uses, and their errors are SeaORM's (`DbErr` holding the driver's error), so the store classifies them
//! once as before (`error.rs`).

use futures::lock::Mutex;
use sea_orm::sea_query::Values;
use sea_orm::sqlx::{self, PgPool, Postgres};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, QueryResult, RuntimeErr, Statement, TransactionTrait,
};
use sea_query_sqlx::SqlxValues;

/// A job's unit of work on either database.
pub(crate) enum JobTxn {
    /// SQLite (and any backend but PostgreSQL): SeaORM's transaction.
    Orm(DatabaseTransaction),
    /// PostgreSQL: a transaction on a connection of SeaORM's pool, which can also `COPY`.
    Postgres(PgJobTxn),
}

impl JobTxn {
    pub(crate) async fn begin(db: &DatabaseConnection) -> Result<Self, DbErr> {
        match db.get_database_backend() {
            DbBackend::Postgres => Ok(Self::Postgres(
                PgJobTxn::begin(db.get_postgres_connection_pool()).await?,
            )),
            _ => Ok(Self::Orm(db.begin().await?)),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        match self {
            Self::Orm(txn) => txn.commit().await,
            Self::Postgres(txn) => txn.commit().await,
        }
    }

    /// The PostgreSQL transaction, to `COPY` into; `None` on other databases.
    pub(crate) fn postgres(&self) -> Option<&PgJobTxn> {
        match self {
            Self::Orm(_) => None,
            Self::Postgres(txn) => Some(txn),
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for JobTxn {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Self::Orm(txn) => txn.get_database_backend(),
            Self::Postgres(_) => DbBackend::Postgres,
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match self {
            Self::Orm(txn) => txn.execute_raw(stmt).await,
            Self::Postgres(txn) => txn.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match self {
            Self::Orm(txn) => txn.execute_unprepared(sql).await,
            Self::Postgres(txn) => txn.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self {
            Self::Orm(txn) => txn.query_one_raw(stmt).await,
            Self::Postgres(txn) => txn.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self {
            Self::Orm(txn) => txn.query_all_raw(stmt).await,
            Self::Postgres(txn) => txn.query_all_raw(stmt).await,
        }
    }
}

/// A PostgreSQL transaction on one pooled connection. Dropped without [`PgJobTxn::commit`], it rolls back
/// (the driver queues the `ROLLBACK` before the connection is used again).
pub(crate) struct PgJobTxn {
    // A job's statements run one after another; the lock only lets `&self` methods reach the connection.
    conn: Mutex<sqlx::Transaction<'static, Postgres>>,
}

impl PgJobTxn {
    async fn begin(pool: &PgPool) -> Result<Self, DbErr> {
        let txn = pool.begin().await.map_err(begin_error)?;
        Ok(Self {
            conn: Mutex::new(txn),
        })
    }

    async fn commit(self) -> Result<(), DbErr> {
        self.conn.into_inner().commit().await.map_err(exec_error)
    }

    /// Runs `copy_statement` (a `COPY … FROM STDIN`), streaming `pieces` of its data in turn; the rows
    /// copied. A piece that cannot be made aborts the copy. A limit, not met in practice (the pieces are
    /// events written into memory, JSON maps among them, which cannot fail to encode): should one fail
    /// after the server had already refused the copy, the driver's abort would not read the server's last
    /// reply, and the connection could go back to the pool one reply behind.
    pub(crate) async fn copy_in(
        &self,
        copy_statement: &str,
        // A trait object: a generic iterator of closures over borrowed events made the job's future lose
        // `Send` (a higher-ranked lifetime the compiler could not prove general enough).
        pieces: &mut (dyn Iterator<Item = Result<Vec<u8>, DbErr>> + Send),
    ) -> Result<u64, DbErr> {
        let mut conn = self.conn.lock().await;
        let mut copy = conn.copy_in_raw(copy_statement).await.map_err(exec_error)?;
        for piece in pieces {
            let sent = match piece {
                Ok(bytes) => copy.send(bytes).await.map(|_| ()).map_err(exec_error),
                Err(err) => Err(err),
            };
            if let Err(err) = sent {
                // Tells the server the copy is off, if the connection still works.
                let _ = copy.abort(err.to_string()).await;
                return Err(err);
            }
        }
        // A refused row (a duplicate key, say) surfaces here, where the server's answer is read.
        copy.finish().await.map_err(exec_error)
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for PgJobTxn {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let mut conn = self.conn.lock().await;
        bound(stmt)
            .execute(&mut **conn)
            .await
            .map(Into::into)
            .map_err(exec_error)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut conn = self.conn.lock().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut **conn)
            .await
            .map(Into::into)
            .map_err(exec_error)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let mut conn = self.conn.lock().await;
        bound(stmt)
            .fetch_optional(&mut **conn)
            .await
            .map(|row| row.map(Into::into))
            .map_err(query_error)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut conn = self.conn.lock().await;
        bound(stmt)
            .fetch_all(&mut **conn)
            .await
            .map(|rows| rows.into_iter().map(Into::into).collect())
            .map_err(query_error)
    }
}

/// The statement with its values bound as SeaORM binds them; taken whole, so a large parameter (a chunk
/// of events as JSON) is moved, not copied.
fn bound(stmt: Statement) -> sqlx::query::Query<'static, Postgres, SqlxValues> {
    let values = stmt.values.unwrap_or_else(|| Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql), SqlxValues(values))
}

/// The errors as SeaORM reports them for its own transactions, so `error.rs` classifies both alike.
fn begin_error(err: sqlx::Error) -> DbErr {
    match err {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        err => DbErr::Conn(RuntimeErr::SqlxError(err.into())),
    }
}

fn exec_error(err: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(err.into()))
}

fn query_error(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(err.into()))
}

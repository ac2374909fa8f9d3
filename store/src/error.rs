//! Storage errors, classified once as transient or permanent.

use eye_domain::{Failure, Retryability};
use sea_orm::{DbErr, RuntimeErr};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An application with this name exists already.
    #[error("an application named {0:?} already exists")]
    DuplicateApplication(String),
    /// No application has this id.
    #[error("no application {0}")]
    UnknownApplication(eye_domain::ApplicationId),
    /// The database refused or failed the operation.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

impl Failure for StoreError {
    fn retryability(&self) -> Retryability {
        match self {
            Self::DuplicateApplication(_) | Self::UnknownApplication(_) => Retryability::Permanent,
            Self::Database(err) => classify(err),
        }
    }
}

/// SQLSTATEs (PostgreSQL) and result codes (SQLite) that say "try again": serialization failure,
/// deadlock, admin shutdown / crash recovery, too many connections; SQLite busy and locked.
const TRANSIENT_CODES: &[&str] = &[
    "40001", "40P01", "57P01", "57P02", "57P03", "53300", "5", "6", "261", "262", "517",
];

fn classify(err: &DbErr) -> Retryability {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Retryability::Transient,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            classify_sqlx(e)
        }
        _ => Retryability::Permanent,
    }
}

fn classify_sqlx(err: &sea_orm::sqlx::Error) -> Retryability {
    use sea_orm::sqlx::Error;
    match err {
        Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::WorkerCrashed => {
            Retryability::Transient
        }
        Error::Database(db) => match db.code() {
            Some(code) if TRANSIENT_CODES.contains(&code.as_ref()) => Retryability::Transient,
            _ => Retryability::Permanent,
        },
        _ => Retryability::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_transient() {
        let err = StoreError::Database(DbErr::Conn(RuntimeErr::Internal("reset".into())));
        assert!(err.is_transient());
    }

    #[test]
    fn a_duplicate_application_is_permanent() {
        let err = StoreError::DuplicateApplication("web".into());
        assert_eq!(err.retryability(), Retryability::Permanent);
    }

    #[test]
    fn unknown_database_errors_are_permanent() {
        let err = StoreError::Database(DbErr::Custom("bad".into()));
        assert_eq!(err.retryability(), Retryability::Permanent);
    }
}

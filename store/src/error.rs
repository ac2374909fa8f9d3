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

/// PostgreSQL SQLSTATE classes that say "try again": connection exceptions (08), insufficient resources
/// such as disk full or too many connections (53), operator intervention such as a cancelled statement,
/// an admin shutdown or crash recovery (57), and system errors such as I/O failures (58).
const TRANSIENT_CLASSES: &[&str] = &["08", "53", "57", "58"];

/// Single PostgreSQL SQLSTATEs that say "try again": serialization failure, deadlock, a read-only
/// transaction (a standby after failover, or a database made read-only for maintenance), lock not available.
const TRANSIENT_STATES: &[&str] = &["40001", "40P01", "25006", "55P03"];

/// SQLite primary result codes that say "try again": busy, locked, I/O error, disk full, cannot open,
/// read-only (e.g. a file made read-only for a moment). Extended codes carry the primary one in the low byte.
const TRANSIENT_SQLITE: &[i64] = &[5, 6, 8, 10, 13, 14];

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
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => Retryability::Transient,
        Error::Database(db) => classify_code(db.code().as_deref()),
        _ => Retryability::Permanent,
    }
}

/// A PostgreSQL SQLSTATE (five characters) or a SQLite result code (a number).
fn classify_code(code: Option<&str>) -> Retryability {
    let Some(code) = code else {
        return Retryability::Permanent;
    };
    let transient = match code.parse::<i64>() {
        Ok(sqlite) if code.len() < 5 || sqlite > 99_999 => {
            TRANSIENT_SQLITE.contains(&(sqlite & 0xff))
        }
        _ => {
            TRANSIENT_STATES.contains(&code)
                || TRANSIENT_CLASSES
                    .iter()
                    .any(|class| code.starts_with(class))
        }
    };
    if transient {
        Retryability::Transient
    } else {
        Retryability::Permanent
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
    fn codes_that_pass_are_transient_and_refusals_are_permanent() {
        let cases = [
            // PostgreSQL SQLSTATEs
            ("08006", true),  // connection failure
            ("08P01", true),  // protocol violation on a broken link
            ("25006", true),  // read-only transaction (failover, maintenance)
            ("57014", true),  // statement timeout
            ("57P01", true),  // admin shutdown
            ("53100", true),  // disk full
            ("53300", true),  // too many connections
            ("58030", true),  // I/O error
            ("40001", true),  // serialization failure
            ("40P01", true),  // deadlock
            ("22001", false), // value too long
            ("22P05", false), // untranslatable character (NUL)
            ("23505", false), // unique violation
            ("42P01", false), // undefined table
            // SQLite result codes
            ("5", true),     // busy
            ("517", true),   // busy snapshot (extended)
            ("6", true),     // locked
            ("8", true),     // read-only
            ("10", true),    // I/O error
            ("13", true),    // disk full
            ("19", false),   // constraint
            ("2067", false), // unique constraint (extended)
            ("1", false),    // generic error
        ];
        for (code, transient) in cases {
            assert_eq!(
                classify_code(Some(code)) == Retryability::Transient,
                transient,
                "{code}"
            );
        }
    }

    #[test]
    fn unknown_database_errors_are_permanent() {
        let err = StoreError::Database(DbErr::Custom("bad".into()));
        assert_eq!(err.retryability(), Retryability::Permanent);
    }
}

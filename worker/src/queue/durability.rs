//! Whether acknowledged events survive a restart of the queue's store, checked at start and shown at
//! `/metrics`.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use redis::aio::ConnectionManager;

/// What the queue reports at `/metrics` (cheap to clone: clones share their values).
#[derive(Clone, Default)]
pub struct QueueMetrics {
    durable: Gauge,
}

impl QueueMetrics {
    /// Adds the metrics to a registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "eye_queue_durable",
            "1 when accepted events survive a restart of the queue (Redis with AOF, or the embedded \
             SQLite queue); 0 when they do not, or when Redis' settings could not be read",
            self.durable.clone(),
        );
    }

    pub(crate) fn set_durable(&self, durable: bool) {
        self.durable.set(i64::from(durable));
    }
}

/// Redis' persistence settings, as read at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RedisPersistence {
    /// AOF on, with its fsync policy (`always`, `everysec` or `no`).
    AppendOnly {
        /// `appendfsync`.
        fsync: String,
    },
    /// Only RDB snapshots: whatever was accepted since the last snapshot is lost on a restart.
    SnapshotsOnly,
    /// Nothing on disk: a restart loses the whole queue.
    Nothing,
    /// `CONFIG GET` failed (renamed or disabled on managed Redis services).
    Unknown(String),
}

impl RedisPersistence {
    /// Classifies the values of `appendonly`, `appendfsync` and `save`.
    pub(crate) fn from_settings(appendonly: &str, appendfsync: &str, save: &str) -> Self {
        if appendonly.eq_ignore_ascii_case("yes") {
            Self::AppendOnly {
                fsync: appendfsync.to_ascii_lowercase(),
            }
        } else if save.trim().is_empty() {
            Self::Nothing
        } else {
            Self::SnapshotsOnly
        }
    }

    /// Reads the settings; a refused `CONFIG` gives `Unknown`, never an error.
    pub(crate) async fn read(conn: &ConnectionManager) -> Self {
        let mut values = Vec::with_capacity(3);
        for name in ["appendonly", "appendfsync", "save"] {
            match config_get(conn, name).await {
                Ok(value) => values.push(value),
                Err(err) => return Self::Unknown(err.to_string()),
            }
        }
        Self::from_settings(&values[0], &values[1], &values[2])
    }

    /// Whether acknowledged events survive a Redis restart (a machine crash may still lose up to a
    /// second of them with `everysec`, and more with `no`: the README's durability contract).
    pub(crate) fn survives_restart(&self) -> bool {
        matches!(self, Self::AppendOnly { .. })
    }

    /// Logs what a 202 is worth on this Redis; an error when accepted events would be lost.
    pub(crate) fn report(&self, metrics: &QueueMetrics) {
        metrics.set_durable(self.survives_restart());
        match self {
            Self::AppendOnly { fsync } if fsync == "no" => tracing::warn!(
                appendfsync = %fsync,
                "Redis writes its AOF without fsync: a machine crash can lose accepted events"
            ),
            Self::AppendOnly { fsync } => {
                tracing::info!(appendfsync = %fsync, "Redis persists the queue (AOF)")
            }
            Self::SnapshotsOnly => tracing::error!(
                "Redis runs without AOF (appendonly no): events accepted since its last snapshot \
                 are LOST when Redis restarts; set `appendonly yes`"
            ),
            Self::Nothing => tracing::error!(
                "Redis keeps nothing on disk (no AOF, no snapshots): every queued event is LOST \
                 when Redis restarts; set `appendonly yes`"
            ),
            Self::Unknown(reason) => tracing::error!(
                %reason,
                "cannot read Redis' persistence settings (CONFIG GET): make sure `appendonly yes` \
                 is set, or accepted events may be lost when Redis restarts"
            ),
        }
    }
}

async fn config_get(conn: &ConnectionManager, name: &str) -> redis::RedisResult<String> {
    let mut conn = conn.clone();
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(&mut conn)
        .await?;
    Ok(pair.into_iter().nth(1).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistence_settings_classify_as_redis_documents_them() {
        let cases = [
            (("yes", "everysec", ""), true, "AOF everysec"),
            (("yes", "always", "3600 1"), true, "AOF always"),
            (
                ("YES", "no", ""),
                true,
                "AOF without fsync still survives a Redis restart",
            ),
            (
                ("no", "everysec", "3600 1 300 100"),
                false,
                "snapshots only",
            ),
            (("no", "everysec", ""), false, "nothing on disk"),
        ];
        for ((appendonly, fsync, save), survives, case) in cases {
            let persistence = RedisPersistence::from_settings(appendonly, fsync, save);
            assert_eq!(persistence.survives_restart(), survives, "{case}");
        }
        assert_eq!(
            RedisPersistence::from_settings("no", "everysec", " "),
            RedisPersistence::Nothing
        );
    }

    #[test]
    fn unknown_settings_do_not_count_as_durable() {
        let metrics = QueueMetrics::default();
        RedisPersistence::Unknown("CONFIG disabled".into()).report(&metrics);
        assert_eq!(metrics.durable.get(), 0);
        RedisPersistence::AppendOnly {
            fsync: "everysec".into(),
        }
        .report(&metrics);
        assert_eq!(metrics.durable.get(), 1);
    }
}

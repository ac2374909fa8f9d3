//! The check after the faults: wait until the workers have drained, then compare the acknowledged ids
//! with the stored ones, and the sessions' counts with the stored rows.

use crate::load::LoadReport;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Without any progress for this long the workers are taken to be done: well beyond apalis' 30 s for
/// reclaiming a killed worker's jobs and the 15 s stall detector, so a slow machine is not a dead one.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(75);

/// The longest any wait for the workers may take, progress or not.
pub const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// The service's database, read by the test.
pub struct Stored {
    db: DatabaseConnection,
}

impl Stored {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            db: Database::connect(url).await?,
        })
    }

    /// One number from SQL; no row counts as 0.
    pub async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        let statement = Statement::from_string(self.db.get_database_backend(), sql);
        let row = self.db.query_one_raw(statement).await?;
        Ok(row
            .map(|row| row.try_get_by_index::<Option<i64>>(0))
            .transpose()?
            .flatten()
            .unwrap_or(0))
    }

    /// Makes every new transaction read-only (`on`) or writable again, as a failover to a standby would.
    pub async fn set_read_only(&self, on: bool) -> anyhow::Result<()> {
        let value = if on { "on" } else { "off" };
        self.db
            .execute_unprepared(&format!(
                "ALTER SYSTEM SET default_transaction_read_only = {value}"
            ))
            .await?;
        self.db
            .execute_unprepared("SELECT pg_reload_conf()")
            .await?;
        Ok(())
    }

    async fn event_ids(&self) -> anyhow::Result<Vec<Uuid>> {
        let statement = Statement::from_string(
            self.db.get_database_backend(),
            "SELECT event_id FROM events",
        );
        let rows = self.db.query_all_raw(statement).await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get_by_index::<Uuid>(0))
            .collect::<Result<_, _>>()?)
    }

    /// How many acknowledged ids are not stored (yet).
    async fn missing(&self, acknowledged: &HashSet<Uuid>) -> anyhow::Result<usize> {
        let stored: HashSet<Uuid> = self.event_ids().await?.into_iter().collect();
        Ok(acknowledged.difference(&stored).count())
    }

    /// Waits until every acknowledged id is stored and the row count stands still, or until nothing has
    /// changed for `SETTLE_LIMIT` (then what is missing is lost). Errors while polling (a database still
    /// recovering, a busy SQLite file) count as no change.
    pub async fn settle(&self, acknowledged: &HashSet<Uuid>) -> Duration {
        let started = Instant::now();
        let (mut last, mut changed_at) = (-1, Instant::now());
        loop {
            let count = self
                .count("SELECT COUNT(*) FROM events")
                .await
                .unwrap_or(last);
            if count != last {
                (last, changed_at) = (count, Instant::now());
            } else if count >= acknowledged.len() as i64
                && self.missing(acknowledged).await.is_ok_and(|m| m == 0)
            {
                return started.elapsed();
            }
            if changed_at.elapsed() > SETTLE_LIMIT || started.elapsed() > WAIT_LIMIT {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Compares what was acknowledged with what is stored.
    pub async fn outcome(&self, scenario: &str, load: LoadReport) -> anyhow::Result<Outcome> {
        let ids = self.event_ids().await?;
        let stored: HashSet<Uuid> = ids.iter().copied().collect();
        let in_sessions = self
            .count("SELECT CAST(SUM(event_count) AS BIGINT) FROM sessions")
            .await?;
        Ok(Outcome {
            scenario: scenario.to_owned(),
            acknowledged: load.acknowledged.len(),
            lost: load.acknowledged.difference(&stored).count(),
            duplicated: ids.len() - stored.len(),
            never_sent: stored.difference(&load.sent).count(),
            stored: ids.len(),
            in_sessions,
            load,
            problems: Vec::new(),
        })
    }
}

/// The numbers of one scenario, and what went wrong.
pub struct Outcome {
    pub scenario: String,
    pub acknowledged: usize,
    pub lost: usize,
    pub duplicated: usize,
    /// Stored ids no client sent: would mean corrupted or invented events.
    pub never_sent: usize,
    pub stored: usize,
    /// The sessions' `event_count` summed: any other value than `stored` is double (or under) counting.
    pub in_sessions: i64,
    pub load: LoadReport,
    problems: Vec<String>,
}

impl Outcome {
    /// Adds a scenario-specific failure.
    pub fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    /// Prints the summary line and, if anything went wrong, the logs' warnings and errors; then fails
    /// with every problem found.
    pub fn conclude(mut self, wall: Duration, logs: &[PathBuf]) -> anyhow::Result<()> {
        self.judge();
        let verdict = if self.problems.is_empty() {
            "PASS"
        } else {
            "FAIL"
        };
        say(&format!(
            "fault {verdict} {}: acknowledged = {}, lost = {}, duplicated = {}, stored = {}, \
             in sessions = {}, answers = {:?}, wall = {:.1}s",
            self.scenario,
            self.acknowledged,
            self.lost,
            self.duplicated,
            self.stored,
            self.in_sessions,
            self.load.answers,
            wall.as_secs_f64()
        ));
        if self.problems.is_empty() {
            return Ok(());
        }
        show_logs(&self.scenario, logs);
        anyhow::bail!("{}: {}", self.scenario, self.problems.join("; "))
    }

    /// The promises every scenario checks: nothing lost, nothing stored twice, nothing counted twice.
    fn judge(&mut self) {
        if self.lost > 0 {
            self.problem(format!(
                "{} acknowledged events were never stored",
                self.lost
            ));
        }
        if self.duplicated > 0 || self.never_sent > 0 {
            self.problem(format!(
                "{} stored twice, {} stored but never sent",
                self.duplicated, self.never_sent
            ));
        }
        if self.in_sessions != self.stored as i64 {
            self.problem(format!(
                "sessions count {} events, {} are stored",
                self.in_sessions, self.stored
            ));
        }
    }
}

/// Writes straight to stderr: the test harness captures `println!`, and CI logs must show the numbers
/// of passing scenarios too.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The last warnings and errors of each log, for the diagnosis of a failed scenario.
pub fn show_logs(scenario: &str, logs: &[PathBuf]) {
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let notable: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("FATAL"))
            .collect();
        let tail = &notable[notable.len().saturating_sub(12)..];
        say(&format!(
            "--- {scenario}: {} ({} warnings/errors, last {}):\n{}",
            log.display(),
            notable.len(),
            tail.len(),
            tail.join("\n")
        ));
    }
}

//! A whole benchmark run: every phase in order against one fresh database, then the report.

use crate::db;
use crate::e2e::{self, Counter, E2ePlan, E2eResult};
use crate::load::{self, Cursor, LoadResult, Plan, Shape, Target};
use crate::procs::Watched;
use crate::progress::{Progress, note};
use crate::queries::{self, Executor};
use crate::report::{self, Machine, Phase, Phases, Processes, Report, Settings};
use crate::stats::ratio;
use crate::storage;
use anyhow::Context;
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Every API process's base URL (load connections are spread over them round-robin; queries go to
    /// the first).
    pub urls: Vec<String>,
    /// An ingest key of `application`.
    pub key: String,
    /// The admin token (for the query API, when it exists).
    pub admin_token: String,
    /// The application the key belongs to.
    pub application: Uuid,
    /// The benchmark database.
    pub database_url: String,
    /// Redis, for its command counter.
    pub redis_url: String,
    /// Every worker's `/metrics` (its `EYE_OPS_BIND`), summed: progress without counting rows in the
    /// database. Empty: progress is polled with `count(*)`.
    pub worker_metrics: Vec<String>,
    /// The processes under test.
    pub watched: Watched,
    /// Sizes and durations.
    pub settings: Settings,
    /// Longest wait for the workers to catch up after sending.
    pub drain_timeout: Duration,
    /// Measured iterations per query (after 10 warm-up rounds).
    pub query_iterations: usize,
}

impl RunConfig {
    /// How many processes of each role ran: the APIs the load went to, and the workers watched (or, when
    /// no pid was given, whose metrics were followed).
    pub fn processes(&self) -> Processes {
        let workers = if self.watched.worker.is_empty() {
            self.worker_metrics.len()
        } else {
            self.watched.worker.len()
        };
        Processes {
            apis: self.urls.len(),
            workers,
        }
    }
}

/// Context shared by the phases.
struct Bench {
    config: RunConfig,
    target: Target,
    pool: PgPool,
    redis: redis::aio::MultiplexedConnection,
    cursor: Cursor,
    /// Events answered 202 so far, in every phase.
    accepted: u64,
}

/// Runs every phase and returns the report.
pub async fn run(config: RunConfig) -> anyhow::Result<Report> {
    let started_at = chrono::Utc::now().to_rfc3339();
    let pool = db::connect(&config.database_url).await?;
    let redis = redis::Client::open(config.redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await
        .context("cannot connect to Redis")?;
    let target = Target::new(&config.urls, &config.key, config.settings.connections)?;
    if config.settings.connections < config.urls.len() {
        note(&format!(
            "  only {} connections for {} APIs: some APIs get no load",
            config.settings.connections,
            config.urls.len()
        ));
    }
    let mut bench = Bench {
        config,
        target,
        pool,
        redis,
        cursor: Cursor::default(),
        accepted: 0,
    };
    let machine = machine(&bench).await?;
    let phases = bench.phases().await?;
    let e2e_to_copy = ratio(phases.e2e.result.events_per_s, phases.copy.rows_per_s);
    let peak_rss = bench.config.watched.peak_rss();
    let peak_rss_mib = peak_rss.max_per_role();
    let targets = report::targets(&phases, e2e_to_copy, &peak_rss_mib);
    Ok(Report {
        schema: report::SCHEMA,
        started_at,
        machine,
        settings: bench.config.settings.clone(),
        processes: bench.config.processes(),
        phases,
        e2e_to_copy,
        peak_rss_mib,
        peak_rss_per_process_mib: peak_rss.per_process,
        targets,
    })
}

impl Bench {
    async fn phases(&mut self) -> anyhow::Result<Phases> {
        let s = self.config.settings.clone();
        note(&format!(
            "1/6 end to end: {} events in batches of {}",
            s.e2e_events, s.batch_size
        ));
        let e2e = self
            .measured(async |b: &mut Bench| b.e2e(s.e2e_events, "e2e", true).await)
            .await?;
        note("2/6 raw COPY of the same rows into events_copy (LIKE events INCLUDING ALL)");
        let copy = db::copy_limit(&self.pool).await?;
        note(&format!(
            "  COPY {} rows in {:.1}s: {:.0} rows/s",
            copy.rows, copy.elapsed_s, copy.rows_per_s
        ));
        note(
            "  what each index of events adds to a row: COPY into a bare copy, then one index at a time",
        );
        let index_costs = storage::index_costs(&self.pool).await?;
        let missing = s
            .query_events
            .saturating_sub(db::count_events(&self.pool).await?);
        note(&format!(
            "3/6 filling to {} events through the service ({missing} more)",
            s.query_events
        ));
        let fill = self
            .measured(async |b: &mut Bench| b.e2e(missing, "fill", false).await)
            .await?;
        let vacuum = db::vacuum_analyze(&self.pool).await?;
        note(&format!(
            "4/6 queries (after VACUUM ANALYZE, {:.1}s)",
            vacuum.as_secs_f64()
        ));
        let disk = storage::disk_use(&self.pool).await?;
        note(&format!(
            "  {} events: {:.0} bytes per event on disk (table and indexes)",
            disk.events, disk.bytes_per_event
        ));
        let queries = self.queries().await?;
        note(&format!(
            "5/6 accept rate, batches of {}, {}s (workers store concurrently)",
            s.batch_size, s.accept_duration_s
        ));
        let accept_batch = self
            .measured(async |b: &mut Bench| {
                b.accept(Shape::Batch(s.batch_size), "accept batch").await
            })
            .await?;
        // Each accept phase measures its own traffic: the single events do not queue behind the batch
        // phase's backlog (at 40,000 accepted and ~15,000 stored per second, half a million events).
        note("  waiting for the workers to store the batch phase's backlog");
        let counter = self.counter();
        e2e::wait_until_stored(&counter, self.accepted, self.config.drain_timeout).await?;
        note(&format!(
            "6/6 accept rate, single events, {}s (workers store concurrently)",
            s.accept_duration_s
        ));
        let accept_single = self
            .measured(async |b: &mut Bench| b.accept(Shape::Single, "accept single").await)
            .await?;
        Ok(Phases {
            e2e,
            copy,
            index_costs,
            fill,
            disk,
            queries,
            accept_batch,
            accept_single,
        })
    }

    /// Runs a phase and records what it cost the machine.
    async fn measured<T, F>(&mut self, phase: F) -> anyhow::Result<Phase<T>>
    where
        F: AsyncFnOnce(&mut Self) -> anyhow::Result<T>,
    {
        let cpu_before = self.config.watched.cpu();
        let redis_before = self.redis_commands().await?;
        let rows_before = db::count_events(&self.pool).await?;
        let result = phase(self).await?;
        Ok(Phase {
            result,
            cpu_s: self.config.watched.cpu().since(&cpu_before),
            redis_commands: self.redis_commands().await?.saturating_sub(redis_before),
            rows_stored: db::count_events(&self.pool)
                .await?
                .saturating_sub(rows_before),
            load_after: load_average(),
        })
    }

    async fn e2e(&mut self, events: u64, label: &str, prepared: bool) -> anyhow::Result<E2eResult> {
        let load = Plan {
            shape: Shape::Batch(self.config.settings.batch_size),
            connections: self.config.settings.connections,
            duration: Duration::from_secs(1800),
            max_events: events,
        };
        let plan = E2ePlan {
            load,
            drain_timeout: self.config.drain_timeout,
            prepared,
        };
        let result = e2e::run(&self.target, &self.counter(), plan, &self.cursor, label).await?;
        self.accepted += result.send.events_accepted;
        Ok(result)
    }

    /// Where progress is read: the worker's metrics when known, else `count(*)`.
    fn counter(&self) -> Counter {
        if self.config.worker_metrics.is_empty() {
            return Counter::Sql(self.pool.clone());
        }
        Counter::WorkerMetrics {
            urls: self.config.worker_metrics.clone(),
            client: reqwest::Client::new(),
            pool: self.pool.clone(),
        }
    }

    async fn accept(&mut self, shape: Shape, label: &str) -> anyhow::Result<LoadResult> {
        let plan = Plan {
            shape,
            connections: self.config.settings.connections,
            duration: Duration::from_secs_f64(self.config.settings.accept_duration_s),
            max_events: 5_000_000,
        };
        let progress = Progress::start(label);
        let result = load::run(&self.target, plan, &self.cursor, None, &progress).await;
        self.accepted += result.events_accepted;
        note(&format!(
            "  [{label}] {:.0} events/s, {:?}, failures {:?}",
            result.events_per_s, result.latency, result.failures
        ));
        Ok(result)
    }

    async fn queries(&mut self) -> anyhow::Result<queries::QueryResults> {
        let c = &self.config;
        let client = reqwest::Client::new();
        let events = db::count_events(&self.pool).await?;
        // The queries measure one process's latency, not the spread: the first API answers them all.
        let url = c.urls.first().context("no API URL")?;
        let exec = if queries::http_available(&client, url, &c.admin_token, c.application).await {
            Executor::Http {
                client,
                base: url.clone(),
                token: c.admin_token.clone(),
                application: c.application,
            }
        } else {
            note("  the query API (issue 5) does not answer: measuring the equivalent SQL");
            Executor::Sql {
                pool: self.pool.clone(),
                application: c.application,
            }
        };
        queries::measure(&exec, self.cursor.position(), 10, c.query_iterations)
            .await
            .map(|r| queries::QueryResults { events, ..r })
    }

    async fn redis_commands(&mut self) -> anyhow::Result<u64> {
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut self.redis)
            .await?;
        Ok(info_field(&info, "total_commands_processed").unwrap_or(0))
    }
}

/// A numeric field of Redis' `INFO` answer.
pub fn info_field(info: &str, field: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

async fn machine(bench: &Bench) -> anyhow::Result<Machine> {
    let postgres: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&bench.pool)
        .await?;
    let mut redis = bench.redis.clone();
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut redis)
        .await?;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?");
    Ok(Machine {
        nproc: std::thread::available_parallelism().map_or(0, usize::from),
        memory_mib: meminfo_total_mib().unwrap_or(0),
        postgres,
        redis: version.trim().to_owned(),
        load_before: load_average(),
    })
}

fn meminfo_total_mib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? / 1024)
}

/// `/proc/loadavg`'s three averages (zeros when unreadable).
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut values = text.split_whitespace().filter_map(|v| v.parse().ok());
    [(); 3].map(|()| values.next().unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(urls: usize, metrics: usize, worker_pids: Vec<u32>) -> RunConfig {
        let url = |n: usize| format!("http://127.0.0.1:{}", 18080 + n);
        RunConfig {
            urls: (0..urls).map(|n| url(2 * n)).collect(),
            key: "key".into(),
            admin_token: "token".into(),
            application: Uuid::nil(),
            database_url: "postgres://x/y".into(),
            redis_url: "redis://x".into(),
            worker_metrics: (0..metrics).map(|n| url(2 * n + 1)).collect(),
            watched: Watched {
                api: vec![],
                worker: worker_pids,
            },
            settings: Settings {
                connections: 32,
                batch_size: 100,
                accept_duration_s: 1.0,
                e2e_events: 1,
                query_events: 0,
            },
            drain_timeout: Duration::from_secs(1),
            query_iterations: 1,
        }
    }

    #[test]
    fn the_process_counts_are_the_apis_loaded_and_the_workers_watched() {
        let counts = |c: RunConfig| (c.processes().apis, c.processes().workers);
        assert_eq!(counts(config(1, 1, vec![10])), (1, 1));
        assert_eq!(counts(config(4, 4, vec![10, 11, 12, 13])), (4, 4));
        // Without pids the workers are those whose metrics are followed.
        assert_eq!(counts(config(2, 3, vec![])), (2, 3));
    }

    #[test]
    fn a_redis_info_field_is_read_by_name() {
        let info = "# Stats\r\ntotal_connections_received:12\r\ntotal_commands_processed:98765\r\n";
        assert_eq!(info_field(info, "total_commands_processed"), Some(98_765));
        assert_eq!(info_field(info, "total_commands"), None);
    }
}

//! `eye-bench`: measures The Eye (see BENCHMARKS.md; `bench/run.sh` runs the whole thing).

use anyhow::Context;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use eye_bench::load::{self, Cursor, Plan, Shape, Target};
use eye_bench::procs::Watched;
use eye_bench::progress::Progress;
use eye_bench::queries::{self, Executor};
use eye_bench::report::{self, Settings};
use eye_bench::run::{self, RunConfig};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

/// Where `bench/run.sh` starts the (first) API.
const DEFAULT_URL: &str = "http://127.0.0.1:18080";

/// Benchmark harness of The Eye.
#[derive(Debug, Parser)]
#[command(name = "eye-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every phase against a fresh database and running `eye api` + `eye worker`; writes the JSON report.
    Run(RunArgs),
    /// Only the accept rate (for profiling one path).
    Accept(AcceptArgs),
    /// Only the query latency, on whatever the database holds.
    Queries(QueryArgs),
}

#[derive(Debug, Args)]
struct Service {
    /// The API's base URL; several API processes: repeat it or separate them with commas (the load is
    /// spread over them round-robin, queries go to the first).
    #[arg(long = "url", env = "EYE_BENCH_URL", default_value = DEFAULT_URL, action = ArgAction::Append)]
    urls: Vec<String>,
    /// The benchmark database.
    #[arg(long, env = "EYE_BENCH_DATABASE_URL")]
    database_url: String,
    /// The application the ingest key belongs to.
    #[arg(long, env = "EYE_BENCH_APPLICATION")]
    application: Uuid,
    /// The admin token (used for the query API).
    #[arg(long, env = "EYE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    service: Service,
    /// An ingest key of the application.
    #[arg(long, env = "EYE_BENCH_KEY", hide_env_values = true)]
    key: String,
    /// Redis (for its command counter).
    #[arg(long, env = "EYE_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// pid of `eye api` (repeat it or separate with commas for several; their CPU is summed).
    #[arg(long, value_delimiter = ',')]
    api_pid: Vec<u32>,
    /// pid of `eye worker` (repeat it or separate with commas for several; their CPU is summed).
    #[arg(long, value_delimiter = ',')]
    worker_pid: Vec<u32>,
    /// The worker's metrics URL (`EYE_OPS_BIND`); several workers: repeat it or separate with commas (their
    /// counters are summed). Without it, progress is polled with `count(*)`.
    #[arg(long = "worker-metrics", env = "EYE_BENCH_WORKER_METRICS", action = ArgAction::Append)]
    worker_metrics: Vec<String>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Events per batch request.
    #[arg(long, default_value_t = 100)]
    batch_size: u64,
    /// Length of each accept phase.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    accept_duration: Duration,
    /// Events of the end-to-end phase.
    #[arg(long, default_value_t = 500_000)]
    e2e_events: u64,
    /// Events stored before the query phase.
    #[arg(long, default_value_t = 1_000_000)]
    query_events: u64,
    /// Longest wait for the workers after sending.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// Measured iterations per query.
    #[arg(long, default_value_t = 200)]
    query_iterations: usize,
    /// Where to write the JSON report.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ShapeArg {
    Batch,
    Single,
    /// Segment `track` messages to `POST /v1/batch`.
    Segment,
}

#[derive(Debug, Args)]
struct AcceptArgs {
    /// The API's base URL; several: repeat it or separate with commas (spread round-robin).
    #[arg(long = "url", env = "EYE_BENCH_URL", default_value = DEFAULT_URL, action = ArgAction::Append)]
    urls: Vec<String>,
    /// An ingest key.
    #[arg(long, env = "EYE_BENCH_KEY", hide_env_values = true)]
    key: String,
    #[arg(long, value_enum, default_value = "batch")]
    shape: ShapeArg,
    #[arg(long, default_value_t = 100)]
    batch_size: u64,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// First event number (keep runs on one database apart).
    #[arg(long, default_value_t = 0)]
    first_event: u64,
}

#[derive(Debug, Args)]
struct QueryArgs {
    #[command(flatten)]
    service: Service,
    /// Events 0..N of the workload are stored.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Measure the SQL even if the query API answers.
    #[arg(long)]
    sql: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run_all(args).await,
        Command::Accept(args) => accept(args).await,
        Command::Queries(args) => query(args).await,
    }
}

async fn run_all(args: RunArgs) -> anyhow::Result<()> {
    let worker_metrics = if args.worker_metrics.is_empty() {
        Vec::new()
    } else {
        load::parse_urls(&args.worker_metrics).context("--worker-metrics")?
    };
    let config = RunConfig {
        urls: load::parse_urls(&args.service.urls).context("--url")?,
        key: args.key,
        admin_token: args.service.admin_token,
        application: args.service.application,
        database_url: args.service.database_url,
        redis_url: args.redis_url,
        worker_metrics,
        watched: Watched {
            api: args.api_pid,
            worker: args.worker_pid,
        },
        settings: Settings {
            connections: args.connections,
            batch_size: args.batch_size,
            accept_duration_s: args.accept_duration.as_secs_f64(),
            e2e_events: args.e2e_events,
            query_events: args.query_events,
        },
        drain_timeout: args.drain_timeout,
        query_iterations: args.query_iterations,
    };
    let report = run::run(config).await?;
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", report::summary(&report))?;
    writeln!(stdout, "JSON: {}", args.out.display())?;
    Ok(())
}

async fn accept(args: AcceptArgs) -> anyhow::Result<()> {
    let shape = match args.shape {
        ShapeArg::Batch => Shape::Batch(args.batch_size),
        ShapeArg::Single => Shape::Single,
        ShapeArg::Segment => Shape::Segment(args.batch_size),
    };
    let urls = load::parse_urls(&args.urls).context("--url")?;
    let target = Target::new(&urls, &args.key, args.connections)?;
    let plan = Plan {
        shape,
        connections: args.connections,
        duration: args.duration,
        max_events: 5_000_000,
    };
    let progress = Progress::start("accept");
    let result = load::run(
        &target,
        plan,
        &Cursor::starting_at(args.first_event),
        None,
        &progress,
    )
    .await;
    writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&result)?
    )?;
    Ok(())
}

async fn query(args: QueryArgs) -> anyhow::Result<()> {
    let s = args.service;
    let urls = load::parse_urls(&s.urls).context("--url")?;
    let url = urls.into_iter().next().context("--url: no URL")?;
    let client = reqwest::Client::new();
    let exec = if !args.sql
        && queries::http_available(&client, &url, &s.admin_token, s.application).await
    {
        Executor::Http {
            client,
            base: url,
            token: s.admin_token,
            application: s.application,
        }
    } else {
        let pool = eye_bench::db::connect(&s.database_url).await?;
        Executor::Sql {
            pool,
            application: s.application,
        }
    };
    let results = queries::measure(&exec, args.events, 10, args.iterations).await?;
    writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&results)?
    )?;
    Ok(())
}

//! The Eye's service: HTTP API and workers, started together or apart.

// The errors' replay drives a whole job (store, rules, notifications) inside one request handler; the
// compiler's default depth of 128 is too shallow to lay out that nested future.
#![recursion_limit = "256"]

pub mod api;
pub mod config;
pub mod dashboard;
pub mod http;
pub mod metrics;
pub mod rules;
pub mod state;

pub use config::Config;

use anyhow::Context;
use api::admission::{Admission, AdmissionSettings};
use api::auth::{KeyCache, KeyCacheSettings};
use chrono::TimeDelta;
use eye_store::{Migrated, Store, StoreOptions};
use eye_validation::{SchemaRegistry, SharedSchemaRegistry};
use eye_worker::{
    CountFolder, Enqueuer, GroupingSettings, Processor, Queue, QueueBackend, QueueConfig,
    RegistryWatcher, RetentionSettings, RetentionSweeper, Validator, WorkerMetrics, WorkerOptions,
};
use metrics::ApiMetrics;
use poem::EndpointExt;
use poem::endpoint::BoxEndpoint;
use prometheus_client::registry::Registry;
use state::{AppState, AppStateParts};
use std::net::SocketAddr;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Which parts of the service a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// HTTP API and workers.
    All,
    /// HTTP API only.
    Api,
    /// Workers only.
    Worker,
}

impl Role {
    fn serves_http(self) -> bool {
        matches!(self, Self::All | Self::Api)
    }

    fn runs_workers(self) -> bool {
        matches!(self, Self::All | Self::Worker)
    }
}

/// A running service: where it listens, and how to stop it.
pub struct Service {
    addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Service {
    /// The address the HTTP API listens on (`None` for a worker-only process).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Stops gracefully: the API stops accepting, jobs in flight finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Runs until Ctrl-C or SIGTERM, then stops gracefully.
    pub async fn run_until_signal(self) {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.stop().await;
    }
}

/// Connects to the database and the queue, then starts what `role` asks for.
pub async fn start(config: &Config, role: Role) -> anyhow::Result<Service> {
    let store = open_store(config).await?;
    let queue = Queue::open(&queue_config(config))
        .await
        .context("cannot open the queue (EYE_REDIS_URL / EYE_QUEUE_PATH)")?;
    let mut registry = Registry::default();
    let worker_metrics = WorkerMetrics::default();
    worker_metrics.register(&mut registry);
    queue.metrics().register(&mut registry);
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let (validator, watcher) = start_validation(config, &store, &shutdown, &mut tasks).await?;
    // Every process has the processor: workers run queued jobs through it, the API replays errors.
    let processor = Processor::new(store.clone(), validator, worker_metrics, shutdown.clone())
        .with_registry(watcher)
        .with_rules(rules::reactor(config, &store).await?);
    if role.runs_workers() {
        rules::start_rule_tasks(config, &store, &queue, &shutdown, &mut tasks)?;
        start_upkeep(config, &store, &shutdown, &mut tasks)?;
        let options = WorkerOptions {
            concurrency: usize::from(config.worker_concurrency),
        };
        tasks.spawn(eye_worker::run_workers(
            queue.clone(),
            processor.clone(),
            options,
            shutdown.clone(),
        ));
    }
    let state = app_state(
        config,
        StateDeps {
            store,
            queue,
            registry,
            processor,
        },
    );
    let addr = match (role.serves_http(), config.ops_bind) {
        (true, _) => Some(
            serve_http(
                config.bind,
                poem::Route::new()
                    .nest("/dashboard", dashboard::routes())
                    .nest("/", api::routes(state))
                    .map_to_response()
                    .boxed(),
                client_timeouts(config),
                &shutdown,
                &mut tasks,
            )
            .await?,
        ),
        (false, Some(ops)) => Some(
            serve_http(
                ops,
                api::ops_routes(state).map_to_response().boxed(),
                client_timeouts(config),
                &shutdown,
                &mut tasks,
            )
            .await?,
        ),
        (false, None) => None,
    };
    Ok(Service {
        addr,
        shutdown,
        tasks,
    })
}

/// Connects to the database and migrates it.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = connect_store(config).await?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}

/// Connects to the database, migrates it, and says which migrations were applied (`eye migrate`).
pub async fn migrate(config: &Config) -> anyhow::Result<Migrated> {
    let store = connect_store(config).await?;
    store
        .migrate_reporting()
        .await
        .context("cannot migrate the database")
}

async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    config
        .prepare_directories()
        .context("cannot create the data directory")?;
    let options = StoreOptions {
        url: config.database_url.clone(),
        max_connections: config.database_max_connections,
    };
    Store::connect(&options)
        .await
        .context("cannot connect to EYE_DATABASE_URL")
}

/// The queue settings of a configuration (tests open the same queue the service uses).
pub fn queue_config(config: &Config) -> QueueConfig {
    let backend = match &config.redis_url {
        Some(url) => QueueBackend::Redis { url: url.clone() },
        None => QueueBackend::Sqlite {
            path: config.queue_path.clone(),
        },
    };
    QueueConfig {
        backend,
        name: config.queue_name.clone(),
        poll_interval: config.queue_poll_interval,
        push_timeout: config.queue_push_timeout,
        retention: config.queue_retention,
    }
}

/// Publishes the built-in schemas, loads the registry and keeps it fresh; the validator reads it, and the
/// watcher brings it up to date before each batch.
async fn start_validation(
    config: &Config,
    store: &Store,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<(Validator, RegistryWatcher)> {
    eye_worker::seed_builtin_schemas(store)
        .await
        .context("cannot publish the built-in schemas")?;
    let shared = SharedSchemaRegistry::new(SchemaRegistry::default());
    let watcher = RegistryWatcher::new(store.clone(), shared.clone());
    watcher
        .ensure_fresh()
        .await
        .context("cannot load the schema registry")?;
    tasks.spawn(watcher.clone().run(shutdown.clone()));
    let max_skew =
        TimeDelta::from_std(config.max_clock_skew).context("EYE_MAX_CLOCK_SKEW is too large")?;
    let validator =
        Validator::new(shared, config.unknown_events, max_skew).with_retention(retention(config)?);
    Ok((validator, watcher))
}

/// `EYE_RETENTION` as event time, if set.
fn retention(config: &Config) -> anyhow::Result<Option<TimeDelta>> {
    config
        .retention
        .map(|keep| TimeDelta::from_std(keep).context("EYE_RETENTION is too large"))
        .transpose()
}

/// The data's upkeep in worker processes: the retention sweeper when `EYE_RETENTION` is set, and on
/// PostgreSQL the folder of the hourly counts' slots.
fn start_upkeep(
    config: &Config,
    store: &Store,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    if let Some(keep) = retention(config)? {
        let sweeper = RetentionSweeper::new(store.clone(), RetentionSettings::new(keep));
        tasks.spawn(sweeper.run(shutdown.clone()));
    }
    // SQLite keeps one slot per count: nothing to fold there.
    if store.is_postgres() {
        tasks.spawn(CountFolder::new(store.clone()).run(shutdown.clone()));
    }
    Ok(())
}

fn client_timeouts(config: &Config) -> http::ClientTimeouts {
    http::ClientTimeouts {
        header: config.http_header_timeout,
        idle: config.http_idle_timeout,
    }
}

/// What the HTTP state is built from.
struct StateDeps {
    store: Store,
    queue: Queue,
    registry: Registry,
    processor: Processor,
}

fn app_state(config: &Config, deps: StateDeps) -> AppState {
    let StateDeps {
        store,
        queue,
        mut registry,
        processor,
    } = deps;
    let metrics = ApiMetrics::default();
    metrics.register(&mut registry);
    AppState::new(AppStateParts {
        store,
        enqueuer: Enqueuer::start(queue.clone(), GroupingSettings::default()),
        queue,
        processor,
        keys: KeyCache::new(KeyCacheSettings {
            ttl: config.auth_cache_ttl,
            stale_for: config.auth_stale_for,
            lookup_timeout: config.auth_lookup_timeout,
        })
        .with_metrics(metrics.clone()),
        metrics,
        registry,
        admin_token: config.admin_token.clone(),
        max_body_bytes: config.max_body_bytes,
        admission: Admission::new(AdmissionSettings {
            max_concurrent: config.ingest_max_concurrent,
            max_inflight_bytes: config.ingest_max_inflight_bytes,
            deadline: config.ingest_deadline,
        }),
        body_timeout: config.http_body_timeout,
        dry_run_max_events: config.dry_run_max_events,
    })
}

async fn serve_http(
    bind: SocketAddr,
    app: BoxEndpoint<'static>,
    timeouts: http::ClientTimeouts,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind} (EYE_BIND / EYE_OPS_BIND)"))?;
    let addr = listener.local_addr()?;
    tasks.spawn(http::serve(listener, app, timeouts, shutdown.clone()));
    tracing::info!(%addr, "listening");
    Ok(addr)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

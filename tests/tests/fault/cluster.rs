//! The production shape under test: private PostgreSQL and Redis, `eye api` and `eye worker` as separate
//! processes, one registered application.

use crate::load::{Batch, Load, LoadReport, Pace};
use crate::procs::{EyeEnv, EyeProcess, Role};
use crate::services::{Postgres, Redis, free_port, temp_dir};
use crate::verify::{Outcome, Stored, say};
use std::path::PathBuf;
use std::time::Instant;

/// Everything one scenario runs on; dropping it stops and removes all of it.
pub struct Cluster {
    pub pg: Postgres,
    pub redis: Redis,
    pub env: EyeEnv,
    pub api: EyeProcess,
    pub worker: Option<EyeProcess>,
    pub key: String,
    started: Instant,
    // Last: the processes must be gone before their log directory.
    _logs: tempfile::TempDir,
}

impl Cluster {
    /// Starts the services, migrates, registers an application and starts the API; `extra` are more
    /// `EYE_*` settings for every process. The worker is started with `start_worker`.
    pub async fn start(extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let started = Instant::now();
        let logs = temp_dir("eye-fault-logs-")?;
        let pg = Postgres::start().await?;
        let redis = Redis::start().await?;
        let mut env = EyeEnv::new(&pg.url(), Some(&redis.url()), logs.path());
        for (name, value) in extra {
            env.set(name, value);
        }
        env.run(&["migrate"]).await?;
        let key = env.create_application("fault").await?;
        let api = EyeProcess::start(Role::Api, &env, free_port()?).await?;
        Ok(Self {
            pg,
            redis,
            env,
            api,
            worker: None,
            key,
            started,
            _logs: logs,
        })
    }

    /// Starts the cluster with its worker running.
    pub async fn start_with_worker(extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut cluster = Self::start(extra).await?;
        cluster.start_worker().await?;
        Ok(cluster)
    }

    /// Starts `eye worker` (once; later starts go through the process itself).
    pub async fn start_worker(&mut self) -> anyhow::Result<()> {
        self.worker = Some(EyeProcess::start(Role::Worker, &self.env, free_port()?).await?);
        Ok(())
    }

    /// The running worker.
    pub fn worker(&mut self) -> anyhow::Result<&mut EyeProcess> {
        self.worker
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no worker started"))
    }

    /// Starts posting `batches` to the API.
    pub fn load(&self, batches: Vec<Batch>, pace: Pace) -> anyhow::Result<Load> {
        Load::start(&self.api.base, &self.key, batches, pace)
    }

    /// The database, as the test reads it.
    pub async fn stored(&self) -> anyhow::Result<Stored> {
        Stored::connect(&self.pg.url()).await
    }

    /// Waits for the workers to drain and compares what was acknowledged with what is stored.
    pub async fn outcome(&self, scenario: &str, load: LoadReport) -> anyhow::Result<Outcome> {
        let stored = self.stored().await?;
        let waited = stored.settle(&load.acknowledged).await;
        say(&format!(
            "fault {scenario}: drained {:.1}s after the load ended",
            waited.as_secs_f64()
        ));
        stored.outcome(scenario, load).await
    }

    /// Concludes the scenario: summary line, logs if it failed, and the verdict.
    pub fn conclude(&self, outcome: Outcome) -> anyhow::Result<()> {
        outcome.conclude(self.started.elapsed(), &self.logs())
    }

    /// Every log of the scenario.
    pub fn logs(&self) -> Vec<PathBuf> {
        let mut logs = vec![self.api.log(), self.pg.log(), self.redis.log()];
        logs.extend(self.worker.as_ref().map(EyeProcess::log));
        logs
    }
}

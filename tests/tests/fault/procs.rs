//! The real `eye` binary as child processes (`api`, `worker`, `serve`), configured by `EYE_*` variables
//! and killed with `kill -9` by the scenarios. Dropping a process kills it.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub const ADMIN_TOKEN: &str = "fault-admin-token";

/// Longest wait for a process to answer `/ready`; generous because builds may share the machine.
const READY_LIMIT: Duration = Duration::from_secs(90);

/// The `eye` binary built beside this test (`target/debug/eye` for `target/debug/deps/fault-…`).
pub fn eye_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("eye"))
        .context("no directory above the test executable")?;
    anyhow::ensure!(
        binary.is_file(),
        "{} is missing: build it first with `cargo build -p eye-server` \
         (`cargo test --workspace` builds it too)",
        binary.display()
    );
    Ok(binary)
}

/// The environment every `eye` process of one scenario shares, and where their logs go.
#[derive(Clone)]
pub struct EyeEnv {
    vars: Vec<(String, String)>,
    logs: PathBuf,
}

impl EyeEnv {
    /// Processes on `database_url`, with Redis at `redis_url` or else the embedded queue in `logs`.
    pub fn new(database_url: &str, redis_url: Option<&str>, logs: &Path) -> Self {
        let mut vars = vec![
            ("EYE_DATABASE_URL".into(), database_url.into()),
            ("EYE_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
            ("EYE_QUEUE_NAME".into(), "eye:fault".into()),
            (
                "EYE_QUEUE_PATH".into(),
                logs.join("queue.db").display().to_string(),
            ),
            ("RUST_LOG".into(), "info,sqlx=warn,sea_orm=warn".into()),
            ("NO_COLOR".into(), "1".into()),
        ];
        if let Some(url) = redis_url {
            vars.push(("EYE_REDIS_URL".into(), url.into()));
        }
        Self {
            vars,
            logs: logs.to_path_buf(),
        }
    }

    /// Adds or replaces a variable.
    pub fn set(&mut self, name: &str, value: &str) {
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.into(), value.into()));
    }

    fn command(&self, args: &[&str]) -> anyhow::Result<Command> {
        let mut command = Command::new(eye_binary()?);
        // The test's own EYE_* settings (if any) must not leak into the processes under test.
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("EYE_")) {
            command.env_remove(name);
        }
        command
            .envs(self.vars.iter().map(|(n, v)| (n, v)))
            .args(args);
        Ok(command)
    }

    /// Runs a one-shot command (`migrate`, `apps create …`) and returns its stdout.
    pub async fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.command(args)?.stdin(Stdio::null()).output().await?;
        anyhow::ensure!(
            out.status.success(),
            "eye {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Registers an application; returns its ingest key.
    pub async fn create_application(&self, name: &str) -> anyhow::Result<String> {
        let out: serde_json::Value =
            serde_json::from_str(&self.run(&["apps", "create", name]).await?)?;
        out["ingest_key"]
            .as_str()
            .map(str::to_owned)
            .context("no ingest_key in the output of `eye apps create`")
    }
}

/// Which `eye` subcommand a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `eye api`: the HTTP API only.
    Api,
    /// `eye worker`: the workers only, with `/ready` on `EYE_OPS_BIND`.
    Worker,
    /// `eye serve`: both, the embedded default.
    Serve,
}

impl Role {
    fn subcommand(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Worker => "worker",
            Role::Serve => "serve",
        }
    }

    /// The variable naming the address where this role answers `/ready`.
    fn bind_variable(self) -> &'static str {
        match self {
            Role::Worker => "EYE_OPS_BIND",
            Role::Api | Role::Serve => "EYE_BIND",
        }
    }
}

/// One `eye` process that can be killed and started again with the same settings.
pub struct EyeProcess {
    role: Role,
    env: EyeEnv,
    /// Where it answers `/ready` (the API's bind, or a worker's ops bind).
    pub base: String,
    child: Option<Child>,
}

impl EyeProcess {
    /// Starts `eye <role>` answering on `port` and waits until it is ready.
    pub async fn start(role: Role, env: &EyeEnv, port: u16) -> anyhow::Result<Self> {
        let mut env = env.clone();
        let addr = format!("127.0.0.1:{port}");
        env.set(role.bind_variable(), &addr);
        let mut process = Self {
            role,
            env,
            base: format!("http://{addr}"),
            child: None,
        };
        process.start_again().await?;
        Ok(process)
    }

    /// Starts the process again (after a kill) and waits until it is ready.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        self.spawn()?;
        self.wait_ready().await
    }

    /// Spawns the process, its output appended to its log.
    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())?;
        let child = self
            .env
            .command(&[self.role.subcommand()])?
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// `kill -9`, and reaps it.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                anyhow::bail!(
                    "eye {} exited with {status}; see {}",
                    self.role.subcommand(),
                    self.log().display()
                );
            }
            let ready = http
                .get(format!("{}/ready", self.base))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < READY_LIMIT,
                "eye {} not ready after {READY_LIMIT:?}; see {}",
                self.role.subcommand(),
                self.log().display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// This process's log (stdout and stderr of every start).
    pub fn log(&self) -> PathBuf {
        self.env
            .logs
            .join(format!("{}.log", self.role.subcommand()))
    }
}

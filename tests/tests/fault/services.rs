//! Private PostgreSQL and Redis instances, one pair per scenario: the faults kill and stop them, so they
//! can never be the machine's shared servers. Each lives in a temporary directory removed at the end;
//! dropping the handle stops the server, also when a test fails.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Longest wait for a server to come up; generous because builds may share the machine.
const START_LIMIT: Duration = Duration::from_secs(60);

/// A port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A temporary directory; `EYE_FAULT_KEEP` keeps it (logs, data) for a post-mortem.
pub fn temp_dir(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new()
        .prefix(prefix)
        .disable_cleanup(std::env::var_os("EYE_FAULT_KEEP").is_some())
        .tempdir()?)
}

/// A PostgreSQL 15 cluster of its own, fsync on, reachable on 127.0.0.1 with trust authentication.
pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl Postgres {
    /// `initdb` and start, as the `postgres` OS user when run as root (initdb refuses root).
    pub async fn start() -> anyhow::Result<Self> {
        let dir = temp_dir("eye-fault-pg-")?;
        run_checked(Command::new("chown").arg("postgres:").arg(dir.path())).await?;
        let pg = Self {
            port: free_port()?,
            dir,
        };
        let data = pg.data_dir();
        run_checked(
            pg_tool("initdb")
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(&data),
        )
        .await
        .context("initdb (needs /usr/lib/postgresql/15/bin and a `postgres` OS user)")?;
        pg.start_again().await?;
        Ok(pg)
    }

    /// `postgres://` URL of the cluster's `postgres` database, without TLS (loopback).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Starts the stopped cluster on its port.
    pub async fn start_again(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["start", "-t", "60"]).await
    }

    /// Stops the cluster (fast: connections are cut, nothing is lost).
    pub async fn stop(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["stop", "-m", "fast", "-t", "60"]).await
    }

    /// A crash and recovery: `pg_ctl restart -m immediate` (no shutdown checkpoint, WAL replay on start).
    pub async fn restart_immediately(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["restart", "-m", "immediate", "-t", "60"])
            .await
    }

    async fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200 -k {}",
            self.port,
            self.dir.path().display()
        );
        let mut command = pg_tool("pg_ctl");
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.dir.path().join("postgres.log"))
            .args(["-w", "-o", &options])
            .args(args);
        run_checked(&mut command)
            .await
            .with_context(|| format!("pg_ctl {args:?}"))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log, for diagnosis.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Synchronous on purpose: Drop cannot await, and the cluster must be gone before its directory.
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Path::new(PG_BIN).join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A PostgreSQL tool, run as the `postgres` user when we are root.
fn pg_tool(name: &str) -> Command {
    let tool = Path::new(PG_BIN).join(name);
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(tool);
        command
    } else {
        Command::new(tool)
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

async fn run_checked(command: &mut Command) -> anyhow::Result<()> {
    let out = command.stdin(Stdio::null()).output().await?;
    anyhow::ensure!(
        out.status.success(),
        "{:?} failed: {}{}",
        command.as_std().get_program(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A redis-server of its own with the append-only file synced on every write, so that a `kill -9` loses
/// nothing it acknowledged.
pub struct Redis {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Redis {
    pub async fn start() -> anyhow::Result<Self> {
        let mut redis = Self {
            dir: temp_dir("eye-fault-redis-")?,
            port: free_port()?,
            child: None,
        };
        redis.start_again().await?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server on its port and directory (after a kill it replays the append-only file).
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("redis-server")?;
        self.child = Some(child);
        self.wait_until_serving().await
    }

    /// `kill -9`.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    async fn wait_until_serving(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        let client = redis::Client::open(self.url())?;
        loop {
            let ping = async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            // Connected but still loading the append-only file counts as not yet serving.
            match ping.await {
                Ok(_) => return Ok(()),
                Err(err) if started.elapsed() > START_LIMIT => {
                    anyhow::bail!("redis-server did not come up: {err}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The server's log, for diagnosis.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }
}

//! The README's walk-through runs as written, top to bottom, and prints what the README shows.
//!
//! Its shell steps (see `readme/walkthrough.rs` for how they are marked) run in one `bash` with
//! `set -euo pipefail`, in an empty directory standing for a clean checkout: `scripts/` is the
//! repository's, `data/` starts empty, and the environment holds no `EYE_*` settings. Three things differ
//! from a reader's terminal, so that CI stays quick and never collides with anything:
//! - `127.0.0.1:8080` and `127.0.0.1:9000`, in the steps and in their outputs, become free ports (and
//!   `EYE_BIND`/`EYE_URL` name the first, for the binary's and the scripts' defaults);
//! - `./target/release` is the debug build that `.ci/test` makes first (`target/debug`), and the
//!   walk-through's `cargo` builds nothing: `build --release -p eye-server` is a no-op and
//!   `run --release -p eye-sdk --example send -- …` runs the debug example;
//! - each step's standard output is compared with the README's `text` block after it; standard error is
//!   shown only when the walk-through fails.
//!
//! The walk-through must stop everything it starts: a process left running after its last step fails the
//! test (and is killed).

mod walkthrough;

use anyhow::Context;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use walkthrough::Step;

/// The whole walk-through, waits included (it takes about a minute on a busy 2-core machine).
const TIMEOUT: Duration = Duration::from_secs(600);
const STEP_MARK: &str = "@@walkthrough-step@@";

/// The repository (the parent of this crate).
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `target/debug`, where this test binary lives (`target/debug/deps/e2e-…`).
fn debug_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(Path::parent).context("target dir")?;
    anyhow::ensure!(
        dir.join("eye").is_file(),
        "{}/eye is missing: build it first (`cargo build -p eye-server -p eye-sdk --examples`, as .ci/test does)",
        dir.display()
    );
    Ok(dir.to_path_buf())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The walk-through's `cargo`: the binaries are built already.
const CARGO_SHIM: &str = r#"#!/usr/bin/env bash
case "$*" in
  "build --release -p eye-server") exit 0 ;;
  "run --release -p eye-sdk --example send -- "*)
    shift 7
    [ -x "$EYE_DEBUG_DIR/examples/send" ] || { echo "build the SDK example first: cargo build -p eye-sdk --examples" >&2; exit 1; }
    exec "$EYE_DEBUG_DIR/examples/send" "$@" ;;
  *) echo "the walk-through test does not know \`cargo $*\`: teach tests/tests/e2e/readme.rs" >&2; exit 1 ;;
esac
"#;

/// An empty directory standing for a clean checkout, with the shims described above.
fn sandbox(debug: &Path) -> anyhow::Result<tempfile::TempDir> {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = tempfile::Builder::new().prefix("eye-readme-").tempdir()?;
    symlink(
        repository().join("scripts").canonicalize()?,
        dir.path().join("scripts"),
    )?;
    std::fs::create_dir(dir.path().join("target"))?;
    symlink(debug, dir.path().join("target/release"))?;
    std::fs::create_dir(dir.path().join("bin"))?;
    let cargo = dir.path().join("bin/cargo");
    std::fs::write(&cargo, CARGO_SHIM)?;
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// Free ports in place of the README's.
struct Ports {
    api: String,
    notify: String,
}

impl Ports {
    fn apply(&self, text: &str) -> String {
        text.replace("127.0.0.1:8080", &self.api)
            .replace("127.0.0.1:9000", &self.notify)
    }
}

/// One script: every step, each announced on standard output so its output can be told apart.
fn script(steps: &[Step], ports: &Ports) -> String {
    let mut script = String::from("set -euo pipefail\n");
    for (n, step) in steps.iter().enumerate() {
        script.push_str(&format!("printf '\\n{STEP_MARK} {n}\\n'\n"));
        script.push_str(&ports.apply(&step.script));
    }
    script.push_str(&format!("printf '\\n{STEP_MARK} end\\n'\n"));
    script
}

/// The output of each step that started, in order.
fn outputs(stdout: &str) -> Vec<String> {
    let mark = format!("\n{STEP_MARK} ");
    let mut parts = stdout.split(&mark);
    parts.next();
    parts
        .map(|part| {
            part.split_once('\n')
                .map(|(_, out)| out)
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

/// Whether any process of the group is still alive.
fn group_alive(pgid: u32) -> bool {
    Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

struct Run {
    stdout: String,
    stderr: String,
    success: bool,
    left_running: bool,
}

fn run(script: &str, dir: &Path, ports: &Ports, debug: &Path) -> anyhow::Result<Run> {
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir)
        .env_clear()
        .envs([("PATH", path.as_str()), ("LANG", "C.UTF-8")])
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("EYE_BIND", &ports.api)
        .env("EYE_URL", format!("http://{}", ports.api))
        .env("EYE_DEBUG_DIR", debug)
        .stdout(std::fs::File::create(dir.join("stdout.log"))?)
        .stderr(std::fs::File::create(dir.join("stderr.log"))?)
        .process_group(0)
        .spawn()?;
    let pgid = child.id();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > TIMEOUT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // What the walk-through started gets a moment to finish stopping before it counts as left running.
    let settle = Instant::now();
    while group_alive(pgid) && settle.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let left_running = group_alive(pgid);
    kill_group(pgid);
    let _ = child.wait();
    Ok(Run {
        stdout: std::fs::read_to_string(dir.join("stdout.log"))?,
        stderr: std::fs::read_to_string(dir.join("stderr.log"))?,
        success: status.is_some_and(|s| s.success()),
        left_running,
    })
}

/// What differs between the README and the run, one paragraph per step.
fn differences(steps: &[Step], outputs: &[String], ports: &Ports) -> Vec<String> {
    let mut differences = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let (Some(expected), Some(actual)) = (&step.expected, outputs.get(n)) else {
            continue;
        };
        let expected = ports.apply(expected);
        if !walkthrough::matches(&expected, actual) {
            differences.push(format!(
                "README line {}:\n{}--- the README shows:\n{expected}--- it printed:\n{actual}",
                step.line, step.script
            ));
        }
    }
    differences
}

#[test]
fn the_readme_walkthrough_runs_as_written_and_prints_what_it_shows() -> anyhow::Result<()> {
    let readme = std::fs::read_to_string(repository().join("README.md"))?;
    let steps = walkthrough::steps(&readme).map_err(anyhow::Error::msg)?;
    let debug = debug_dir()?;
    let dir = sandbox(&debug)?;
    let ports = Ports {
        api: format!("127.0.0.1:{}", free_port()?),
        notify: format!("127.0.0.1:{}", free_port()?),
    };
    let run = run(&script(&steps, &ports), dir.path(), &ports, &debug)?;
    let outputs = outputs(&run.stdout);
    let started = outputs.len().min(steps.len());
    let failed_at = steps.get(started.saturating_sub(1)).map_or(0, |s| s.line);
    anyhow::ensure!(
        run.success,
        "the walk-through failed or timed out in the step at README line {failed_at}\n\
         --- its output:\n{}\n--- standard error:\n{}",
        outputs.last().map_or("", String::as_str),
        run.stderr
    );
    let differences = differences(&steps, &outputs, &ports);
    anyhow::ensure!(
        differences.is_empty(),
        "{}\n--- standard error:\n{}",
        differences.join("\n"),
        run.stderr
    );
    anyhow::ensure!(
        !run.left_running,
        "the walk-through left processes running (it must stop what it starts)"
    );
    Ok(())
}

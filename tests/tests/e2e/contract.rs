//! The API contract as other languages meet it: a client generated from `openapi/openapi.json` by a
//! stock generator drives the whole API, and schemathesis checks every answer against the spec. The
//! Python tools are installed by `.ci/test` (see `.ci/deps`) into the virtualenv `EYE_CI_PYTHON` names.

use crate::support::{ADMIN_TOKEN, Backend, TestApp};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Output;
use tokio::process::Command;

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The directory of the CI virtualenv's executables.
fn venv_bin() -> anyhow::Result<PathBuf> {
    let python = std::env::var_os("EYE_CI_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(Path::new(&home).join(".cache/the-eye-venv/bin/python"))
        })
        .context("neither EYE_CI_PYTHON nor HOME is set")?;
    anyhow::ensure!(
        python.exists(),
        "{} is missing: run `bash .ci/test` once (it installs the contract tools)",
        python.display()
    );
    python
        .parent()
        .map(Path::to_path_buf)
        .context("EYE_CI_PYTHON has no directory")
}

/// Runs a command to its end; fails with its output unless it succeeded.
async fn run(command: &mut Command) -> anyhow::Result<Output> {
    let output = command.kill_on_drop(true).output().await?;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    Ok(output)
}

/// Generates the Python client; any warning (a schema the generator could not take) fails.
async fn generate_client(bin: &Path, dir: &Path) -> anyhow::Result<()> {
    let config = dir.join("generator.yaml");
    // No formatting hooks: the generated code is only imported.
    std::fs::write(&config, "post_hooks: []\n")?;
    run(Command::new(bin.join("openapi-python-client"))
        .arg("generate")
        .arg("--path")
        .arg(root().join("openapi/openapi.json"))
        .args(["--meta", "none", "--fail-on-warning", "--config"])
        .arg(&config)
        .arg("--output-path")
        .arg(dir.join("the_eye_client")))
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_generated_python_client_drives_the_whole_api() -> anyhow::Result<()> {
    let bin = venv_bin()?;
    let dir = tempfile::tempdir()?;
    generate_client(&bin, dir.path()).await?;
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let driven = run(Command::new(bin.join("python"))
        .arg(root().join("tests/contract/drive_api.py"))
        .arg(dir.path())
        .arg(&app.base)
        .arg(ADMIN_TOKEN))
    .await;
    app.stop().await?;
    let stdout = String::from_utf8_lossy(&driven?.stdout).into_owned();
    assert!(stdout.contains("contract: "), "{stdout}");
    println!("{stdout}");
    Ok(())
}

#[tokio::test]
async fn every_answer_conforms_to_the_spec() -> anyhow::Result<()> {
    let bin = venv_bin()?;
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let checked = run(Command::new(bin.join("schemathesis"))
        .arg("--config-file")
        .arg(root().join("tests/contract/schemathesis.toml"))
        .arg("run")
        .arg(root().join("openapi/openapi.json"))
        .args(["--url", &app.base])
        .env("EYE_CONTRACT_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("EYE_CONTRACT_INGEST_KEY", &app.ingest_key)
        .env("NO_COLOR", "1"))
    .await;
    app.stop().await?;
    let stdout = String::from_utf8_lossy(&checked?.stdout).into_owned();
    println!("{stdout}");
    Ok(())
}

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
    // No formatting hooks: the generated code is only imported. The generator has no model for NDJSON
    // (the export): it is read as bytes, which is what a client of a stream does anyway.
    std::fs::write(
        &config,
        "post_hooks: []\ncontent_type_overrides:\n  application/x-ndjson: application/octet-stream\n",
    )?;
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
    println!("{stdout}");
    // Every documented operation was called.
    let spec: serde_json::Value = serde_json::from_str(&eye_server::api::spec::spec())?;
    let operations: usize = spec["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, methods)| methods.as_object().map_or(0, serde_json::Map::len))
        .sum();
    assert!(
        stdout.contains(&format!("over {operations} operations")),
        "{stdout}"
    );
    Ok(())
}

#[tokio::test]
async fn every_answer_conforms_to_the_spec() -> anyhow::Result<()> {
    let bin = venv_bin()?;
    // schemathesis keeps a cache in its working directory: not in the repository.
    let scratch = tempfile::tempdir()?;
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let checked = run(Command::new(bin.join("schemathesis"))
        .current_dir(scratch.path())
        .arg("--config-file")
        .arg(root().join("tests/contract/schemathesis.toml"))
        .arg("run")
        .arg(root().join("openapi/openapi.json"))
        .args(["--url", &app.base, "--checks", "all"])
        .env("EYE_CONTRACT_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("EYE_CONTRACT_INGEST_KEY", &app.ingest_key)
        .env("NO_COLOR", "1"))
    .await;
    app.stop().await?;
    let stdout = String::from_utf8_lossy(&checked?.stdout).into_owned();
    println!("{stdout}");
    Ok(())
}

/// One request and the status it must get.
struct Case {
    method: reqwest::Method,
    path: &'static str,
    body: Option<serde_json::Value>,
}

fn get(path: &'static str) -> Case {
    Case {
        method: reqwest::Method::GET,
        path,
        body: None,
    }
}

fn post(path: &'static str, body: serde_json::Value) -> Case {
    Case {
        method: reqwest::Method::POST,
        path,
        body: Some(body),
    }
}

/// What schemathesis found on the first spec (issue 13): each is now a 400 problem naming the field.
async fn found_cases_are_refused(app: &TestApp) -> anyhow::Result<()> {
    use serde_json::json;
    let cases = [
        (get("/v1/errors?category=%00"), "category"),
        (get("/v1/notifications?user_id=%00"), "user_id"),
        (get("/v1/notifications?rule=%00"), "rule"),
        (get("/v1/events?name=%00"), "name"),
        (
            post("/v1/admin/applications", json!({"name": "a\u{0}b"})),
            "",
        ),
        (
            post("/v1/admin/applications", json!({"name": 1.72e156})),
            "",
        ),
        (post("/v1/admin/read-keys", json!({"name": "\u{0}"})), ""),
    ];
    for (case, field) in cases {
        let mut request = app
            .http
            .request(case.method.clone(), format!("{}{}", app.base, case.path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = &case.body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let problem: serde_json::Value = response.json().await?;
        assert_eq!(
            status,
            reqwest::StatusCode::BAD_REQUEST,
            "{} {problem}",
            case.path
        );
        if !field.is_empty() {
            assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn nul_bytes_and_non_string_names_are_refused_with_400() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    let checked = found_cases_are_refused(&app).await;
    app.stop().await?;
    checked
}

#[tokio::test]
async fn an_unsupported_method_is_answered_405_with_the_allowed_ones() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::Embedded).await?;
    let trace = reqwest::Method::from_bytes(b"TRACE")?;
    let answers = [
        (trace, "/v1/events", "GET, POST, HEAD"),
        (reqwest::Method::PUT, "/v1/admin/read-keys/42", "DELETE"),
    ];
    let mut seen = Vec::new();
    for (method, path, _) in &answers {
        let response = app
            .http
            .request(method.clone(), format!("{}{path}", app.base))
            .send()
            .await?;
        let allow = response.headers().get("allow").cloned();
        seen.push((response.status(), allow));
    }
    app.stop().await?;
    for ((status, allow), (_, path, expected)) in seen.into_iter().zip(answers) {
        assert_eq!(status, reqwest::StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(allow.as_ref().and_then(|v| v.to_str().ok()), Some(expected));
    }
    Ok(())
}

#[tokio::test]
async fn swagger_uis_try_it_out_example_is_accepted_as_it_stands() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::Embedded).await?;
    let spec: serde_json::Value = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await?
        .json()
        .await?;
    let example = spec["components"]["schemas"]["EventsIn"]["example"].clone();
    let response = app
        .http
        .post(format!("{}/v1/events", app.base))
        .bearer_auth(&app.ingest_key)
        .json(&example)
        .send()
        .await?;
    let status = response.status();
    app.stop().await?;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{example}");
    Ok(())
}

//! The embedded default: `eye serve` on SQLite files with the SQLite queue, killed with `kill -9`.

use crate::load::{Load, tick_batches};
use crate::procs::{EyeEnv, EyeProcess, Role};
use crate::services::{free_port, temp_dir};
use crate::verify::{Stored, say};
use crate::{BATCH_SIZE, BATCHES, PACE, STRIKE_AT, scenario_slot};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eye_serve_killed_mid_load_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let _slot = scenario_slot().await?;
    let started = Instant::now();
    let dir = temp_dir("eye-fault-embedded-")?;
    let database = dir.path().join("eye.db");
    let env = EyeEnv::new(
        &format!("sqlite://{}?mode=rwc", database.display()),
        None,
        dir.path(),
    );
    env.run(&["migrate"]).await?;
    let key = env.create_application("fault").await?;
    let mut serve = EyeProcess::start(Role::Serve, &env, free_port()?).await?;

    let mut load = Load::start(&serve.base, &key, tick_batches(BATCHES, BATCH_SIZE)?, PACE)?;
    load.wait_for_acknowledged(STRIKE_AT).await?;
    serve.kill().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    serve.start_again().await?;
    let report = load.finish().await?;

    let stored = Stored::connect(&format!("sqlite://{}?mode=ro", database.display())).await?;
    let waited = stored.settle(&report.acknowledged).await;
    say(&format!(
        "fault embedded: drained {:.1}s after the load ended",
        waited.as_secs_f64()
    ));
    let outcome = stored
        .outcome("eye serve (embedded) kill -9", report)
        .await?;
    outcome.conclude(started.elapsed(), &[serve.log()])
}

//! Unknown read keys (`eyr_…`) are remembered like unknown ingest keys, so a flood of them does not reach
//! the database; live read keys are still looked up every time, so a revocation takes effect at once.

use super::Fixture;
use crate::support::{ADMIN_TOKEN, Backend, seed_events};
use reqwest::StatusCode;

/// `eye_key_lookups_total{key="…"}`: key verifications that reached the database (0 before the first).
async fn lookups(f: &Fixture, kind: &str) -> anyhow::Result<f64> {
    let url = format!("{}/metrics", f.app.base);
    let text = f.app.http.get(url).send().await?.text().await?;
    let prefix = format!("eye_key_lookups_total{{key=\"{kind}\"}} ");
    let line = text.lines().find_map(|line| line.strip_prefix(&prefix));
    Ok(line.map(str::parse).transpose()?.unwrap_or(0.0))
}

async fn read_key_cache(backend: Backend) -> anyhow::Result<()> {
    let f = Fixture::start(backend).await?;
    let unknown = format!("eyr_{}", "x".repeat(43));
    let before = lookups(&f, "read").await?;
    for _ in 0..5 {
        let response = f.get("/v1/events", &unknown).await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let sent = f.post_as(&unknown, seed_events()).await?;
        assert_eq!(sent.status(), StatusCode::UNAUTHORIZED, "on ingest too");
    }
    assert_eq!(
        lookups(&f, "read").await? - before,
        1.0,
        "an unknown read key reaches the database once"
    );

    let (id, live) = f.read_key(None).await?;
    let before = lookups(&f, "read").await?;
    for _ in 0..3 {
        assert_eq!(f.get("/v1/events", &live).await?.status(), StatusCode::OK);
    }
    assert_eq!(
        lookups(&f, "read").await? - before,
        3.0,
        "live keys are not cached"
    );
    let revoke = format!("{}/v1/admin/read-keys/{id}", f.app.base);
    let revoked = f
        .app
        .http
        .delete(revoke)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    for _ in 0..3 {
        let response = f.get("/v1/events", &live).await?;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "revoked at once"
        );
    }
    assert_eq!(lookups(&f, "read").await? - before, 4.0);

    let before = lookups(&f, "ingest").await?;
    for _ in 0..3 {
        let response = f.get("/v1/events", "eye_unknown").await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(lookups(&f, "ingest").await? - before, 1.0);
    f.app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_read_keys_reach_the_database_once_and_live_ones_every_time_on_postgres()
-> anyhow::Result<()> {
    read_key_cache(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_read_keys_reach_the_database_once_and_live_ones_every_time_embedded()
-> anyhow::Result<()> {
    read_key_cache(Backend::Embedded).await
}

//! Who may read what: read keys limited to some applications, 403 for the wrong kind of key, 400s.

use super::Fixture;
use crate::support::{ADMIN_TOKEN, Backend};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn isolation(backend: Backend) -> anyhow::Result<()> {
    let f = Fixture::start(backend).await?;
    let (web, other) = (f.app.application_id.clone(), f.other_id.clone());
    let (web_key_id, web_only) = f.read_key(Some(vec![&web])).await?;
    for path in [
        "/v1/events",
        "/v1/events?session_id=s1",
        "/v1/events?user_id=u1",
        "/v1/sessions/s1/events",
    ] {
        let labels = f.labels(path, &web_only).await?;
        assert!(
            labels.iter().all(|l| l.starts_with('a')),
            "{path}: {labels:?}"
        );
    }
    assert_eq!(
        f.labels("/v1/events?name=pageview", &web_only)
            .await?
            .join(" "),
        "a1 a4 a5"
    );
    let sessions = f.read("/v1/sessions", &web_only).await?;
    let apps: Vec<&Value> = sessions["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| &s["application_id"])
        .collect();
    assert!(
        apps.len() == 2 && apps.iter().all(|a| **a == json!(web)),
        "{sessions}"
    );
    let range = "from=2021-01-01T00:00:00Z&to=2021-01-02T00:00:00Z";
    let stats = f
        .read(
            &format!("/v1/stats/events?group_by=application&interval=day&{range}"),
            &web_only,
        )
        .await?;
    assert_eq!(
        stats["buckets"],
        json!([{"start": stats["buckets"][0]["start"], "group": web, "count": 5}])
    );
    for path in [
        format!("/v1/events?application_id={other}"),
        format!("/v1/sessions?application_id={other}"),
        format!("/v1/sessions/s1/events?application_id={other}"),
        format!("/v1/stats/events?application_id={other}&{range}"),
    ] {
        assert_eq!(
            f.get(&path, &web_only).await?.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let (_, everything) = f.read_key(None).await?;
    assert_eq!(
        f.labels("/v1/events?session_id=s1", &everything)
            .await?
            .join(" "),
        "a1 a2 b1 a3"
    );

    let revoke = format!("{}/v1/admin/read-keys/{web_key_id}", f.app.base);
    let revoked = f
        .app
        .http
        .delete(&revoke)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        f.get("/v1/events", &web_only).await?.status(),
        StatusCode::UNAUTHORIZED
    );
    let again = f
        .app
        .http
        .delete(&revoke)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    f.app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_key_limited_to_one_application_never_sees_another_on_postgres() -> anyhow::Result<()>
{
    isolation(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_key_limited_to_one_application_never_sees_another_embedded() -> anyhow::Result<()> {
    isolation(Backend::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_the_wrong_kind_are_forbidden_and_unknown_ones_unauthorized() -> anyhow::Result<()>
{
    let f = Fixture::start(Backend::PostgresRedis).await?;
    let (_, reader) = f.read_key(None).await?;
    let ingest_key = f.app.ingest_key.clone();
    assert_eq!(
        f.get("/v1/events", &ingest_key).await?.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.get("/v1/sessions", &ingest_key).await?.status(),
        StatusCode::FORBIDDEN
    );
    let batch = json!([super::labelled("x", "s", ("c", "n"), "u", "09:00:00")]);
    assert_eq!(
        f.post_as(&reader, batch.clone()).await?.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        f.post_as("eyr_unknown", batch).await?.status(),
        StatusCode::UNAUTHORIZED
    );
    for token in ["eyr_unknown", "eye_unknown", "nonsense"] {
        assert_eq!(
            f.get("/v1/events", token).await?.status(),
            StatusCode::UNAUTHORIZED,
            "{token}"
        );
    }
    let missing = f
        .app
        .http
        .get(format!("{}/v1/events", f.app.base))
        .send()
        .await?;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let url = format!("{}/v1/admin/read-keys", f.app.base);
    let by_reader = f
        .app
        .http
        .post(&url)
        .bearer_auth(&reader)
        .json(&json!({"name": "x"}))
        .send()
        .await?;
    assert_eq!(by_reader.status(), StatusCode::FORBIDDEN);
    let unknown_app = json!({"name": "x", "application_ids": [uuid::Uuid::now_v7()]});
    let refused = f
        .app
        .http
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&unknown_app)
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert_eq!(f.app.count("SELECT COUNT(*) FROM events").await?, 6);
    f.app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_parameter_is_a_400_naming_it() -> anyhow::Result<()> {
    let f = Fixture::start(Backend::Embedded).await?;
    let range = "from=2021-01-01T00:00:00Z&to=2021-01-02T00:00:00Z";
    let cases = [
        ("/v1/events?from=yesterday".to_owned(), "from"),
        ("/v1/events?to=2021-01-01".into(), "to"),
        (
            "/v1/events?from=2021-01-02T00:00:00Z&to=2021-01-01T00:00:00Z".into(),
            "from",
        ),
        (
            "/v1/events?from=2021-01-01T00:00:00Z&to=2021-01-01T00:00:00Z".into(),
            "from",
        ),
        ("/v1/events?limit=0".into(), "limit"),
        ("/v1/events?limit=1001".into(), "limit"),
        ("/v1/events?limit=ten".into(), "limit"),
        ("/v1/events?cursor=not-a-cursor".into(), "cursor"),
        ("/v1/events?application_id=web".into(), "application_id"),
        ("/v1/sessions?cursor=ZXwyMDIxfDE".into(), "cursor"),
        ("/v1/sessions?limit=-1".into(), "limit"),
        ("/v1/sessions/s1/events?limit=5000".into(), "limit"),
        ("/v1/stats/events?to=2021-01-02T00:00:00Z".into(), "from"),
        (
            format!("/v1/stats/events?group_by=colour&{range}"),
            "group_by",
        ),
        (
            format!("/v1/stats/events?interval=week&{range}"),
            "interval",
        ),
        (
            "/v1/stats/events?interval=minute&from=2021-01-01T00:00:00Z&to=2022-01-01T00:00:00Z"
                .into(),
            "interval",
        ),
    ];
    for (path, field) in cases {
        let response = f.get(&path, ADMIN_TOKEN).await?;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let problem: Value = response.json().await?;
        assert_eq!(problem["errors"][0]["field"], field, "{path}: {problem}");
        assert!(problem["detail"].is_string() && problem["type"].is_string());
    }
    f.app.stop().await
}

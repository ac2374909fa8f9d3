//! The checked-in spec matches the code, and the service shows it at `/docs`.

#[test]
fn the_checked_in_openapi_spec_is_current() {
    let generated = eye_server::api::spec::spec();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        generated.trim() == checked_in.trim(),
        "openapi/openapi.json is stale: run `cargo run -p eye-server -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn every_operation_is_documented_with_a_problem_response() {
    let spec: serde_json::Value =
        serde_json::from_str(&eye_server::api::spec::spec()).unwrap_or_default();
    let ingest = &spec["paths"]["/v1/events"]["post"];
    assert!(ingest["responses"]["202"].is_object());
    assert!(ingest["responses"]["default"]["content"]["application/problem+json"].is_object());
    assert!(spec["components"]["schemas"]["EventIn"].is_object());
}

/// The service's address leads to Swagger UI, whose page (built for each request) embeds the spec served
/// at `/openapi.json`, the bundle with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_served_with_the_published_spec() -> anyhow::Result<()> {
    use crate::support::{Backend, TestApp};
    let app = TestApp::start(Backend::Embedded).await?;
    let page = app.http.get(format!("{}/", app.base)).send().await?;
    assert_eq!(
        page.status(),
        reqwest::StatusCode::OK,
        "/ redirects to /docs"
    );
    assert!(page.url().path().starts_with("/docs"), "{}", page.url());
    let html = page.text().await?;
    assert!(html.contains("SwaggerUIBundle"), "the Swagger UI bundle");
    assert!(
        html.contains(r#""additionalProperties": false"#),
        "the published spec, not poem-openapi's own"
    );
    for _ in 0..2 {
        let again = app.http.get(format!("{}/docs", app.base)).send().await?;
        assert_eq!(again.text().await?, html, "the same page every time");
    }
    app.stop().await
}

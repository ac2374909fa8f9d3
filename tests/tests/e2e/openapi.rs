//! The checked-in spec matches the code.

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

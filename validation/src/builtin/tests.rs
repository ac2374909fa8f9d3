use std::collections::HashSet;

use serde_json::{Value, json};

use super::*;
use crate::registry::Lookup;

fn schema_for(category: &str, name: &str) -> CompiledSchema {
    let registry = builtin_registry().expect("built-in schemas compile");
    match registry.lookup(&EventTypeKey::new(category, name)) {
        Lookup::Known { schema, .. } => schema.clone(),
        Lookup::Unknown => panic!("no built-in schema for {category} / {name}"),
    }
}

fn pointers(category: &str, name: &str, data: &Value) -> Vec<String> {
    match schema_for(category, name).validate(data) {
        Ok(()) => Vec::new(),
        Err(violations) => violations.into_iter().map(|v| v.pointer).collect(),
    }
}

#[test]
fn every_built_in_schema_compiles_and_is_registered_at_version_1() {
    let registry = builtin_registry().expect("built-in schemas compile");
    assert_eq!(registry.len(), BUILTIN_SCHEMAS.len());
    for builtin in BUILTIN_SCHEMAS {
        let version = match registry.lookup(&builtin.key()) {
            Lookup::Known { version, .. } => Some(version),
            Lookup::Unknown => None,
        };
        assert_eq!(version, Some(BUILTIN_SCHEMA_VERSION), "{}", builtin.key());
    }
}

#[test]
fn each_built_in_schema_file_declares_draft_2020_12_and_its_event_type_as_title() {
    let mut sources = HashSet::new();
    for builtin in BUILTIN_SCHEMAS {
        let document = builtin.document().expect("built-in schema is JSON");
        assert_eq!(document["$schema"], crate::schema::DRAFT_2020_12_URI);
        assert_eq!(document["title"], builtin.key().to_string());
        assert!(
            sources.insert(builtin.source),
            "{} embeds a file twice",
            builtin.key()
        );
    }
}

#[test]
fn each_seed_sample_event_data_validates_against_its_built_in_schema() {
    let samples = [
        (
            "page interaction",
            "pageview",
            json!({"host": "www.ca.com", "path": "/"}),
        ),
        (
            "page interaction",
            "cta click",
            json!({"host": "www.ca.com", "path": "/", "element": "chat bubble"}),
        ),
        (
            "form interaction",
            "submit",
            json!({"host": "www.ca.com", "path": "/", "form": {"first_name": "John", "last_name": "Doe"}}),
        ),
        ("fitness", "app_launch", json!({})),
        (
            "fitness",
            "training_program_started",
            json!({"training_program_id": "2352", "training_program_title": "7 Minutes of HIIT Training"}),
        ),
        (
            "fitness",
            "training_program_started",
            json!({"training_program_id": "2352"}),
        ),
        (
            "fitness",
            "training_program_cancelled",
            json!({"training_program_id": "2352"}),
        ),
        (
            "fitness",
            "training_program_finished",
            json!({"training_program_id": "2352"}),
        ),
    ];
    for (category, name, data) in samples {
        assert_eq!(
            schema_for(category, name).validate(&data),
            Ok(()),
            "{category} / {name}"
        );
    }
}

#[test]
fn invalid_payloads_are_reported_at_the_offending_field() {
    let cases = [
        (
            "page interaction",
            "pageview",
            json!({"path": "/"}),
            vec![""],
        ),
        (
            "page interaction",
            "pageview",
            json!({"host": "www.ca.com", "path": "pricing"}),
            vec!["/path"],
        ),
        (
            "page interaction",
            "pageview",
            json!({"host": 42, "path": 7}),
            vec!["/host", "/path"],
        ),
        (
            "page interaction",
            "cta click",
            json!({"host": "ca.com", "path": "/"}),
            vec![""],
        ),
        (
            "page interaction",
            "cta click",
            json!({"host": "ca.com", "path": "/", "element": ""}),
            vec!["/element"],
        ),
        (
            "form interaction",
            "submit",
            json!({"host": "ca.com", "path": "/", "form": "John"}),
            vec!["/form"],
        ),
        (
            "form interaction",
            "submit",
            json!({"host": "ca.com", "path": "/"}),
            vec![""],
        ),
        (
            "fitness",
            "app_launch",
            json!(["not", "an", "object"]),
            vec![""],
        ),
        (
            "fitness",
            "training_program_started",
            json!({"training_program_id": 2352}),
            vec!["/training_program_id"],
        ),
        (
            "fitness",
            "training_program_started",
            json!({"training_program_id": "2352", "training_program_title": 7}),
            vec!["/training_program_title"],
        ),
        ("fitness", "training_program_finished", json!({}), vec![""]),
        (
            "fitness",
            "training_program_cancelled",
            json!({"training_program_id": ""}),
            vec!["/training_program_id"],
        ),
    ];
    for (category, name, data, expected) in cases {
        assert_eq!(
            pointers(category, name, &data),
            expected,
            "{category} / {name}: {data}"
        );
    }
}

#[test]
fn a_missing_host_is_reported_on_the_data_itself_naming_the_property() {
    let violations = schema_for("page interaction", "pageview")
        .validate(&json!({"path": "/"}))
        .expect_err("host is required");
    assert_eq!(violations[0].pointer, "");
    assert_eq!(violations[0].message, "\"host\" is a required property");
}

#[test]
fn extra_properties_are_allowed_in_open_ended_payloads() {
    let data =
        json!({"host": "www.ca.com", "path": "/", "referrer": "https://x.org", "ab": {"v": 2}});
    assert_eq!(
        pointers("page interaction", "pageview", &data),
        Vec::<String>::new()
    );
}

#[test]
fn host_must_look_like_a_hostname_with_an_optional_port() {
    let cases = [
        ("www.ca.com", true),
        ("localhost", true),
        ("localhost:8080", true),
        ("127.0.0.1", true),
        ("xn--bcher-kva.example", true),
        ("", false),
        ("www ca.com", false),
        ("http://www.ca.com", false),
        ("www.ca.com/", false),
        ("-ca.com", false),
        ("ca..com", false),
        ("ca.com:", false),
    ];
    for (host, accepted) in cases {
        let data = json!({"host": host, "path": "/"});
        let found = pointers("page interaction", "pageview", &data);
        assert_eq!(found.is_empty(), accepted, "host {host:?}: {found:?}");
    }
}

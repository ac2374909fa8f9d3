//! Compiling JSON Schemas (draft 2020-12) and validating event data against them.

use std::fmt;
use std::sync::Arc;

use jsonschema::{Draft, ValidationError, Validator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::reference;

/// The only JSON Schema dialect accepted, as written in a schema's `$schema` keyword.
pub const DRAFT_2020_12_URI: &str = "https://json-schema.org/draft/2020-12/schema";

/// At most this many violations are reported for one payload; the rest are dropped.
pub const MAX_VIOLATIONS: usize = 20;

/// A reason why a payload does not conform to its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// JSON pointer into the event's data (`""` is the data itself, `"/form/first_name"` a nested field).
    pub pointer: String,
    /// What is wrong there, without echoing the offending value (`"host" is a required property`).
    pub message: String,
}

/// Why a JSON Schema could not be compiled; the admin API answers 400 with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schema at `{pointer}`: {message}")]
pub struct InvalidSchema {
    /// JSON pointer inside the schema document to the part at fault (`""` for the whole schema).
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

/// A JSON Schema, checked against the draft 2020-12 meta-schema and compiled for fast validation.
///
/// Cheap to clone: the compiled form is shared.
#[derive(Clone)]
pub struct CompiledSchema {
    validator: Arc<Validator>,
}

impl CompiledSchema {
    /// Compiles `schema` as JSON Schema draft 2020-12.
    ///
    /// A schema without `$schema` is read as draft 2020-12; one naming another dialect is refused,
    /// and so is any `$ref` that would need fetching a document (no network or file access, even
    /// if another crate enables jsonschema's resolver features). As draft 2020-12 specifies,
    /// `format` is an annotation, not checked; use `pattern` to constrain strings.
    ///
    /// # Errors
    /// [`InvalidSchema`] naming where the schema is wrong and why.
    pub fn compile(schema: &Value) -> Result<Self, InvalidSchema> {
        ensure_draft_2020_12(schema)?;
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .offline()
            .build(schema)
            .map_err(|error| invalid_schema_from(&error, schema))?;
        Ok(Self {
            validator: Arc::new(validator),
        })
    }

    /// Checks `data` against the schema.
    ///
    /// # Errors
    /// The violations found, in the validator's order, at most [`MAX_VIOLATIONS`].
    pub fn validate(&self, data: &Value) -> Result<(), Vec<Violation>> {
        let violations: Vec<Violation> = self
            .validator
            .iter_errors(data)
            .take(MAX_VIOLATIONS)
            .map(|error| violation_from(&error))
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }
}

impl fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledSchema").finish_non_exhaustive()
    }
}

// Meta-schema errors point into the schema already; reference errors need locating.
fn invalid_schema_from(error: &ValidationError<'_>, schema: &Value) -> InvalidSchema {
    let (pointer, message) = reference::describe(error, schema).unwrap_or_else(|| {
        let pointer = error.instance_path().as_str().to_owned();
        (pointer, error.to_string())
    });
    InvalidSchema { pointer, message }
}

// Messages are masked: payloads may carry personal data (form fields) that must not leak
// into error logs, and the offending value is in the stored payload anyway.
fn violation_from(error: &ValidationError<'_>) -> Violation {
    Violation {
        pointer: error.instance_path().as_str().to_owned(),
        message: error.masked().to_string(),
    }
}

// With an explicit draft, jsonschema ignores `$schema`; refuse other dialects instead of
// silently reading them as 2020-12.
fn ensure_draft_2020_12(schema: &Value) -> Result<(), InvalidSchema> {
    let Some(declared) = schema.get("$schema").and_then(Value::as_str) else {
        return Ok(());
    };
    if declared.trim_end_matches('#') == DRAFT_2020_12_URI {
        return Ok(());
    }
    Err(InvalidSchema {
        pointer: "/$schema".to_owned(),
        message: format!("unsupported dialect {declared:?}: only {DRAFT_2020_12_URI} is accepted"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page_schema() -> CompiledSchema {
        let schema = json!({
            "type": "object",
            "required": ["host", "path"],
            "properties": {
                "host": {"type": "string"},
                "path": {"type": "string", "pattern": "^/"},
                "form": {"type": "object"}
            }
        });
        CompiledSchema::compile(&schema).expect("schema should compile")
    }

    fn violation(pointer: &str, message: &str) -> Violation {
        Violation {
            pointer: pointer.to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn conforming_data_with_extra_properties_is_valid() {
        let data = json!({"host": "www.ca.com", "path": "/", "utm_source": "mail"});
        assert_eq!(page_schema().validate(&data), Ok(()));
    }

    #[test]
    fn violations_point_into_the_data_and_do_not_echo_values() {
        let cases = [
            (
                json!({"path": "/"}),
                vec![violation("", "\"host\" is a required property")],
            ),
            (
                json!({"host": "a", "path": "/", "form": "John"}),
                vec![violation("/form", "value is not of type \"object\"")],
            ),
            (
                json!({"host": "a", "path": "pricing"}),
                vec![violation("/path", "value does not match \"^/\"")],
            ),
            (
                json!("not an object"),
                vec![violation("", "value is not of type \"object\"")],
            ),
        ];
        for (data, expected) in cases {
            assert_eq!(page_schema().validate(&data), Err(expected), "data: {data}");
        }
    }

    #[test]
    fn all_violations_are_collected_up_to_the_bound() {
        let properties: serde_json::Map<String, Value> = (0..MAX_VIOLATIONS + 5)
            .map(|i| (format!("p{i}"), json!({"type": "string"})))
            .collect();
        let data: serde_json::Map<String, Value> = properties
            .keys()
            .map(|key| (key.clone(), json!(1)))
            .collect();
        let schema = CompiledSchema::compile(&json!({"properties": properties}))
            .expect("schema should compile");
        let violations = schema.validate(&Value::Object(data)).expect_err("invalid");
        assert_eq!(violations.len(), MAX_VIOLATIONS);
    }

    #[test]
    fn invalid_schemas_are_refused_naming_where_and_why() {
        let cases = [
            (
                json!({"type": "strin"}),
                "/type",
                "\"strin\" is not valid under any of the schemas listed in the 'anyOf' keyword",
            ),
            (
                json!({"required": "host"}),
                "/required",
                "\"host\" is not of type \"array\"",
            ),
            (
                json!({"properties": {"a": {"minLength": -1}}}),
                "/properties/a/minLength",
                "-1 is less than the minimum of 0",
            ),
            (
                json!({"pattern": "("}),
                "/pattern",
                "\"(\" is not a \"regex\"",
            ),
        ];
        for (schema, pointer, message) in cases {
            let expected = InvalidSchema {
                pointer: pointer.to_owned(),
                message: message.to_owned(),
            };
            assert_eq!(CompiledSchema::compile(&schema).map(|_| ()), Err(expected));
        }
    }

    #[test]
    fn schemas_needing_remote_references_are_refused_at_the_reference() {
        let cases = [
            (
                json!({"$ref": "https://example.com/x.json"}),
                "/$ref",
                "https://example.com/x.json",
            ),
            (
                json!({"properties": {"a/b": {"$ref": "other.json#/x"}}}),
                "/properties/a~1b/$ref",
                "other.json",
            ),
        ];
        for (schema, pointer, uri) in cases {
            let error = CompiledSchema::compile(&schema).expect_err("remote ref");
            assert_eq!(error.pointer, pointer);
            assert!(error.message.contains(uri), "message: {}", error.message);
            assert!(
                error.message.contains("outside this schema"),
                "message: {}",
                error.message
            );
        }
    }

    #[test]
    fn a_reference_to_a_missing_definition_is_refused_at_the_reference() {
        let schema = json!({"$defs": {}, "properties": {"a": {"$ref": "#/$defs/missing"}}});
        let error = CompiledSchema::compile(&schema).expect_err("dangling ref");
        assert_eq!(error.pointer, "/properties/a/$ref");
    }

    #[test]
    fn local_references_are_resolved() {
        let schema = json!({
            "$defs": {"slug": {"type": "string"}},
            "properties": {"a": {"$ref": "#/$defs/slug"}}
        });
        let compiled = CompiledSchema::compile(&schema).expect("local ref compiles");
        assert_eq!(compiled.validate(&json!({"a": "x"})), Ok(()));
        assert!(compiled.validate(&json!({"a": 1})).is_err());
    }

    #[test]
    fn only_the_draft_2020_12_dialect_is_accepted() {
        let cases = [
            (json!({}), true),
            (json!({"$schema": DRAFT_2020_12_URI}), true),
            (json!({"$schema": format!("{DRAFT_2020_12_URI}#")}), true),
            (
                json!({"$schema": "http://json-schema.org/draft-07/schema#"}),
                false,
            ),
        ];
        for (schema, accepted) in cases {
            let result = CompiledSchema::compile(&schema);
            assert_eq!(result.is_ok(), accepted, "schema: {schema}");
            if let Err(error) = result {
                assert_eq!(error.pointer, "/$schema");
            }
        }
    }

    #[test]
    fn draft_2020_12_keywords_are_enforced_without_declaring_it() {
        let schema = json!({"prefixItems": [{"type": "string"}]});
        let compiled = CompiledSchema::compile(&schema).expect("schema should compile");
        let violations = compiled
            .validate(&json!([1]))
            .expect_err("prefixItems applies");
        assert_eq!(violations[0].pointer, "/0");
    }
}

//! The schemas The Eye ships with, one file each under `validation/schemas/`, embedded at build time.
//!
//! Choices, applied to every built-in schema:
//! - Payloads are open-ended analytics data: extra properties are allowed (no
//!   `additionalProperties: false`), so an application can send more than the schema names
//!   without being rejected; the properties a schema does name are typed strictly.
//! - `host` is hostname-like: dot-separated labels of letters, digits and inner hyphens, with an
//!   optional `:port` as browsers report `location.host` (IPv6 literals are not accepted).
//!   A `pattern` rather than `format: hostname`, because draft 2020-12 treats `format` as an
//!   annotation only.
//! - `path` starts with `/`; `form` is an object whose fields are free-form.
//! - Identifiers such as `training_program_id` are non-empty strings, as the fitness app sends them.
//! - Lengths are capped so a single event cannot carry unbounded text in a named field.

use serde_json::Value;

use crate::key::EventTypeKey;
use crate::registry::{RegisteredSchema, SchemaRegistry};
use crate::schema::{CompiledSchema, InvalidSchema};

/// The version under which every built-in schema is registered.
pub const BUILTIN_SCHEMA_VERSION: u32 = 1;

/// A schema embedded in the binary for one event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinSchema {
    /// Event category, e.g. `page interaction`.
    pub category: &'static str,
    /// Event name within the category, e.g. `pageview`.
    pub name: &'static str,
    /// The JSON Schema document, as written in its file.
    pub source: &'static str,
}

macro_rules! builtin {
    ($category:literal, $name:literal, $file:literal) => {
        BuiltinSchema {
            category: $category,
            name: $name,
            source: include_str!(concat!("../schemas/", $file)),
        }
    };
}

/// Every built-in schema: the one place listing them with their event types.
pub const BUILTIN_SCHEMAS: &[BuiltinSchema] = &[
    builtin!(
        "page interaction",
        "pageview",
        "page-interaction.pageview.json"
    ),
    builtin!(
        "page interaction",
        "cta click",
        "page-interaction.cta-click.json"
    ),
    builtin!("form interaction", "submit", "form-interaction.submit.json"),
    builtin!("fitness", "app_launch", "fitness.app_launch.json"),
    builtin!(
        "fitness",
        "training_program_started",
        "fitness.training_program_started.json"
    ),
    builtin!(
        "fitness",
        "training_program_finished",
        "fitness.training_program_finished.json"
    ),
    builtin!(
        "fitness",
        "training_program_cancelled",
        "fitness.training_program_cancelled.json"
    ),
];

/// A built-in schema that does not parse or compile: a defect of this crate, caught by its tests.
#[derive(Debug, thiserror::Error)]
pub enum BuiltinSchemaError {
    /// The embedded file is not JSON.
    #[error("built-in schema for {key} is not JSON")]
    NotJson {
        /// The event type whose schema is broken.
        key: EventTypeKey,
        /// The parse failure.
        source: serde_json::Error,
    },
    /// The embedded file is not a valid draft 2020-12 schema.
    #[error("built-in schema for {key} is invalid")]
    Invalid {
        /// The event type whose schema is broken.
        key: EventTypeKey,
        /// What is wrong with it.
        source: InvalidSchema,
    },
}

impl BuiltinSchema {
    /// The event type this schema is for.
    pub fn key(&self) -> EventTypeKey {
        EventTypeKey::new(self.category, self.name)
    }

    /// The schema document, e.g. to store it as version [`BUILTIN_SCHEMA_VERSION`].
    ///
    /// # Errors
    /// [`BuiltinSchemaError::NotJson`] if the embedded file does not parse.
    pub fn document(&self) -> Result<Value, BuiltinSchemaError> {
        serde_json::from_str(self.source).map_err(|source| BuiltinSchemaError::NotJson {
            key: self.key(),
            source,
        })
    }

    /// The compiled schema.
    ///
    /// # Errors
    /// [`BuiltinSchemaError`] if the embedded file does not parse or compile.
    pub fn compile(&self) -> Result<CompiledSchema, BuiltinSchemaError> {
        CompiledSchema::compile(&self.document()?).map_err(|source| BuiltinSchemaError::Invalid {
            key: self.key(),
            source,
        })
    }
}

/// A registry of every built-in schema, each at [`BUILTIN_SCHEMA_VERSION`].
///
/// # Errors
/// [`BuiltinSchemaError`] for the first built-in schema that does not parse or compile.
pub fn builtin_registry() -> Result<SchemaRegistry, BuiltinSchemaError> {
    BUILTIN_SCHEMAS
        .iter()
        .map(|builtin| {
            let registered = RegisteredSchema {
                version: BUILTIN_SCHEMA_VERSION,
                schema: builtin.compile()?,
            };
            Ok((builtin.key(), registered))
        })
        .collect()
}

#[cfg(test)]
mod tests;

//! The event-type registry (admin token): publishing, listing and retiring payload schemas.

use crate::api::auth::AdminToken;
use crate::api::params::{Documentation, Documented, Param, Required, Text, storable_object};
use crate::api::problem::{ApiError, FieldError};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use eye_domain::{Category, EventName, EventType};
use eye_store::Published;
use eye_validation::CompiledSchema;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::registry::MetaSchema;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use serde_json::Value;

#[derive(Tags)]
enum RegistryTags {
    /// Event types and their payload schemas (admin token).
    EventTypes,
}

/// The registry endpoints.
pub struct EventTypesApi;

/// A published schema version.
#[derive(Debug, Object)]
pub struct SchemaVersion {
    /// The type's category.
    pub category: String,
    /// The type's name.
    pub name: String,
    /// The version now current.
    pub version: u32,
}

/// An event type with its current schema.
#[derive(Debug, Object)]
pub struct EventTypeOut {
    /// The type's category.
    pub category: String,
    /// The type's name.
    pub name: String,
    /// The current version.
    pub version: u32,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// The JSON Schema (draft 2020-12) of the events' `data`.
    pub schema: Value,
}

/// A JSON Schema (draft 2020-12) object for the `data` of one event type.
pub struct JsonSchemaObject;

impl Documentation for JsonSchemaObject {
    fn schema() -> MetaSchema {
        MetaSchema {
            description: Some("A JSON Schema (draft 2020-12) object for the events' `data`."),
            example: Some(pageview_schema()),
            ..MetaSchema::new("object")
        }
    }

    fn check(value: &Value) -> Result<(), String> {
        storable_object(value)
    }
}

/// The body of `PUT /v1/admin/event-types/{category}/{name}`.
type SchemaIn = Documented<JsonSchemaObject>;

/// The seeds' `page interaction / pageview` payload: a host and a path.
fn pageview_schema() -> Value {
    serde_json::json!({
        "type": "object",
        "required": ["host", "path"],
        "properties": {
            "host": {"type": "string", "minLength": 1},
            "path": {"type": "string", "pattern": "^/"}
        },
        "additionalProperties": false
    })
}

#[derive(ApiResponse)]
enum PublishResponse {
    /// The type is new: its first version.
    #[oai(status = 201)]
    Created(Json<SchemaVersion>),
    /// A new version of an existing type.
    #[oai(status = 200)]
    NewVersion(Json<SchemaVersion>),
}

#[derive(ApiResponse)]
enum RetireResponse {
    /// Retired: its events are judged as of an unknown type from now on.
    #[oai(status = 204)]
    Retired,
}

#[derive(ApiResponse)]
enum EventTypeList {
    /// The live event types, each with its current schema.
    #[oai(status = 200)]
    Live(Json<Vec<EventTypeOut>>),
}

/// A category or name in the path, parsed by `event_type` so that a bad one is named. (Spelled out as
/// `Path<Param<Text64>>` in the handlers: poem-openapi recognises path parameters by the `Path` name.)
type Text64 = Required<Text<64>>;

fn event_type(category: Param<Text64>, name: Param<Text64>) -> Result<EventType, ApiError> {
    let category = Category::parse(category.into_text().unwrap_or_default())
        .map_err(|e| FieldError::new("category", e.to_string()));
    let name = EventName::parse(name.into_text().unwrap_or_default())
        .map_err(|e| FieldError::new("name", e.to_string()));
    match (category, name) {
        (Ok(category), Ok(name)) => Ok(EventType { category, name }),
        (category, name) => Err(ApiError::Invalid(
            [category.err(), name.err()].into_iter().flatten().collect(),
        )),
    }
}

#[OpenApi(tag = "RegistryTags::EventTypes")]
impl EventTypesApi {
    /// Publish a schema for an event type
    ///
    /// The body is a JSON Schema (draft 2020-12) object for the `data` of events of this type (400 when it
    /// does not compile, or holds a NUL character). Workers pick up the new version within a second,
    /// without a restart; events record the version they passed.
    #[oai(
        path = "/v1/admin/event-types/:category/:name",
        method = "put",
        operation_id = "publish_schema"
    )]
    async fn publish(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        category: Path<Param<Text64>>,
        name: Path<Param<Text64>>,
        schema: Json<SchemaIn>,
    ) -> Result<PublishResponse, ApiError> {
        let event_type = event_type(category.0, name.0)?;
        let schema = Json(schema.0.into_value());
        CompiledSchema::compile(&schema.0).map_err(|err| {
            ApiError::Invalid(vec![FieldError::new(
                format!("schema{}", err.pointer),
                err.message,
            )])
        })?;
        let published = state
            .store()
            .publish_schema(&event_type, schema.0)
            .await
            .map_err(ApiError::internal)?;
        let out = |version| SchemaVersion {
            category: event_type.category.to_string(),
            name: event_type.name.to_string(),
            version,
        };
        Ok(match published {
            Published::NewType(version) => PublishResponse::Created(Json(out(version))),
            Published::NewVersion(version) => PublishResponse::NewVersion(Json(out(version))),
        })
    }

    /// List the live event types with their current schemas
    #[oai(
        path = "/v1/admin/event-types",
        method = "get",
        operation_id = "list_event_types"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
    ) -> Result<EventTypeList, ApiError> {
        let schemas = state
            .store()
            .current_schemas()
            .await
            .map_err(ApiError::internal)?;
        Ok(EventTypeList::Live(Json(
            schemas
                .into_iter()
                .map(|s| EventTypeOut {
                    category: s.event_type.category.to_string(),
                    name: s.event_type.name.to_string(),
                    version: s.version,
                    published_at: s.published_at,
                    schema: s.schema,
                })
                .collect(),
        )))
    }

    /// Retire an event type
    #[oai(
        path = "/v1/admin/event-types/:category/:name",
        method = "delete",
        operation_id = "retire_event_type"
    )]
    async fn retire(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        category: Path<Param<Text64>>,
        name: Path<Param<Text64>>,
    ) -> Result<RetireResponse, ApiError> {
        let event_type = event_type(category.0, name.0)?;
        let retired = state
            .store()
            .retire_event_type(&event_type)
            .await
            .map_err(ApiError::internal)?;
        if retired {
            Ok(RetireResponse::Retired)
        } else {
            Err(ApiError::NotFound(format!(
                "no live event type {event_type}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::types::ParseFromJSON;
    use serde_json::json;

    #[test]
    fn a_schema_is_a_json_object_without_nul_characters() {
        assert!(SchemaIn::parse_from_json(Some(pageview_schema())).is_ok());
        for refused in [
            json!(true),
            json!([]),
            json!({"properties": {"a\u{0}": {}}}),
            json!({"enum": [["\u{0}"]]}),
        ] {
            assert!(
                SchemaIn::parse_from_json(Some(refused.clone())).is_err(),
                "{refused}"
            );
        }
    }
}

//! Pure validation of event payloads and timestamps for The Eye.
//!
//! - [`CompiledSchema`]: a JSON Schema (draft 2020-12, no remote `$ref`) compiled once and used to
//!   validate event data, reporting [`Violation`]s by JSON pointer.
//! - [`SchemaRegistry`]: the schema in force per [`EventTypeKey`], an immutable snapshot replaced
//!   as a whole ([`SharedSchemaRegistry`]) when a new version is published.
//! - [`builtin`]: the schemas shipped in `validation/schemas/`, embedded in the binary.
//! - [`judge_time`]: device clock skew correction, the future-timestamp rule and the `sent_at` sanity rule.
//! - [`Verdict`] / [`Rejection`]: the outcome, with [`RejectReason`] codes.
//!
//! No I/O: no database, no network, no clock; the caller passes the reception time.
//!
//! ```
//! use chrono::{TimeDelta, Utc};
//! use eye_validation::{
//!     builtin_registry, judge_time, EventTypeKey, Rejection, UnknownEventPolicy, Verdict,
//! };
//! use serde_json::json;
//!
//! let registry = builtin_registry()?;
//! let received_at = Utc::now();
//! let time = judge_time(received_at, None, received_at, TimeDelta::seconds(30))
//!     .map_err(Rejection::from);
//! assert!(time.is_ok());
//!
//! let key = EventTypeKey::new("page interaction", "pageview");
//! let data = json!({"host": "www.ca.com", "path": "/"});
//! let verdict = registry.judge(&key, &data, UnknownEventPolicy::Reject);
//! assert_eq!(verdict, Verdict::Valid { schema_version: Some(1) });
//! # Ok::<(), eye_validation::BuiltinSchemaError>(())
//! ```

pub mod builtin;
mod key;
mod reference;
mod registry;
mod schema;
mod time;
mod verdict;

pub use builtin::{
    BUILTIN_SCHEMA_VERSION, BUILTIN_SCHEMAS, BuiltinSchema, BuiltinSchemaError, builtin_registry,
};
pub use key::EventTypeKey;
pub use registry::{Lookup, RegisteredSchema, SchemaRegistry, SharedSchemaRegistry};
pub use schema::{CompiledSchema, DRAFT_2020_12_URI, InvalidSchema, MAX_VIOLATIONS, Violation};
pub use time::{
    EARLIEST_CORRECTED, EventTime, FutureTimestamp, InvalidSentAt, TimeRejection, judge_time,
};
pub use verdict::{InvalidPolicy, RejectReason, Rejection, UnknownEventPolicy, Verdict};

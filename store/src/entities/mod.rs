//! SeaORM entities: the database rows, used only inside this crate's queries.
//!
//! Entity files glob-import `sea_orm::entity::prelude`: the derive macros expand to code that names its items
//! unqualified, so this is the one place where the house rule against glob imports gives way.

pub mod api_keys;
pub mod applications;
pub mod dead_jobs;
pub mod event_counts;
pub mod event_types;
pub mod events;
pub mod ingest_errors;
pub mod notifications;
pub mod read_keys;
pub mod rule_states;
pub mod rules;
pub mod sessions;

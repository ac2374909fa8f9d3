//! The schemas in force, by event type: an immutable snapshot, replaced as a whole.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::key::EventTypeKey;
use crate::schema::CompiledSchema;

/// A schema as published for an event type: its version and compiled form.
#[derive(Debug, Clone)]
pub struct RegisteredSchema {
    /// The published version (1, 2, ...); stored with each event validated by it.
    pub version: u32,
    /// The compiled schema.
    pub schema: CompiledSchema,
}

/// What the registry knows about an event type.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// A schema is registered for the type.
    Known {
        /// Its version.
        version: u32,
        /// The compiled schema to validate the data with.
        schema: &'a CompiledSchema,
    },
    /// No schema is registered for the type.
    Unknown,
}

/// An immutable map from event type to its current schema; cheap to clone (shared).
///
/// Never mutated: when a new version is published, build a new registry and swap it in
/// (see [`SharedSchemaRegistry`]), so a validation always sees one consistent set.
#[derive(Debug, Clone, Default)]
pub struct SchemaRegistry {
    schemas: Arc<HashMap<EventTypeKey, RegisteredSchema>>,
}

impl SchemaRegistry {
    /// A registry knowing no event type.
    pub fn empty() -> Self {
        Self::default()
    }

    /// What is registered for `key`.
    pub fn lookup(&self, key: &EventTypeKey) -> Lookup<'_> {
        match self.schemas.get(key) {
            Some(registered) => Lookup::Known {
                version: registered.version,
                schema: &registered.schema,
            },
            None => Lookup::Unknown,
        }
    }

    /// The registered event types, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &EventTypeKey> {
        self.schemas.keys()
    }

    /// How many event types are registered.
    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    /// Whether no event type is registered.
    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }
}

/// Builds a registry; a later entry for the same key replaces an earlier one.
impl FromIterator<(EventTypeKey, RegisteredSchema)> for SchemaRegistry {
    fn from_iter<I: IntoIterator<Item = (EventTypeKey, RegisteredSchema)>>(entries: I) -> Self {
        Self {
            schemas: Arc::new(entries.into_iter().collect()),
        }
    }
}

/// A slot holding the current [`SchemaRegistry`], shared between tasks and replaced as a whole.
#[derive(Debug, Clone, Default)]
pub struct SharedSchemaRegistry {
    current: Arc<RwLock<SchemaRegistry>>,
}

impl SharedSchemaRegistry {
    /// A slot holding `registry`.
    pub fn new(registry: SchemaRegistry) -> Self {
        Self {
            current: Arc::new(RwLock::new(registry)),
        }
    }

    /// The registry in force now; later replacements do not affect the returned snapshot.
    pub fn snapshot(&self) -> SchemaRegistry {
        // A poisoned lock still holds a whole registry: writers only swap the value.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `registry` in force for every later [`snapshot`](Self::snapshot).
    pub fn replace(&self, registry: SchemaRegistry) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = registry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registered(version: u32) -> RegisteredSchema {
        let schema = CompiledSchema::compile(&json!({"type": "object"})).expect("compiles");
        RegisteredSchema { version, schema }
    }

    fn pageview() -> EventTypeKey {
        EventTypeKey::new("page interaction", "pageview")
    }

    fn version_of(registry: &SchemaRegistry, key: &EventTypeKey) -> Option<u32> {
        match registry.lookup(key) {
            Lookup::Known { version, .. } => Some(version),
            Lookup::Unknown => None,
        }
    }

    #[test]
    fn a_registered_type_is_known_with_its_version_and_others_are_unknown() {
        let registry: SchemaRegistry = [(pageview(), registered(3))].into_iter().collect();
        let cases = [
            (pageview(), Some(3)),
            (EventTypeKey::new("page interaction", "scroll"), None),
            (EventTypeKey::new("pageview", "page interaction"), None),
        ];
        for (key, expected) in cases {
            assert_eq!(version_of(&registry, &key), expected, "key: {key}");
        }
    }

    #[test]
    fn an_empty_registry_knows_nothing() {
        let registry = SchemaRegistry::empty();
        assert!(registry.is_empty());
        assert_eq!(version_of(&registry, &pageview()), None);
    }

    #[test]
    fn replacing_the_shared_registry_leaves_earlier_snapshots_untouched() {
        let shared = SharedSchemaRegistry::new([(pageview(), registered(1))].into_iter().collect());
        let before = shared.snapshot();
        shared.replace([(pageview(), registered(2))].into_iter().collect());
        assert_eq!(version_of(&before, &pageview()), Some(1));
        assert_eq!(version_of(&shared.snapshot(), &pageview()), Some(2));
    }
}

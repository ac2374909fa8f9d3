//! The schema registry as workers see it: loaded from the database, cached, refreshed when it changes.

use eye_store::{RegistryRevision, Store, StoreError};
use eye_validation::{
    BUILTIN_SCHEMAS, CompiledSchema, EventTypeKey, RegisteredSchema, SchemaRegistry,
    SharedSchemaRegistry,
};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often workers ask whether a schema was published or retired (one tiny query, not one per event).
const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Publishes the built-in schemas (kept in `validation/schemas/`) as version 1 of types not yet known.
pub async fn seed_builtin_schemas(store: &Store) -> Result<(), StoreError> {
    for builtin in BUILTIN_SCHEMAS {
        let (Ok(document), Ok(event_type)) = (builtin.document(), builtin_type(builtin)) else {
            tracing::error!(
                category = builtin.category,
                name = builtin.name,
                "built-in schema is invalid"
            );
            continue;
        };
        if store.seed_schema(&event_type, document).await? {
            tracing::info!(event_type = %event_type, "published built-in schema");
        }
    }
    Ok(())
}

fn builtin_type(
    builtin: &eye_validation::BuiltinSchema,
) -> Result<eye_domain::EventType, eye_domain::TextError> {
    Ok(eye_domain::EventType {
        category: eye_domain::Category::parse(builtin.category)?,
        name: eye_domain::EventName::parse(builtin.name)?,
    })
}

/// The live schemas, compiled. A stored schema that no longer compiles is skipped and logged.
pub async fn load_registry(store: &Store) -> Result<SchemaRegistry, StoreError> {
    let schemas = store.current_schemas().await?;
    Ok(schemas
        .into_iter()
        .filter_map(|stored| {
            let key = EventTypeKey::new(stored.event_type.category.as_str(), stored.event_type.name.as_str());
            match CompiledSchema::compile(&stored.schema) {
                Ok(schema) => Some((key, RegisteredSchema { version: stored.version, schema })),
                Err(err) => {
                    tracing::error!(event_type = %key, error = %err, "stored schema does not compile");
                    None
                }
            }
        })
        .collect())
}

/// Reloads `shared` whenever the database's registry revision changes, until shutdown.
pub async fn keep_registry_fresh(
    store: Store,
    shared: SharedSchemaRegistry,
    shutdown: CancellationToken,
) {
    let mut seen = RegistryRevision::default();
    while !shutdown.is_cancelled() {
        if let Err(err) = refresh(&store, &shared, &mut seen).await {
            tracing::warn!(error = %err, "refreshing the schema registry failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(REFRESH_INTERVAL) => {}
        }
    }
}

async fn refresh(
    store: &Store,
    shared: &SharedSchemaRegistry,
    seen: &mut RegistryRevision,
) -> Result<(), StoreError> {
    let revision = store.registry_revision().await?;
    if revision != *seen {
        shared.replace(load_registry(store).await?);
        *seen = revision;
        tracing::debug!(?revision, "schema registry reloaded");
    }
    Ok(())
}

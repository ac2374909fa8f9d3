//! The schema registry as workers see it: loaded from the database, cached, refreshed when it changes.

use eye_store::{RegistryRevision, Store, StoreError};
use eye_validation::{
    BUILTIN_SCHEMAS, CompiledSchema, EventTypeKey, RegisteredSchema, SchemaRegistry,
    SharedSchemaRegistry,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// How often workers ask, besides before each batch, whether a schema was published or retired.
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

/// Keeps a worker's [`SharedSchemaRegistry`] in step with the database (cheap to clone).
///
/// "A schema applies to every event accepted after the publish call answered": the publish commits its
/// revision bump before answering, so a batch judged after [`Self::ensure_fresh`] sees that schema. The
/// check is one single-row read per batch; the reload happens only when the revision moved.
#[derive(Clone)]
pub struct RegistryWatcher {
    store: Store,
    shared: SharedSchemaRegistry,
    /// The revision the shared registry is at least as new as (`NONE` before the first load): read
    /// without waiting by every batch.
    seen: Arc<AtomicI64>,
    /// Reloads take this lock in turn, so an older load never replaces a newer one.
    reload: Arc<Mutex<()>>,
}

/// No registry loaded yet: older than any revision.
const NONE: i64 = i64::MIN;

impl RegistryWatcher {
    /// A watcher reloading `shared` from `store`.
    pub fn new(store: Store, shared: SharedSchemaRegistry) -> Self {
        Self {
            store,
            shared,
            seen: Arc::new(AtomicI64::new(NONE)),
            reload: Arc::default(),
        }
    }

    /// The registry this watcher keeps fresh.
    pub fn shared(&self) -> &SharedSchemaRegistry {
        &self.shared
    }

    /// Reloads the registry if a schema was published or a type retired since it was loaded. Call it
    /// before judging a batch.
    pub async fn ensure_fresh(&self) -> Result<(), StoreError> {
        let revision = self.store.registry_revision().await?;
        if self.is_at_least(revision) {
            return Ok(());
        }
        let _turn = self.reload.lock().await;
        // Another batch may have reloaded while this one waited.
        if self.is_at_least(revision) {
            return Ok(());
        }
        // Loaded after the revision was read: at least as new as it.
        self.shared.replace(load_registry(&self.store).await?);
        self.seen.store(revision.get(), Ordering::Release);
        tracing::debug!(revision = revision.get(), "schema registry reloaded");
        Ok(())
    }

    fn is_at_least(&self, revision: RegistryRevision) -> bool {
        self.seen.load(Ordering::Acquire) >= revision.get()
    }

    /// Checks every second until `shutdown`, so retirements and new versions also reach a worker that
    /// judges nothing for a while, and a batch rarely has to wait for a reload.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(err) = self.ensure_fresh().await {
                tracing::warn!(error = %err, "refreshing the schema registry failed");
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(REFRESH_INTERVAL) => {}
            }
        }
    }
}

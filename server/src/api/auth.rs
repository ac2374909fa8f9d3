//! Who may call what: ingest keys for applications, the admin token for operators.

use crate::api::problem::ApiError;
use crate::metrics::{ApiMetrics, KeyKind, Refusal};
use crate::state::AppState;
use eye_domain::ApplicationId;
use eye_domain::Failure;
use eye_store::{ApiKey, KeyHash, ReadScope, Store, StoreError};
use moka::future::Cache;
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How the key cache treats the database.
#[derive(Debug, Clone, Copy)]
pub struct KeyCacheSettings {
    /// How long a verdict is trusted before the key is checked again (`EYE_AUTH_CACHE_TTL`).
    pub ttl: Duration,
    /// While the database is unreachable, how long after its last verification a key is still accepted
    /// (`EYE_AUTH_STALE_FOR`).
    pub stale_for: Duration,
    /// The longest a verification waits for the database (`EYE_AUTH_LOOKUP_TIMEOUT`).
    pub lookup_timeout: Duration,
}

/// After a lookup found the database unreachable, how long lookups skip it: during an outage every
/// request would otherwise wait the lookup timeout first.
const OUTAGE_BACKOFF: Duration = Duration::from_secs(1);

/// Verified ingest keys, so the hot path does not wait for the database on every request. Unknown keys
/// are cached too (briefly), so a flood of bad keys cannot reach the database either. Keys verified
/// within `stale_for` keep being accepted while the database is unreachable: ingest only needs the queue.
/// Read keys (`eyr_…`) share the negative half only: an unknown one is remembered like an unknown ingest
/// key, a live one is looked up on every request, so its revocation takes effect at once everywhere.
#[derive(Clone)]
pub struct KeyCache {
    fresh: Cache<String, Option<ApplicationId>>,
    known: Cache<String, ApplicationId>,
    unknown_read_keys: Cache<String, ()>,
    outage_until: Arc<Mutex<Option<Instant>>>,
    lookup_timeout: Duration,
    metrics: ApiMetrics,
}

/// Why a key could not be verified.
#[derive(Debug, thiserror::Error)]
enum LookupError {
    /// The database did not answer in time or failed transiently.
    #[error("the database is unreachable: {0}")]
    Unreachable(String),
    /// The database failed in a way retrying will not fix.
    #[error("key lookup failed: {0}")]
    Failed(#[source] StoreError),
}

impl KeyCache {
    /// A cache with these settings.
    pub fn new(settings: KeyCacheSettings) -> Self {
        Self {
            fresh: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settings.ttl)
                .build(),
            known: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settings.stale_for)
                .build(),
            unknown_read_keys: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settings.ttl)
                .build(),
            outage_until: Arc::default(),
            lookup_timeout: settings.lookup_timeout,
            metrics: ApiMetrics::default(),
        }
    }

    /// Counts the lookups that reach the database in these metrics.
    pub fn with_metrics(mut self, metrics: ApiMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// What a read key may read; `None` for an unknown or revoked one. Only that verdict is cached.
    pub async fn read_scope_for(
        &self,
        store: &Store,
        presented: &str,
    ) -> Result<Option<ReadScope>, StoreError> {
        let hash = KeyHash::of(presented);
        if self.unknown_read_keys.contains_key(hash.as_str()) {
            return Ok(None);
        }
        self.metrics.record_key_lookup(KeyKind::Read);
        let scope = store.read_scope_for_key(&hash).await?;
        if scope.is_none() {
            let key = hash.as_str().to_owned();
            self.unknown_read_keys.insert(key, ()).await;
        }
        Ok(scope)
    }

    /// The application owning a live key, if any. While the database is unreachable, a key verified
    /// recently is accepted from the cache and any other is [`ApiError::KeyUnverifiable`] (503).
    pub async fn application_for(
        &self,
        store: &Store,
        presented: &str,
    ) -> Result<Option<ApplicationId>, ApiError> {
        let hash = KeyHash::of(presented);
        let key = hash.as_str().to_owned();
        if let Some(verdict) = self.fresh.get(&key).await {
            return Ok(verdict);
        }
        if self.in_outage() {
            return self.verified_before(&key).await;
        }
        let lookup = self.lookup(store, &hash);
        match self.fresh.try_get_with(key.clone(), lookup).await {
            Ok(verdict) => {
                self.remember(key, verdict).await;
                Ok(verdict)
            }
            Err(err) => match err.as_ref() {
                LookupError::Unreachable(reason) => {
                    self.start_outage(reason);
                    self.verified_before(&key).await
                }
                LookupError::Failed(_) => Err(ApiError::internal(anyhow::anyhow!("{err}"))),
            },
        }
    }

    async fn lookup(
        &self,
        store: &Store,
        hash: &KeyHash,
    ) -> Result<Option<ApplicationId>, LookupError> {
        self.metrics.record_key_lookup(KeyKind::Ingest);
        match tokio::time::timeout(self.lookup_timeout, store.application_for_key(hash)).await {
            Err(_) => Err(LookupError::Unreachable("no answer in time".into())),
            Ok(Err(err)) if err.is_transient() => Err(LookupError::Unreachable(err.to_string())),
            Ok(Err(err)) => Err(LookupError::Failed(err)),
            Ok(Ok(verdict)) => Ok(verdict),
        }
    }

    async fn remember(&self, key: String, verdict: Option<ApplicationId>) {
        match verdict {
            Some(application) => self.known.insert(key, application).await,
            None => self.known.invalidate(&key).await,
        }
    }

    /// The verdict of a recent verification, for when the database cannot give one.
    async fn verified_before(&self, key: &str) -> Result<Option<ApplicationId>, ApiError> {
        match self.known.get(key).await {
            Some(application) => Ok(Some(application)),
            None => Err(ApiError::KeyUnverifiable),
        }
    }

    fn in_outage(&self) -> bool {
        let until = *self
            .outage_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        until.is_some_and(|until| Instant::now() < until)
    }

    fn start_outage(&self, reason: &str) {
        let mut until = self
            .outage_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if until.is_none_or(|until| Instant::now() >= until) {
            tracing::warn!(%reason, "cannot verify ingest keys; accepting recently verified ones from the cache");
        }
        *until = Some(Instant::now() + OUTAGE_BACKOFF);
    }

    /// Forgets every ingest-key verdict (after a revocation).
    pub fn invalidate_all(&self) {
        self.fresh.invalidate_all();
        self.known.invalidate_all();
    }
}

/// The application state of a request (every route carries it).
pub(crate) fn state(req: &Request) -> Result<&AppState, ApiError> {
    req.data::<AppState>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))
}

/// An application's ingest key: `Authorization: Bearer <ingest_key>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_ingest_key")]
pub struct IngestKey(pub ApplicationId);

async fn check_ingest_key(req: &Request, bearer: Bearer) -> poem::Result<ApplicationId> {
    let state = state(req)?;
    if eye_store::ApiKey::looks_like_read_key(&bearer.token) {
        return Err(
            crate::api::read_auth::refuse_read_key_on_ingest(state, &bearer.token)
                .await
                .into(),
        );
    }
    let application = state
        .keys()
        .application_for(state.store(), &bearer.token)
        .await
        .inspect_err(|err| {
            if matches!(err, ApiError::KeyUnverifiable) {
                state.metrics().record_refused(Refusal::KeyUnverifiable);
            }
        })?;
    application.ok_or_else(|| ApiError::Unauthorized("unknown or revoked ingest key".into()).into())
}

/// The operator's token (`EYE_ADMIN_TOKEN`): `Authorization: Bearer <token>`. A live ingest or read key
/// is a credential that does not grant admin calls (403); anything else is unknown (401).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_admin_token")]
pub struct AdminToken(());

async fn check_admin_token(req: &Request, bearer: Bearer) -> poem::Result<()> {
    let state = state(req)?;
    let Some(expected) = state.admin_token() else {
        return Err(ApiError::Unauthorized(
            "admin endpoints are disabled: EYE_ADMIN_TOKEN is not set".into(),
        )
        .into());
    };
    if *expected == KeyHash::of(&bearer.token) {
        return Ok(());
    }
    Err(if is_live_key(state, &bearer.token).await? {
        ApiError::Forbidden(
            "admin endpoints take the admin token, not an ingest or read key".into(),
        )
    } else {
        ApiError::Unauthorized("invalid admin token".into())
    }
    .into())
}

/// Whether `presented` is a live read key or ingest key.
async fn is_live_key(state: &AppState, presented: &str) -> Result<bool, ApiError> {
    if ApiKey::looks_like_read_key(presented) {
        let scope = state.keys().read_scope_for(state.store(), presented).await;
        return Ok(scope.map_err(ApiError::internal)?.is_some());
    }
    let application = state
        .keys()
        .application_for(state.store(), presented)
        .await?;
    Ok(application.is_some())
}

//! Who may call what: ingest keys for applications, the admin token for operators.

use crate::api::problem::ApiError;
use crate::state::AppState;
use eye_domain::ApplicationId;
use eye_store::{KeyHash, Store};
use moka::future::Cache;
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use std::time::Duration;

/// Verified ingest keys, so the hot path does not wait for the database on every request. Unknown keys
/// are cached too (briefly), so a flood of bad keys cannot reach the database either.
#[derive(Clone)]
pub struct KeyCache {
    cache: Cache<String, Option<ApplicationId>>,
}

impl KeyCache {
    /// A cache trusting a verdict for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The application owning a live key, if any.
    pub async fn application_for(
        &self,
        store: &Store,
        presented: &str,
    ) -> Result<Option<ApplicationId>, ApiError> {
        let hash = KeyHash::of(presented);
        self.cache
            .try_get_with(hash.as_str().to_owned(), store.application_for_key(&hash))
            .await
            .map_err(|err| ApiError::internal(anyhow::anyhow!("key lookup failed: {err}")))
    }

    /// Forgets every verdict (after a revocation).
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
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
        .await?;
    application.ok_or_else(|| ApiError::Unauthorized("unknown or revoked ingest key".into()).into())
}

/// The operator's token (`EYE_ADMIN_TOKEN`): `Authorization: Bearer <token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_admin_token")]
pub struct AdminToken(());

async fn check_admin_token(req: &Request, bearer: Bearer) -> poem::Result<()> {
    let state = state(req)?;
    match state.admin_token() {
        None => Err(ApiError::Unauthorized(
            "admin endpoints are disabled: EYE_ADMIN_TOKEN is not set".into(),
        )
        .into()),
        Some(expected) if *expected == KeyHash::of(&bearer.token) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("invalid admin token".into()).into()),
    }
}

//! Who may read: read keys (for all or some applications) and the admin token. Ingest keys may not.

use crate::api::auth::state;
use crate::api::problem::ApiError;
use crate::state::AppState;
use eye_store::{ApiKey, KeyHash, ReadScope};
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

/// A read key or the admin token: `Authorization: Bearer <read_key>`. Carries what the caller may read.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_read_access")]
pub struct ReadAccess(pub ReadScope);

// Live read keys are looked up on every request (only unknown ones are cached), so a revocation takes
// effect at once everywhere.
async fn check_read_access(req: &Request, bearer: Bearer) -> poem::Result<ReadScope> {
    let state = state(req)?;
    let hash = KeyHash::of(&bearer.token);
    if state.admin_token() == Some(&hash) {
        return Ok(ReadScope::All);
    }
    if ApiKey::looks_like_read_key(&bearer.token) {
        let scope = state
            .keys()
            .read_scope_for(state.store(), &bearer.token)
            .await
            .map_err(ApiError::internal)?;
        return scope.ok_or_else(|| unknown_read_key().into());
    }
    let ingest = state
        .keys()
        .application_for(state.store(), &bearer.token)
        .await?;
    Err(match ingest {
        Some(_) => ApiError::Forbidden("an ingest key cannot read events: use a read key".into()),
        None => unknown_read_key(),
    }
    .into())
}

fn unknown_read_key() -> ApiError {
    ApiError::Unauthorized("unknown or revoked read key".into())
}

/// Why a token with a read key's shape is refused on an ingest endpoint: 403 for a live read key (it is
/// valid, just not for sending), 401 for anything else.
pub async fn refuse_read_key_on_ingest(state: &AppState, presented: &str) -> ApiError {
    match state.keys().read_scope_for(state.store(), presented).await {
        Ok(Some(_)) => {
            ApiError::Forbidden("a read key cannot send events: use an ingest key".into())
        }
        Ok(None) => ApiError::Unauthorized("unknown or revoked ingest key".into()),
        Err(err) => ApiError::internal(err),
    }
}

//! Who may manage rules: the admin token only. A live ingest or read key is a credential that does not
//! grant this (403); anything else is unknown (401).

use crate::api::auth::state;
use crate::api::problem::ApiError;
use crate::state::AppState;
use eye_store::{ApiKey, KeyHash};
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

/// The operator's token (`EYE_ADMIN_TOKEN`): `Authorization: Bearer <token>`. Ingest and read keys get 403.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_rule_admin")]
pub struct RuleAdmin(());

async fn check_rule_admin(req: &Request, bearer: Bearer) -> poem::Result<()> {
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
            "rules are managed with the admin token, not an ingest or read key".into(),
        )
    } else {
        ApiError::Unauthorized("invalid admin token".into())
    }
    .into())
}

/// Whether `presented` is a live read key or ingest key.
async fn is_live_key(state: &AppState, presented: &str) -> Result<bool, ApiError> {
    if ApiKey::looks_like_read_key(presented) {
        let scope = state
            .store()
            .read_scope_for_key(&KeyHash::of(presented))
            .await;
        return Ok(scope.map_err(ApiError::internal)?.is_some());
    }
    let application = state
        .keys()
        .application_for(state.store(), presented)
        .await?;
    Ok(application.is_some())
}

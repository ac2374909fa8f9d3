//! Operator endpoints (admin token): registering applications and managing their keys.

use crate::api::auth::AdminToken;
use crate::api::params::Text;
use crate::api::problem::ApiError;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use eye_store::{Application, StoreError};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

#[derive(Tags)]
enum AdminTags {
    /// Operating The Eye (admin token).
    Admin,
}

/// The admin endpoints.
pub struct AdminApi;

/// A new application.
#[derive(Debug, Object)]
#[oai(example)]
pub struct NewApplication {
    /// A unique name (1..=128 characters).
    pub name: Text<128>,
}

/// A registered application.
#[derive(Debug, Object)]
pub struct ApplicationOut {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// A registered application and its ingest key, shown this once.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ApplicationCreated {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The key to send events with (`Authorization: Bearer …`). Stored only as a hash: keep it now.
    pub ingest_key: String,
}

/// A new ingest key, shown this once.
#[derive(Debug, Object)]
pub struct KeyIssued {
    /// The key.
    pub ingest_key: String,
}

/// Keys revoked.
#[derive(Debug, Object)]
pub struct KeysRevoked {
    /// How many keys were revoked.
    pub revoked: u64,
}

#[derive(ApiResponse)]
enum Created<T: poem_openapi::types::ToJSON> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

#[derive(ApiResponse)]
enum ApplicationList {
    /// Every registered application.
    #[oai(status = 200)]
    All(Json<Vec<ApplicationOut>>),
}

#[derive(ApiResponse)]
enum Revoked {
    /// The keys are refused from now on (see the operation for other processes).
    #[oai(status = 200)]
    Keys(Json<KeysRevoked>),
}

impl From<Application> for ApplicationOut {
    fn from(app: Application) -> Self {
        Self {
            id: app.id.as_uuid(),
            name: app.name,
            created_at: app.created_at,
        }
    }
}

fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::DuplicateApplication(name) => {
            ApiError::Conflict(format!("an application named {name:?} already exists"))
        }
        StoreError::UnknownApplication(id) => ApiError::NotFound(format!("no application {id}")),
        other => ApiError::internal(other),
    }
}

#[OpenApi(tag = "AdminTags::Admin")]
impl AdminApi {
    /// Register an application
    ///
    /// Answers its ingest key once; names are unique (409 otherwise).
    #[oai(
        path = "/v1/admin/applications",
        method = "post",
        operation_id = "create_application"
    )]
    async fn create_application(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        body: Json<NewApplication>,
    ) -> Result<Created<ApplicationCreated>, ApiError> {
        let created = state
            .store()
            .create_application(body.name.as_str())
            .await
            .map_err(store_error)?;
        Ok(Created::Created(Json(ApplicationCreated {
            id: created.application.id.as_uuid(),
            name: created.application.name,
            ingest_key: created.ingest_key.expose().to_owned(),
        })))
    }

    /// List applications
    #[oai(
        path = "/v1/admin/applications",
        method = "get",
        operation_id = "list_applications"
    )]
    async fn list_applications(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
    ) -> Result<ApplicationList, ApiError> {
        let apps = state
            .store()
            .list_applications()
            .await
            .map_err(store_error)?;
        let apps = apps.into_iter().map(ApplicationOut::from).collect();
        Ok(ApplicationList::All(Json(apps)))
    }

    /// Issue another ingest key (rotation: issue, deploy, then revoke the old ones)
    #[oai(
        path = "/v1/admin/applications/:id/keys",
        method = "post",
        operation_id = "issue_key"
    )]
    async fn issue_key(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        id: Path<Uuid>,
    ) -> Result<Created<KeyIssued>, ApiError> {
        let key = state
            .store()
            .issue_key(id.0.into())
            .await
            .map_err(store_error)?;
        Ok(Created::Created(Json(KeyIssued {
            ingest_key: key.expose().to_owned(),
        })))
    }

    /// Revoke every ingest key of an application
    ///
    /// Takes effect at once in this process, and within `EYE_AUTH_CACHE_TTL` in others.
    #[oai(
        path = "/v1/admin/applications/:id/keys",
        method = "delete",
        operation_id = "revoke_keys"
    )]
    async fn revoke_keys(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        id: Path<Uuid>,
    ) -> Result<Revoked, ApiError> {
        let revoked = state
            .store()
            .revoke_keys(id.0.into())
            .await
            .map_err(store_error)?;
        state.keys().invalidate_all();
        Ok(Revoked::Keys(Json(KeysRevoked { revoked })))
    }
}

//! Operator endpoints (admin token) for read keys: the analysts' credentials.

use crate::api::auth::AdminToken;
use crate::api::params::Text;
use crate::api::problem::ApiError;
use crate::state::AppState;
use eye_store::{NewReadKey, StoreError};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use uuid::Uuid;

#[derive(Tags)]
enum ReadKeyTags {
    /// Analysts' read keys (admin token).
    #[oai(rename = "Read keys")]
    ReadKeys,
}

/// The read-key endpoints.
pub struct ReadKeysApi;

/// A read key to issue.
#[derive(Debug, Object)]
#[oai(example)]
pub struct NewReadKeyIn {
    /// Who or what it is for (1..=128 characters).
    pub name: Text<128>,
    /// The applications it may read. Absent: every application, including future ones.
    #[oai(nullable)]
    pub application_ids: Option<Vec<Uuid>>,
}

/// A new read key, shown this once.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ReadKeyCreated {
    /// Its id (to revoke it).
    pub id: Uuid,
    /// The key (`Authorization: Bearer …` on the query endpoints). Stored only as a hash: keep it now.
    pub read_key: String,
}

#[derive(ApiResponse)]
enum ReadKeyIssued {
    /// Issued.
    #[oai(status = 201)]
    Created(Json<ReadKeyCreated>),
}

#[derive(ApiResponse)]
enum ReadKeyRevoked {
    /// Revoked; it is refused from now on.
    #[oai(status = 204)]
    Revoked,
}

#[OpenApi(tag = "ReadKeyTags::ReadKeys")]
impl ReadKeysApi {
    /// Issue a read key
    ///
    /// For all applications, or only the listed ones (404 if one does not exist). The key is answered
    /// once.
    #[oai(
        path = "/v1/admin/read-keys",
        method = "post",
        operation_id = "create_read_key"
    )]
    async fn create_read_key(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        body: Json<NewReadKeyIn>,
    ) -> Result<ReadKeyIssued, ApiError> {
        let new = NewReadKey {
            name: body.0.name.into_string(),
            applications: body
                .0
                .application_ids
                .map(|ids| ids.into_iter().map(Into::into).collect()),
        };
        let created = state
            .store()
            .create_read_key(&new)
            .await
            .map_err(|err| match err {
                StoreError::UnknownApplication(id) => {
                    ApiError::NotFound(format!("no application {id}"))
                }
                other => ApiError::internal(other),
            })?;
        Ok(ReadKeyIssued::Created(Json(ReadKeyCreated {
            id: created.id.as_uuid(),
            read_key: created.read_key.expose().to_owned(),
        })))
    }

    /// Revoke a read key
    ///
    /// Takes effect at once in every process (read keys are not cached). 404 if no live key has this id.
    #[oai(
        path = "/v1/admin/read-keys/:id",
        method = "delete",
        operation_id = "revoke_read_key"
    )]
    async fn revoke_read_key(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        /// The read key's id.
        id: Path<Uuid>,
    ) -> Result<ReadKeyRevoked, ApiError> {
        let revoked = state
            .store()
            .revoke_read_key(id.0.into())
            .await
            .map_err(ApiError::internal)?;
        if revoked {
            Ok(ReadKeyRevoked::Revoked)
        } else {
            Err(ApiError::NotFound(format!("no live read key {}", id.0)))
        }
    }
}

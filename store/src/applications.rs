//! Applications (trusted clients) and their ingest keys.

use crate::entities::{api_keys, applications};
use crate::{ApiKey, KeyHash, Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::ApplicationId;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, SqlErr, TransactionTrait,
};
use uuid::Uuid;

/// A registered application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Its id.
    pub id: ApplicationId,
    /// Its unique name.
    pub name: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// A new application with its first ingest key (the only time the key is available).
#[derive(Debug)]
pub struct CreatedApplication {
    /// The application.
    pub application: Application,
    /// The ingest key to hand to the client.
    pub ingest_key: ApiKey,
}

impl From<applications::Model> for Application {
    fn from(model: applications::Model) -> Self {
        Self {
            id: model.id.into(),
            name: model.name,
            created_at: model.created_at,
        }
    }
}

impl Store {
    /// Registers an application and issues its ingest key, atomically.
    #[tracing::instrument(skip(self), err)]
    pub async fn create_application(&self, name: &str) -> Result<CreatedApplication, StoreError> {
        let now = Utc::now();
        let application = applications::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(name.to_owned()),
            created_at: Set(now),
        };
        let txn = self.db.begin().await?;
        let model = applications::Entity::insert(application)
            .exec_with_returning(&txn)
            .await
            .map_err(|err| match err.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(_)) => {
                    StoreError::DuplicateApplication(name.to_owned())
                }
                _ => StoreError::Database(err),
            })?;
        let ingest_key = insert_key(&txn, model.id, now).await?;
        txn.commit().await?;
        Ok(CreatedApplication {
            application: model.into(),
            ingest_key,
        })
    }

    /// Every application, oldest first.
    pub async fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
        let models = applications::Entity::find()
            .order_by_asc(applications::Column::CreatedAt)
            .all(&self.db)
            .await?;
        Ok(models.into_iter().map(Application::from).collect())
    }

    /// The application owning a key that is not revoked.
    pub async fn application_for_key(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<ApplicationId>, StoreError> {
        let key = api_keys::Entity::find()
            .filter(api_keys::Column::KeyHash.eq(hash.as_str()))
            .filter(api_keys::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?;
        Ok(key.map(|key| key.application_id.into()))
    }

    /// Revokes every ingest key of an application; answers how many were revoked.
    #[tracing::instrument(skip(self), err)]
    pub async fn revoke_keys(&self, application: ApplicationId) -> Result<u64, StoreError> {
        let result = api_keys::Entity::update_many()
            .col_expr(api_keys::Column::RevokedAt, Utc::now().into())
            .filter(api_keys::Column::ApplicationId.eq(application.as_uuid()))
            .filter(api_keys::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Issues another ingest key (e.g. for rotation: issue, deploy, then revoke the old ones).
    pub async fn issue_key(&self, application: ApplicationId) -> Result<ApiKey, StoreError> {
        let exists = applications::Entity::find_by_id(application.as_uuid())
            .one(&self.db)
            .await?;
        if exists.is_none() {
            return Err(StoreError::UnknownApplication(application));
        }
        insert_key(&self.db, application.as_uuid(), Utc::now()).await
    }
}

async fn insert_key(
    db: &impl sea_orm::ConnectionTrait,
    application_id: Uuid,
    now: DateTime<Utc>,
) -> Result<ApiKey, StoreError> {
    let key = ApiKey::generate();
    let row = api_keys::ActiveModel {
        id: Set(Uuid::now_v7()),
        application_id: Set(application_id),
        key_hash: Set(key.hash().as_str().to_owned()),
        key_prefix: Set(key.display_prefix()),
        created_at: Set(now),
        revoked_at: Set(None),
    };
    api_keys::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(key)
}

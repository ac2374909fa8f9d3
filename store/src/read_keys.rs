//! Read keys: analysts' credentials for the query endpoints, for every application or only some.

use crate::entities::{applications, read_keys};
use crate::{ApiKey, KeyHash, Store, StoreError};
use chrono::Utc;
use eye_domain::ApplicationId;
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter};
use std::fmt;
use uuid::Uuid;

/// A read key's identity (not its secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadKeyId(Uuid);

impl ReadKeyId {
    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for ReadKeyId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl fmt::Display for ReadKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which applications' data a reader may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadScope {
    /// Every application (the admin token, or a read key without a list).
    All,
    /// Only these applications.
    Applications(Vec<ApplicationId>),
}

impl ReadScope {
    /// Whether the reader may see this application's data.
    pub fn allows(&self, application: ApplicationId) -> bool {
        match self {
            Self::All => true,
            Self::Applications(allowed) => allowed.contains(&application),
        }
    }

    /// The applications a query must be limited to; `None` for every application.
    pub fn application_ids(&self) -> Option<Vec<ApplicationId>> {
        match self {
            Self::All => None,
            Self::Applications(ids) => Some(ids.clone()),
        }
    }

    /// The scope narrowed to one application when a query names it.
    pub fn narrowed_to(&self, application: Option<ApplicationId>) -> Self {
        match application {
            Some(app) if self.allows(app) => Self::Applications(vec![app]),
            Some(_) => Self::Applications(Vec::new()),
            None => self.clone(),
        }
    }
}

/// A read key to issue.
#[derive(Debug, Clone)]
pub struct NewReadKey {
    /// Who or what it is for (1..=128 characters).
    pub name: String,
    /// The applications it may read; `None` reads every application.
    pub applications: Option<Vec<ApplicationId>>,
}

/// A new read key: its id, and the secret, available this once.
#[derive(Debug)]
pub struct CreatedReadKey {
    /// Its id (to revoke it).
    pub id: ReadKeyId,
    /// The secret to hand to the analyst.
    pub read_key: ApiKey,
}

impl Store {
    /// Issues a read key; every listed application must exist.
    #[tracing::instrument(skip_all, fields(name = %new.name), err)]
    pub async fn create_read_key(&self, new: &NewReadKey) -> Result<CreatedReadKey, StoreError> {
        let ids = match &new.applications {
            Some(apps) => Some(self.existing_applications(apps).await?),
            None => None,
        };
        let key = ApiKey::generate_read();
        let id = Uuid::now_v7();
        let row = read_keys::ActiveModel {
            id: Set(id),
            name: Set(new.name.clone()),
            key_hash: Set(key.hash().as_str().to_owned()),
            key_prefix: Set(key.display_prefix()),
            application_ids: Set(ids),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
        };
        read_keys::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await?;
        Ok(CreatedReadKey {
            id: id.into(),
            read_key: key,
        })
    }

    async fn existing_applications(
        &self,
        apps: &[ApplicationId],
    ) -> Result<serde_json::Value, StoreError> {
        for app in apps {
            let found = applications::Entity::find_by_id(app.as_uuid())
                .count(&self.db)
                .await?;
            if found == 0 {
                return Err(StoreError::UnknownApplication(*app));
            }
        }
        let ids: Vec<String> = apps.iter().map(ToString::to_string).collect();
        Ok(serde_json::Value::from(ids))
    }

    /// What a live (not revoked) read key may read; `None` when the key is unknown or revoked.
    pub async fn read_scope_for_key(
        &self,
        hash: &KeyHash,
    ) -> Result<Option<ReadScope>, StoreError> {
        let key = read_keys::Entity::find()
            .filter(read_keys::Column::KeyHash.eq(hash.as_str()))
            .filter(read_keys::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?;
        key.map(|key| scope_of(key.application_ids)).transpose()
    }

    /// Revokes a read key at once; answers whether a live key was revoked.
    #[tracing::instrument(skip(self), err)]
    pub async fn revoke_read_key(&self, id: ReadKeyId) -> Result<bool, StoreError> {
        let result = read_keys::Entity::update_many()
            .col_expr(read_keys::Column::RevokedAt, Utc::now().into())
            .filter(read_keys::Column::Id.eq(id.as_uuid()))
            .filter(read_keys::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }
}

fn scope_of(ids: Option<serde_json::Value>) -> Result<ReadScope, StoreError> {
    let Some(ids) = ids else {
        return Ok(ReadScope::All);
    };
    let ids: Vec<Uuid> = serde_json::from_value(ids)
        .map_err(|err| DbErr::Custom(format!("read key application ids: {err}")))?;
    Ok(ReadScope::Applications(
        ids.into_iter().map(ApplicationId::from).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_without_a_list_reads_every_application() {
        assert_eq!(scope_of(None).ok(), Some(ReadScope::All));
    }

    #[test]
    fn a_stored_list_limits_the_scope_to_its_applications() {
        let (a, b) = (ApplicationId::generate(), ApplicationId::generate());
        let stored = serde_json::json!([a.to_string()]);
        let scope = scope_of(Some(stored)).expect("valid list");
        assert!(scope.allows(a));
        assert!(!scope.allows(b));
    }

    #[test]
    fn naming_an_application_outside_the_scope_leaves_nothing_to_read() {
        let (a, b) = (ApplicationId::generate(), ApplicationId::generate());
        let scope = ReadScope::Applications(vec![a]);
        assert_eq!(scope.narrowed_to(Some(b)), ReadScope::Applications(vec![]));
        assert_eq!(scope.narrowed_to(Some(a)), ReadScope::Applications(vec![a]));
        assert_eq!(ReadScope::All.narrowed_to(None), ReadScope::All);
    }
}

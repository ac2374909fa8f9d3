//! The schema registry's revision: no publish goes unnoticed, and a batch judged after a publish answered
//! uses the new schema.

use crate::support::{Backend, Isolation};
use eye_domain::{Category, EventName, EventType};
use eye_store::Store;
use eye_validation::{
    EventTypeKey, RejectReason, SchemaRegistry, SharedSchemaRegistry, UnknownEventPolicy, Verdict,
};
use eye_worker::{RegistryWatcher, load_registry};
use sea_orm::{ConnectionTrait, DatabaseTransaction, Statement, TransactionTrait};
use serde_json::json;

fn video(name: &str) -> anyhow::Result<EventType> {
    Ok(EventType {
        category: Category::parse("video")?,
        name: EventName::parse(name)?,
    })
}

async fn execute(txn: &DatabaseTransaction, sql: &str) -> anyhow::Result<()> {
    txn.execute_raw(Statement::from_string(txn.get_database_backend(), sql))
        .await?;
    Ok(())
}

/// What a publishing transaction does (`Store::publish_schema`): insert the version, then raise the
/// revision, in one transaction. Answers the id PostgreSQL handed out.
async fn insert_version(txn: &DatabaseTransaction, name: &str) -> anyhow::Result<i64> {
    let sql = format!(
        "INSERT INTO event_types (category, name, version, schema, created_at) \
         VALUES ('video', '{name}', 1, '{{}}', now()) RETURNING id"
    );
    let row = txn
        .query_one_raw(Statement::from_string(txn.get_database_backend(), sql))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no id returned"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

const BUMP: &str = "UPDATE registry_revision SET revision = revision + 1 WHERE id = 1";

/// The fingerprint workers compared before: the largest id and the number of retired versions.
async fn old_fingerprint(store: &Store) -> anyhow::Result<(i64, i64)> {
    let db = store.connection();
    let sql = "SELECT MAX(id), COUNT(retired_at) FROM event_types";
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no row"))?;
    Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?))
}

fn knows(registry: &SchemaRegistry, name: &str) -> bool {
    registry
        .keys()
        .any(|key| *key == EventTypeKey::new("video", name))
}

/// Two publishes overlap: the first takes the smaller id but commits last. Between the two commits a
/// worker reloads and sees only the second; after the first commits, the revision has moved (the old
/// fingerprint had not), so the worker reloads again and sees both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_with_a_smaller_id_that_commits_last_still_changes_the_revision()
-> anyhow::Result<()> {
    let isolation = Isolation::new(Backend::PostgresRedis).await?;
    let store = eye_server::open_store(&isolation.config).await?;
    let watcher = RegistryWatcher::new(
        store.clone(),
        SharedSchemaRegistry::new(SchemaRegistry::empty()),
    );
    let (first, second) = (
        store.connection().begin().await?,
        store.connection().begin().await?,
    );
    let first_id = insert_version(&first, "first").await?;
    let second_id = insert_version(&second, "second").await?;
    assert!(first_id < second_id);
    execute(&second, BUMP).await?;
    second.commit().await?;

    let between = store.registry_revision().await?;
    let fingerprint_between = old_fingerprint(&store).await?;
    watcher.ensure_fresh().await?;
    let seen = watcher.shared().snapshot();
    assert!(knows(&seen, "second") && !knows(&seen, "first"));

    execute(&first, BUMP).await?;
    first.commit().await?;
    let after = store.registry_revision().await?;
    assert_eq!(
        old_fingerprint(&store).await?,
        fingerprint_between,
        "max(id) and the retired count miss the late commit"
    );
    assert!(after > between, "{between:?} then {after:?}");
    watcher.ensure_fresh().await?;
    let seen = watcher.shared().snapshot();
    assert!(knows(&seen, "second") && knows(&seen, "first"));
    drop(store);
    isolation.cleanup().await
}

/// Publishing, seeding and retiring each raise the revision; a no-op seed or retirement does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registry_change_raises_the_revision_and_nothing_else_does() -> anyhow::Result<()> {
    for backend in [Backend::PostgresRedis, Backend::Embedded] {
        let isolation = Isolation::new(backend).await?;
        let store = eye_server::open_store(&isolation.config).await?;
        let play = video("play")?;
        let steps: [(&str, bool); 6] = [
            ("seed", true),
            ("seed", false),
            ("publish", true),
            ("retire", true),
            ("retire", false),
            ("publish", true),
        ];
        for (step, raises) in steps {
            let before = store.registry_revision().await?;
            match step {
                "seed" => drop(store.seed_schema(&play, json!({})).await?),
                "publish" => drop(store.publish_schema(&play, json!({})).await?),
                _ => drop(store.retire_event_type(&play).await?),
            }
            let after = store.registry_revision().await?;
            assert_eq!(
                after > before,
                raises,
                "{backend:?} {step}: {before:?} {after:?}"
            );
        }
        drop(store);
        isolation.cleanup().await?;
    }
    Ok(())
}

/// A batch judged right after `PUT /v1/admin/event-types/...` answered: the worker checks the revision
/// before judging, so it applies the schema at once instead of within the next second's refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_judged_right_after_a_publish_uses_the_new_schema() -> anyhow::Result<()> {
    for backend in [Backend::PostgresRedis, Backend::Embedded] {
        let isolation = Isolation::new(backend).await?;
        let store = eye_server::open_store(&isolation.config).await?;
        let shared = SharedSchemaRegistry::new(load_registry(&store).await?);
        let watcher = RegistryWatcher::new(store.clone(), shared.clone());
        watcher.ensure_fresh().await?;
        let key = EventTypeKey::new("video", "play");
        let judge = || {
            shared
                .snapshot()
                .judge(&key, &json!({}), UnknownEventPolicy::Accept)
        };
        assert_eq!(
            judge(),
            Verdict::Valid {
                schema_version: None
            }
        );

        let schema = json!({"type": "object", "required": ["seconds"]});
        store.publish_schema(&video("play")?, schema).await?;
        watcher.ensure_fresh().await?;
        match judge() {
            Verdict::Invalid(rejection) => {
                assert_eq!(
                    rejection.reason(),
                    RejectReason::InvalidPayload,
                    "{backend:?}"
                )
            }
            valid => panic!("{backend:?}: judged by the old registry: {valid:?}"),
        }
        drop(store);
        isolation.cleanup().await?;
    }
    Ok(())
}

//! What a job writes back for the users it evaluated: each user's new state and cursor, its version one
//! higher, and its checkpoint kept, replaced or cleared as the reactor decided (on PostgreSQL all users of
//! a job in one statement per kind of checkpoint write, on SQLite one per user).

use crate::support::{Backend, Isolation, TestApp};
use chrono::{DateTime, TimeDelta, Utc};
use eye_domain::ApplicationId;
use eye_rules::UserRuleState;
use eye_server::Role;
use eye_store::{Checkpoint, CheckpointWrite, EventCursor, RuleWrite, StoredRuleState, UserKey};
use std::collections::HashMap;

const USERS: [&str; 3] = ["keeps", "replaces", "clears"];

fn cursor(start: DateTime<Utc>, n: i64) -> EventCursor {
    EventCursor {
        at: start + TimeDelta::minutes(n),
        id: n,
    }
}

fn checkpoint(at: EventCursor) -> Checkpoint {
    Checkpoint {
        state: UserRuleState::default(),
        cursor: at,
    }
}

async fn write(
    app: &TestApp,
    keys: &[UserKey],
    cursor: EventCursor,
    checkpoints: [CheckpointWrite<'_>; 3],
) -> anyhow::Result<HashMap<String, StoredRuleState>> {
    let application = keys[0].application_id;
    let users: Vec<String> = keys.iter().map(|k| k.user_id.clone()).collect();
    let txn = app.store.begin_ingest().await?;
    let before = txn.lock_rule_states(application, &users).await?;
    let state = UserRuleState::default();
    let writes: Vec<RuleWrite<'_>> = keys
        .iter()
        .zip(checkpoints)
        .map(|(key, checkpoint)| RuleWrite {
            key,
            state: &state,
            cursor: Some(cursor),
            checkpoint,
            notifications: &[],
        })
        .collect();
    txn.write_rule_states(&writes).await?;
    txn.commit().await?;
    Ok(before)
}

async fn states_are_written_with_their_checkpoints(backend: Backend) -> anyhow::Result<()> {
    let app = TestApp::start_with(Isolation::new(backend).await?, Role::Api).await?;
    let application = ApplicationId::from(uuid::Uuid::parse_str(&app.application_id)?);
    let keys: Vec<UserKey> = USERS
        .iter()
        .map(|user| UserKey {
            application_id: application,
            user_id: (*user).to_owned(),
        })
        .collect();
    let start: DateTime<Utc> = "2026-11-30T08:00:00Z".parse()?;
    let (first, second) = (checkpoint(cursor(start, 1)), checkpoint(cursor(start, 2)));
    let set_first = CheckpointWrite::Set(&first);
    write(&app, &keys, cursor(start, 1), [set_first; 3]).await?;
    write(
        &app,
        &keys,
        cursor(start, 3),
        [
            CheckpointWrite::Keep,
            CheckpointWrite::Set(&second),
            CheckpointWrite::Clear,
        ],
    )
    .await?;
    let stored = write(&app, &keys, cursor(start, 4), [CheckpointWrite::Keep; 3]).await?;

    for user in USERS {
        let state = &stored[user];
        assert_eq!(state.version, Some(2), "{user}: written twice");
        assert_eq!(state.cursor, Some(cursor(start, 3)), "{user}");
    }
    let checkpoint_at = |user: &str| stored[user].checkpoint.as_ref().map(|c| c.cursor);
    assert_eq!(checkpoint_at("keeps"), Some(first.cursor));
    assert_eq!(checkpoint_at("replaces"), Some(second.cursor));
    assert_eq!(checkpoint_at("clears"), None);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_are_written_with_their_checkpoints_on_postgres() -> anyhow::Result<()> {
    states_are_written_with_their_checkpoints(Backend::PostgresRedis).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_are_written_with_their_checkpoints_on_the_embedded_default() -> anyhow::Result<()> {
    states_are_written_with_their_checkpoints(Backend::Embedded).await
}

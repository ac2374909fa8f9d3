//! What a job writes back for the users it evaluated: each user's new state and cursor, its version one
//! higher, and its checkpoint kept, replaced or cleared as the reactor decided (on PostgreSQL all users of
//! a job in one statement per kind of checkpoint write, on SQLite one per user).

use crate::support::{Backend, Isolation, TestApp};
use chrono::{DateTime, TimeDelta, Utc};
use eye_domain::ApplicationId;
use eye_rules::{AbsenceTimer, OccasionKey, RuleName, UserRuleState};
use eye_server::Role;
use eye_store::{
    Checkpoint, CheckpointWrite, EventCursor, RuleRevision, RuleWrite, StoredRuleState, UserKey,
};
use sea_orm::{ConnectionTrait, Statement};
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

/// A state with one pending absence timer, due at `deadline`, so the write has a wake-up time to store.
fn waiting_until(user: &str, deadline: DateTime<Utc>) -> anyhow::Result<UserRuleState> {
    let rule = RuleName::parse("writes_test")?;
    let trigger = uuid::Uuid::now_v7();
    Ok(UserRuleState {
        timers: vec![AbsenceTimer {
            occasion: OccasionKey::new(&rule, user, trigger),
            rule,
            user_id: user.to_owned(),
            trigger_event_id: trigger,
            deadline,
            trigger_received_at: deadline - TimeDelta::minutes(10),
            message: format!("{user}, still there?"),
        }],
        ..UserRuleState::default()
    })
}

/// The stored wake-up time and last update of a user's state.
async fn wake_and_update(
    app: &TestApp,
    user: &str,
) -> anyhow::Result<(Option<DateTime<Utc>>, DateTime<Utc>)> {
    let db = app.store.connection();
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT wake_at, updated_at FROM rule_states WHERE user_id = '{user}'"),
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no state for {user}"))?;
    Ok((row.try_get("", "wake_at")?, row.try_get("", "updated_at")?))
}

async fn write(
    app: &TestApp,
    keys: &[UserKey],
    cursor: EventCursor,
    checkpoints: [CheckpointWrite<'_>; 3],
    states: &[UserRuleState; 3],
) -> anyhow::Result<HashMap<String, StoredRuleState>> {
    let application = keys[0].application_id;
    let users: Vec<String> = keys.iter().map(|k| k.user_id.clone()).collect();
    let txn = app.store.begin_ingest().await?;
    let before = txn.lock_rule_states(application, &users).await?;
    let writes: Vec<RuleWrite<'_>> = keys
        .iter()
        .zip(checkpoints)
        .zip(states)
        .map(|((key, checkpoint), state)| RuleWrite {
            key,
            state,
            cursor: Some(cursor),
            checkpoint,
            notifications: &[],
            // A revision per write, to see which one each state kept.
            revision: RuleRevision::from(cursor.id),
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
    let empty = [(); 3].map(|_| UserRuleState::default());
    let set_first = CheckpointWrite::Set(&first);
    write(&app, &keys, cursor(start, 1), [set_first; 3], &empty).await?;
    let (_, first_update) = wake_and_update(&app, USERS[0]).await?;
    // Each user waits until a different time, given to the nanosecond; the database keeps microseconds.
    let deadline = |i: i64| start + TimeDelta::hours(i) + TimeDelta::nanoseconds(123_456_789);
    let waiting = [
        waiting_until(USERS[0], deadline(1))?,
        waiting_until(USERS[1], deadline(2))?,
        waiting_until(USERS[2], deadline(3))?,
    ];
    write(
        &app,
        &keys,
        cursor(start, 3),
        [
            CheckpointWrite::Keep,
            CheckpointWrite::Set(&second),
            CheckpointWrite::Clear,
        ],
        &waiting,
    )
    .await?;
    // A third job reads back what the second wrote (and writes the same states again).
    let stored = write(
        &app,
        &keys,
        cursor(start, 4),
        [CheckpointWrite::Keep; 3],
        &waiting,
    )
    .await?;

    for (i, user) in USERS.iter().enumerate() {
        let state = &stored[*user];
        assert_eq!(state.version, Some(2), "{user}: written twice");
        assert_eq!(state.cursor, Some(cursor(start, 3)), "{user}");
        assert_eq!(state.state, waiting[i], "{user}: the state written");
        assert_eq!(
            state.revision,
            Some(RuleRevision::from(3)),
            "{user}: the rules' revision it was evaluated with"
        );
    }
    for (hours, user) in (1..).zip(USERS) {
        let (wake_at, updated_at) = wake_and_update(&app, user).await?;
        // PostgreSQL keeps microseconds; SQLite keeps the text it was given, to the nanosecond.
        let due = match backend {
            Backend::PostgresRedis => deadline(hours) - TimeDelta::nanoseconds(789),
            Backend::Embedded => deadline(hours),
        };
        assert_eq!(wake_at, Some(due), "{user}: wakes at its timer");
        assert!(
            updated_at > first_update,
            "{user}: updated since the first write"
        );
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

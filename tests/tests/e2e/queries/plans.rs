//! The main queries are served from indexes: PostgreSQL's plans on a few thousand events show no
//! sequential scan of `events`, oldest or newest first. The plans are printed
//! (`cargo test -p eye-tests -- plans --nocapture`). And the worker's rule statements, which a connection
//! first runs on empty tables, still read only the rows they need once the tables have grown.

use crate::support::{Backend, Isolation, TestApp, database_url};
use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use eye_domain::{ApplicationId, Category, EventName, SessionId, UserId};
use eye_server::Role;
use eye_store::queries::{EventFilter, EventOrder, GroupBy, Interval, StatsFilter, TimeRange};
use eye_store::{ReadBack, ReadScope, Store, StoreOptions};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

const EVENTS: u32 = 4000;

/// Events over one day: 200 sessions, 8 categories × 4 names, 100 users, one event every 21 seconds.
fn spread(batch: u32) -> Value {
    let events = (batch * 1000..(batch + 1) * 1000).map(|i| {
        let at = Utc
            .timestamp_opt(1_609_459_200 + i64::from(i) * 21, 0)
            .single()
            .unwrap_or_default();
        json!({"session_id": format!("sess{}", i % 200), "category": format!("cat{}", i % 8),
               "name": format!("name{}", i % 4), "user_id": format!("user{}", i % 100),
               "data": {"i": i}, "timestamp": at.to_rfc3339()})
    });
    Value::Array(events.collect())
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2021, 1, 1, hour, 0, 0)
        .single()
        .unwrap_or_default()
}

fn filter(scope: ReadScope, range: TimeRange) -> EventFilter {
    EventFilter {
        scope,
        session_id: None,
        category: None,
        name: None,
        user_id: None,
        range,
        order: EventOrder::Ascending,
        after: None,
        limit: 100,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_queries_do_not_scan_all_events_on_postgres() -> anyhow::Result<()> {
    let app = TestApp::start(Backend::PostgresRedis).await?;
    for batch in 0..EVENTS / 1000 {
        assert_eq!(
            app.post_events(spread(batch)).await?.status(),
            StatusCode::ACCEPTED
        );
    }
    app.wait_for_count("SELECT COUNT(*) FROM events", i64::from(EVENTS))
        .await?;
    app.store
        .connection()
        .execute_unprepared("ANALYZE events; ANALYZE sessions")
        .await?;
    let web = ReadScope::Applications(vec![uuid::Uuid::parse_str(&app.application_id)?.into()]);
    let hour = TimeRange {
        from: Some(at(10)),
        to: Some(at(11)),
    };
    let day = TimeRange {
        from: Some(at(0)),
        to: Some(at(23)),
    };
    let cases = [
        (
            "session",
            EventFilter {
                session_id: Some(SessionId::parse("sess7")?),
                ..filter(web.clone(), TimeRange::default())
            },
        ),
        (
            "category over one hour",
            EventFilter {
                category: Some(Category::parse("cat3")?),
                ..filter(ReadScope::All, hour)
            },
        ),
        (
            "category and name over one hour",
            EventFilter {
                category: Some(Category::parse("cat3")?),
                name: Some(EventName::parse("name3")?),
                ..filter(ReadScope::All, hour)
            },
        ),
        (
            "user over a day",
            EventFilter {
                user_id: Some(UserId::parse("user5")?),
                ..filter(ReadScope::All, day)
            },
        ),
        ("time range", filter(ReadScope::All, hour)),
        ("application and time range", filter(web.clone(), hour)),
    ];
    // Newest first walks the same indexes backwards.
    let newest_first = cases.clone().map(|(name, filter)| {
        let filter = EventFilter {
            order: EventOrder::Descending,
            ..filter
        };
        (name, filter)
    });
    for (name, filter) in cases.into_iter().chain(newest_first) {
        let name = format!("{name} ({:?})", filter.order);
        let plan = app.store.explain_events(&filter).await?;
        eprintln!("-- {name}\n{}", plan.join("\n"));
        assert!(
            plan.iter().all(|line| !line.contains("Seq Scan on events")),
            "{name}: {plan:?}"
        );
        assert!(
            plan.iter().any(|line| line.contains("Index")),
            "{name}: {plan:?}"
        );
    }
    let stats = StatsFilter {
        scope: ReadScope::All,
        category: None,
        range: hour,
        interval: Interval::Minute,
        group_by: GroupBy::Category,
    };
    let plan = app.store.explain_counts(&stats).await?;
    eprintln!("-- counts per minute over one hour\n{}", plan.join("\n"));
    assert!(
        plan.iter().all(|line| !line.contains("Seq Scan on events")),
        "counts: {plan:?}"
    );
    // Whole hours come from the hourly counts, never from the events.
    let month = StatsFilter {
        interval: Interval::Day,
        range: TimeRange {
            from: day.from,
            to: day.from.map(|from| from + chrono::Duration::days(30)),
        },
        ..stats
    };
    let plan = app.store.explain_counts(&month).await?;
    eprintln!("-- counts per day over 30 days\n{}", plan.join("\n"));
    assert!(
        plan.iter().all(|line| !line.contains("on events")),
        "30 days: {plan:?}"
    );
    assert!(
        plan.iter().any(|line| line.contains("event_counts")),
        "30 days: {plan:?}"
    );
    app.stop().await
}

/// One connection to the test's database, so every statement runs on the connection that cached its plans.
async fn one_connection(app: &TestApp) -> anyhow::Result<Store> {
    let name = app.database_name().context("a PostgreSQL database")?;
    Ok(Store::connect(&StoreOptions {
        url: database_url(name),
        max_connections: 1,
    })
    .await?)
}

/// Rows of `table` read so far, by sequential and index scans alike (a plan that probes an index by its
/// first column only and filters the rest reads as many rows as a sequential scan).
async fn rows_read(store: &Store, table: &str) -> anyhow::Result<i64> {
    store
        .connection()
        .execute_unprepared("SELECT pg_stat_force_next_flush()")
        .await?;
    let row = store
        .connection()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT seq_tup_read + COALESCE(idx_tup_fetch, 0) AS read FROM pg_stat_user_tables \
             WHERE relname = $1",
            [table.into()],
        ))
        .await?
        .context("the table's statistics")?;
    Ok(row.try_get::<i64>("", "read")?)
}

/// The API alone: no worker or timer sweeper reads the rules' tables meanwhile.
async fn api_only() -> anyhow::Result<TestApp> {
    TestApp::start_with(Isolation::new(Backend::PostgresRedis).await?, Role::Api).await
}

/// A worker's first jobs lock users' rule states while `rule_states` is empty, and a connection keeps the
/// plan it settles on then (PostgreSQL's generic plan, after five runs of a prepared statement) until an
/// `ANALYZE` invalidates it. The lock's plan must be an index probe per user even so, or every later job
/// reads every user's row wherever autovacuum does not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_state_lock_reads_only_the_locked_users_after_the_table_grew() -> anyhow::Result<()>
{
    let app = api_only().await?;
    let store = one_connection(&app).await?;
    let application = ApplicationId::from(uuid::Uuid::parse_str(&app.application_id)?);
    // As many users as below: the statement, and the plan its connection caches, are the same.
    let early = ["early1".to_owned(), "early2".to_owned()];
    for _ in 0..8 {
        // Dropped without a commit: the table stays empty.
        let txn = store.begin_ingest().await?;
        txn.lock_rule_states(application, &early).await?;
    }
    store
        .connection()
        .execute_unprepared(&format!(
            "INSERT INTO rule_states (application_id, user_id, state, version, updated_at) \
             SELECT '{}', 'user' || n, '{{}}', 0, now() FROM generate_series(1, 20000) n",
            app.application_id
        ))
        .await?;
    let before = rows_read(&store, "rule_states").await?;
    let txn = store.begin_ingest().await?;
    let locked = txn
        .lock_rule_states(application, &["user7".to_owned(), "user19999".to_owned()])
        .await?;
    drop(txn);
    let read = rows_read(&store, "rule_states").await? - before;
    assert_eq!(locked.len(), 2);
    assert!(
        read < 100,
        "locking 2 of 20,000 users read {read} rows of rule_states"
    );
    app.stop().await
}

/// The same for the rules' read-back of a user's events: whatever plan its connection cached while
/// `events` was empty, it reads that user's events, not every event of the types the rules name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_read_back_reads_only_the_users_events_after_the_table_grew() -> anyhow::Result<()>
{
    let app = api_only().await?;
    let store = one_connection(&app).await?;
    let application = ApplicationId::from(uuid::Uuid::parse_str(&app.application_id)?);
    let named = [("plan test", "started"), ("plan test", "finished")];
    let read_back = |user: &str| {
        let (store, user) = (store.clone(), user.to_owned());
        async move {
            let txn = store.begin_ingest().await?;
            let from = ReadBack {
                user_id: user,
                ..ReadBack::default()
            };
            let found = txn.rule_events_after(application, &[from], &named).await?;
            anyhow::Ok(
                found
                    .into_values()
                    .map(|events| events.len())
                    .sum::<usize>(),
            )
        }
    };
    for _ in 0..8 {
        read_back("early").await?;
    }
    // 20,000 events of the named types by 2,000 other users, and 3 of the user read below.
    store
        .connection()
        .execute_unprepared(&format!(
            "INSERT INTO events (event_id, application_id, session_id, category, name, data, \
                 \"timestamp\", received_at, stored_at, user_id) \
             SELECT gen_random_uuid(), '{app}', 's' || n % 2000, 'plan test', \
                 CASE WHEN n % 2 = 0 THEN 'started' ELSE 'finished' END, '{{}}', \
                 now() - n * interval '1 second', now(), now(), \
                 CASE WHEN n <= 3 THEN 'reader' ELSE 'user' || n % 2000 END \
             FROM generate_series(1, 20003) n",
            app = app.application_id
        ))
        .await?;
    let before = rows_read(&store, "events").await?;
    let found = read_back("reader").await?;
    let read = rows_read(&store, "events").await? - before;
    assert_eq!(found, 3);
    assert!(
        read < 100,
        "reading back 3 events of one user read {read} rows of events"
    );
    app.stop().await
}

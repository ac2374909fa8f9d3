//! The main queries are served from indexes: PostgreSQL's plans on a few thousand events show no
//! sequential scan of `events`, oldest or newest first. The plans are printed
//! (`cargo test -p eye-tests -- plans --nocapture`).

use crate::support::{Backend, TestApp};
use chrono::{DateTime, TimeZone, Utc};
use eye_domain::{Category, EventName, SessionId, UserId};
use eye_store::ReadScope;
use eye_store::queries::{EventFilter, EventOrder, GroupBy, Interval, StatsFilter, TimeRange};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
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

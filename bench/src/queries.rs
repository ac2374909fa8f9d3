//! Latency of the analysts' queries: over HTTP when the query API answers, otherwise the equivalent SQL
//! straight on PostgreSQL (and the result says which).

use crate::stats::LatencySummary;
use crate::workload::{self, Spec};
use anyhow::Context;
use chrono::{DateTime, Duration as ChronoDuration, DurationRound, Utc};
use rand::Rng;
use serde::Serialize;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What counts are grouped by (`group_by` of `GET /v1/stats/events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grouping {
    /// Per category.
    Category,
    /// Per event name.
    Name,
    /// Per application.
    Application,
}

impl Grouping {
    fn word(self) -> &'static str {
        match self {
            Self::Category => "category",
            Self::Name => "name",
            Self::Application => "application",
        }
    }

    /// The events' column, for the SQL equivalent.
    fn column(self) -> &'static str {
        match self {
            Self::Category => "category",
            Self::Name => "name",
            Self::Application => "application_id::text",
        }
    }
}

/// The analysts' queries of issues 5 and 14.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Query {
    /// A session's events, in order.
    SessionEvents,
    /// A category over one hour, first page of 100.
    CategoryHour,
    /// A user's events over one day, first page of 100.
    UserDay,
    /// One day's event counts per hour.
    DayPerHour(Grouping),
    /// Thirty days' event counts per day.
    MonthPerDay(Grouping),
}

impl Query {
    /// Every query, in report order.
    pub const ALL: [Query; 9] = [
        Self::SessionEvents,
        Self::CategoryHour,
        Self::UserDay,
        Self::DayPerHour(Grouping::Category),
        Self::DayPerHour(Grouping::Name),
        Self::DayPerHour(Grouping::Application),
        Self::MonthPerDay(Grouping::Category),
        Self::MonthPerDay(Grouping::Name),
        Self::MonthPerDay(Grouping::Application),
    ];

    /// The key in the result JSON.
    pub fn key(self) -> &'static str {
        match self {
            Self::SessionEvents => "session_events",
            Self::CategoryHour => "category_hour_first_page",
            Self::UserDay => "user_day_first_page",
            Self::DayPerHour(Grouping::Category) => "day_counts_per_hour_by_category",
            Self::DayPerHour(Grouping::Name) => "day_counts_per_hour_by_name",
            Self::DayPerHour(Grouping::Application) => "day_counts_per_hour_by_application",
            Self::MonthPerDay(Grouping::Category) => "month_counts_per_day_by_category",
            Self::MonthPerDay(Grouping::Name) => "month_counts_per_day_by_name",
            Self::MonthPerDay(Grouping::Application) => "month_counts_per_day_by_application",
        }
    }

    /// The p95 target of issue 14, in milliseconds: 20 for thirty days of counts, 5 for the rest.
    pub fn target_p95_ms(self) -> f64 {
        match self {
            Self::MonthPerDay(_) => 20.0,
            _ => 5.0,
        }
    }

    /// The equivalent SQL: `$1` application, then the key (session, category or user) and the time range
    /// where the query has them.
    fn sql(self) -> String {
        match self {
            Self::DayPerHour(grouping) | Self::MonthPerDay(grouping) => {
                let unit = match self {
                    Self::DayPerHour(_) => "hour",
                    _ => "day",
                };
                format!(
                    "SELECT date_trunc('{unit}', timestamp) AS bucket, {} AS grp, count(*) FROM events \
                     WHERE application_id = $1 AND timestamp >= $2 AND timestamp < $3 GROUP BY 1, 2 ORDER BY 1, 2",
                    grouping.column()
                )
            }
            _ => self.listing_sql().to_owned(),
        }
    }

    fn listing_sql(self) -> &'static str {
        match self {
            Self::SessionEvents => concat!(
                "SELECT event_id, application_id, session_id, category, name, data, timestamp, received_at, user_id, device_id",
                " FROM events WHERE application_id = $1 AND session_id = $2 ORDER BY timestamp, id"
            ),
            Self::CategoryHour => concat!(
                "SELECT event_id, application_id, session_id, category, name, data, timestamp, received_at, user_id, device_id",
                " FROM events WHERE application_id = $1 AND category = $2 AND timestamp >= $3 AND timestamp < $4",
                " ORDER BY timestamp, id LIMIT 100"
            ),
            Self::UserDay => concat!(
                "SELECT event_id, application_id, session_id, category, name, data, timestamp, received_at, user_id, device_id",
                " FROM events WHERE application_id = $1 AND user_id = $2 AND timestamp >= $3 AND timestamp < $4",
                " ORDER BY timestamp, id LIMIT 100"
            ),
            Self::DayPerHour(_) | Self::MonthPerDay(_) => "",
        }
    }
}

/// The parameters of one query, derived from a stored event so every query finds rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Session, category or user, as the query needs.
    pub key: String,
    /// Inclusive start.
    pub from: DateTime<Utc>,
    /// Exclusive end.
    pub to: DateTime<Utc>,
}

/// The parameters of `query` that select the session, hour or day of event `spec`.
pub fn params(query: Query, spec: &Spec) -> Params {
    let hour = spec
        .timestamp
        .duration_trunc(ChronoDuration::hours(1))
        .unwrap_or(spec.timestamp);
    let day = spec
        .timestamp
        .duration_trunc(ChronoDuration::days(1))
        .unwrap_or(spec.timestamp);
    let (key, from, to) = match query {
        Query::SessionEvents => (spec.session_id.clone(), spec.timestamp, spec.timestamp),
        Query::CategoryHour => (
            spec.category.to_owned(),
            hour,
            hour + ChronoDuration::hours(1),
        ),
        Query::UserDay => (spec.user_id.clone(), day, day + ChronoDuration::days(1)),
        Query::DayPerHour(_) => (String::new(), day, day + ChronoDuration::days(1)),
        // The thirty days that end with the event's day.
        Query::MonthPerDay(_) => (
            String::new(),
            day - ChronoDuration::days(29),
            day + ChronoDuration::days(1),
        ),
    };
    Params { key, from, to }
}

/// Where the queries go.
pub enum Executor {
    /// The query API of issue 5, with the admin token.
    Http {
        client: reqwest::Client,
        base: String,
        token: String,
        application: Uuid,
    },
    /// The equivalent SQL.
    Sql { pool: PgPool, application: Uuid },
}

/// Latencies of every query, and how they were measured.
#[derive(Debug, Clone, Serialize)]
pub struct QueryResults {
    /// `http` or `sql`.
    pub via: &'static str,
    /// Events in the table when measured.
    pub events: u64,
    /// Per query.
    pub latency: BTreeMap<&'static str, LatencySummary>,
    /// Rows (SQL) or bytes (HTTP) the last sample of each query returned, to show it found data.
    pub last_result_size: BTreeMap<&'static str, u64>,
}

/// Runs each query `warmup + iterations` times over random stored events `0..events`.
pub async fn measure(
    exec: &Executor,
    events: u64,
    warmup: usize,
    iterations: usize,
) -> anyhow::Result<QueryResults> {
    let mut latency = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    for query in Query::ALL {
        let mut samples = Vec::with_capacity(iterations);
        for round in 0..warmup + iterations {
            let spec = workload::spec(rand::rng().random_range(0..events.max(1)));
            let started = Instant::now();
            let size = exec.run(query, &params(query, &spec)).await?;
            if round >= warmup {
                samples.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
            }
            sizes.insert(query.key(), size);
        }
        let summary = LatencySummary::from_micros(&mut samples).context("no samples")?;
        crate::progress::note(&format!(
            "  [queries] {:<34} p50 {:7.2} ms  p95 {:7.2} ms",
            query.key(),
            summary.p50_ms,
            summary.p95_ms
        ));
        latency.insert(query.key(), summary);
    }
    let via = match exec {
        Executor::Http { .. } => "http",
        Executor::Sql { .. } => "sql",
    };
    Ok(QueryResults {
        via,
        events,
        latency,
        last_result_size: sizes,
    })
}

impl Executor {
    async fn run(&self, query: Query, params: &Params) -> anyhow::Result<u64> {
        match self {
            Self::Sql { pool, application } => {
                let sql = sqlx::query(sqlx::AssertSqlSafe(query.sql())).bind(application);
                let bound = match query {
                    Query::SessionEvents => sql.bind(&params.key),
                    Query::CategoryHour | Query::UserDay => {
                        sql.bind(&params.key).bind(params.from).bind(params.to)
                    }
                    Query::DayPerHour(_) | Query::MonthPerDay(_) => {
                        sql.bind(params.from).bind(params.to)
                    }
                };
                Ok(bound.fetch_all(pool).await?.len() as u64)
            }
            Self::Http {
                client,
                base,
                token,
                application,
            } => {
                let url = http_url(base, *application, query, params);
                let response = client
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await?
                    .error_for_status()?;
                Ok(response.bytes().await?.len() as u64)
            }
        }
    }
}

/// The issue-5 endpoint of `query`.
pub fn http_url(base: &str, application: Uuid, query: Query, p: &Params) -> String {
    let (from, to) = (
        p.from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        p.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let key = urlencode(&p.key);
    match query {
        Query::SessionEvents => {
            format!("{base}/v1/sessions/{key}/events?application_id={application}")
        }
        Query::CategoryHour => format!(
            "{base}/v1/events?application_id={application}&category={key}&from={from}&to={to}&limit=100"
        ),
        Query::UserDay => format!(
            "{base}/v1/events?application_id={application}&user_id={key}&from={from}&to={to}&limit=100"
        ),
        Query::DayPerHour(grouping) => format!(
            "{base}/v1/stats/events?group_by={}&interval=hour&from={from}&to={to}",
            grouping.word()
        ),
        Query::MonthPerDay(grouping) => format!(
            "{base}/v1/stats/events?group_by={}&interval=day&from={from}&to={to}",
            grouping.word()
        ),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether the query API of issue 5 answers (`GET /v1/events` with the admin token answers 200).
pub async fn http_available(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    application: Uuid,
) -> bool {
    let url = format!("{base}/v1/events?application_id={application}&limit=1");
    let answer = client
        .get(url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    answer.is_ok_and(|r| r.status().is_success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_hour_is_the_clock_hour_of_the_chosen_event() {
        let spec = workload::spec(10_000); // 2026-01-01 + 25,000 s = 06:56:40
        let p = params(Query::CategoryHour, &spec);
        assert_eq!(p.from.to_rfc3339(), "2026-01-01T06:00:00+00:00");
        assert_eq!(p.to - p.from, ChronoDuration::hours(1));
        assert_eq!(p.key, spec.category);
    }

    #[test]
    fn a_user_day_is_the_calendar_day_of_the_chosen_event() {
        let spec = workload::spec(100_000); // + 250,000 s = 2026-01-03T21:26:40
        let p = params(Query::UserDay, &spec);
        assert_eq!(p.from.to_rfc3339(), "2026-01-03T00:00:00+00:00");
        assert_eq!(p.key, spec.user_id);
    }

    #[test]
    fn http_urls_follow_the_query_api_and_escape_their_values() {
        let p = params(Query::CategoryHour, &workload::spec(0));
        let url = http_url("http://h", Uuid::nil(), Query::CategoryHour, &p);
        assert!(url.starts_with("http://h/v1/events?application_id=00000000-0000-0000-0000-000000000000&category=page%20interaction&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z"), "{url}");
    }

    #[test]
    fn every_query_is_scoped_to_the_application_and_pages_where_it_lists() {
        for query in Query::ALL {
            assert!(query.sql().contains("application_id = $1"), "{query:?}");
            let url = http_url(
                "http://h",
                Uuid::nil(),
                query,
                &params(query, &workload::spec(0)),
            );
            let ranged = query != Query::SessionEvents;
            assert_eq!(url.contains("&from="), ranged, "{url}");
        }
        let month = params(Query::MonthPerDay(Grouping::Name), &workload::spec(100_000));
        assert_eq!(month.to - month.from, ChronoDuration::days(30));
        assert!(
            http_url(
                "http://h",
                Uuid::nil(),
                Query::MonthPerDay(Grouping::Name),
                &month
            )
            .contains("group_by=name&interval=day")
        );
        assert!(Query::CategoryHour.sql().ends_with("LIMIT 100"));
        assert!(Query::UserDay.sql().ends_with("LIMIT 100"));
    }
}

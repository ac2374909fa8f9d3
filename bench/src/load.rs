//! The HTTP load generator: N connections sending events as fast as the service answers, for a fixed time
//! or a fixed number of events, whichever comes first.

use crate::progress::Progress;
use crate::stats::{LatencySummary, rate};
use crate::workload;
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// The service under test, as an ingest client sees it.
#[derive(Clone)]
pub struct Target {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Target {
    /// One shared client (keep-alive pool sized to `connections`) for `base` with an ingest key.
    pub fn new(base: &str, key: &str, connections: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        })
    }
}

/// What each request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `POST /v1/events` with this many events.
    Batch(u64),
    /// `POST /v1/event`.
    Single,
    /// `POST /v1/batch` (the Segment tracking API) with this many `track` messages.
    Segment(u64),
}

impl Shape {
    fn events_per_request(self) -> u64 {
        match self {
            Self::Batch(n) | Self::Segment(n) => n,
            Self::Single => 1,
        }
    }
}

/// How much load to send.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Request shape.
    pub shape: Shape,
    /// Concurrent connections (one task each).
    pub connections: usize,
    /// Stop sending after this long.
    pub duration: Duration,
    /// Stop sending after this many events (bounds the run even if the service is very fast).
    pub max_events: u64,
}

/// What one load phase achieved.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    /// Requests answered 202.
    pub requests_accepted: u64,
    /// Events in those requests.
    pub events_accepted: u64,
    /// Requests answered otherwise or not answered, by status (0: no answer).
    pub failures: BTreeMap<u16, u64>,
    /// From the first request sent to the last answer received, in seconds.
    pub elapsed_s: f64,
    /// Events accepted per second.
    pub events_per_s: f64,
    /// Requests accepted per second.
    pub requests_per_s: f64,
    /// Latency of accepted requests.
    pub latency: Option<LatencySummary>,
}

/// The next event number of the run, shared by every phase so no two events are the same.
#[derive(Debug, Default, Clone)]
pub struct Cursor(Arc<AtomicU64>);

impl Cursor {
    /// A cursor starting at `first`.
    pub fn starting_at(first: u64) -> Self {
        Self(Arc::new(AtomicU64::new(first)))
    }

    /// The next event number not handed out yet.
    pub fn position(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct TaskTally {
    accepted: u64,
    events: u64,
    failures: BTreeMap<u16, u64>,
    latencies_us: Vec<u32>,
}

/// Sends load as `plan` says, starting at the cursor's event number, and reports progress while it runs.
pub async fn run(target: &Target, plan: Plan, cursor: &Cursor, progress: &Progress) -> LoadResult {
    let limit = cursor.position() + plan.max_events;
    let deadline = Instant::now() + plan.duration;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..plan.connections.max(1) {
        let (target, cursor, progress) = (target.clone(), cursor.clone(), progress.clone());
        tasks.spawn(async move {
            connection(target, plan.shape, cursor, limit, deadline, progress).await
        });
    }
    let mut total = TaskTally::default();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(tally) = joined {
            merge(&mut total, tally);
        }
    }
    // Each connection's last claim past the limit was never sent: give those numbers back.
    cursor.0.fetch_min(limit, Ordering::Relaxed);
    summarise(total, started.elapsed())
}

async fn connection(
    target: Target,
    shape: Shape,
    cursor: Cursor,
    limit: u64,
    deadline: Instant,
    progress: Progress,
) -> TaskTally {
    let mut tally = TaskTally::default();
    let size = shape.events_per_request();
    while Instant::now() < deadline {
        let first = cursor.0.fetch_add(size, Ordering::Relaxed);
        if first >= limit {
            break;
        }
        let count = size.min(limit - first);
        let sent = Instant::now();
        match send(&target, shape, first, count).await {
            // 202 on The Eye's endpoints, the plain 200 the Segment SDKs expect on /v1/batch.
            Ok(200 | 202) => {
                let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                tally.latencies_us.push(us);
                tally.accepted += 1;
                tally.events += count;
                progress.add(count);
            }
            Ok(status) => *tally.failures.entry(status).or_default() += 1,
            Err(_) => *tally.failures.entry(0).or_default() += 1,
        }
    }
    tally
}

async fn send(target: &Target, shape: Shape, first: u64, count: u64) -> reqwest::Result<u16> {
    let (path, body) = match shape {
        Shape::Batch(_) => ("/v1/events", workload::batch_body(first, count)),
        Shape::Single => ("/v1/event", workload::spec(first).to_wire()),
        Shape::Segment(_) => ("/v1/batch", workload::segment_body(first, count)),
    };
    let response = target
        .client
        .post(format!("{}{path}", target.base))
        .bearer_auth(&target.key)
        .json(&body)
        .send()
        .await?;
    let status = response.status().as_u16();
    // Read the answer to the end so the connection goes back to the pool.
    response.bytes().await?;
    Ok(status)
}

fn merge(total: &mut TaskTally, tally: TaskTally) {
    total.accepted += tally.accepted;
    total.events += tally.events;
    for (status, n) in tally.failures {
        *total.failures.entry(status).or_default() += n;
    }
    total.latencies_us.extend(tally.latencies_us);
}

fn summarise(mut total: TaskTally, elapsed: Duration) -> LoadResult {
    LoadResult {
        requests_accepted: total.accepted,
        events_accepted: total.events,
        failures: total.failures,
        elapsed_s: elapsed.as_secs_f64(),
        events_per_s: rate(total.events, elapsed),
        requests_per_s: rate(total.accepted, elapsed),
        latency: LatencySummary::from_micros(&mut total.latencies_us),
    }
}

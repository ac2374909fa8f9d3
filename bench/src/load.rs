//! The HTTP load generator: N connections sending events as fast as the service answers, for a fixed time
//! or a fixed number of events, whichever comes first.

use crate::progress::Progress;
use crate::stats::{LatencySummary, rate};
use crate::workload;
use anyhow::Context;
use bytes::Bytes;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// The service under test, as an ingest client sees it: one or more API processes behind the same key.
#[derive(Clone)]
pub struct Target {
    client: reqwest::Client,
    bases: Arc<[String]>,
    key: String,
}

/// One connection's view of the target: the API base URL it sends to.
#[derive(Clone)]
struct Endpoint {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Target {
    /// One shared client (keep-alive pool sized to `connections` per API) for the API base URLs `bases`
    /// (see [`parse_urls`]) with an ingest key.
    pub fn new(bases: &[String], key: &str, connections: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(!bases.is_empty(), "no API base URL to send to");
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            client,
            bases: bases
                .iter()
                .map(|b| b.trim_end_matches('/').to_owned())
                .collect(),
            key: key.to_owned(),
        })
    }

    /// The API base URLs, in the order connections are spread over them.
    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    fn endpoint(&self, connection: usize) -> Endpoint {
        Endpoint {
            client: self.client.clone(),
            base: self.bases[base_index(connection, self.bases.len())].clone(),
            key: self.key.clone(),
        }
    }
}

/// Which of `bases` API processes connection number `connection` sends to: round-robin, so each gets
/// `connections / bases` connections and the first `connections % bases` one more.
pub fn base_index(connection: usize, bases: usize) -> usize {
    connection % bases.max(1)
}

/// API base URLs from the command line or `EYE_BENCH_URL`: each value may hold several, comma-separated
/// (`--url a,b` or `--url a --url b`); blanks are skipped, trailing slashes dropped, duplicates refused (two
/// connections' worth of load on one process would skew the spread silently).
pub fn parse_urls<S: AsRef<str>>(values: &[S]) -> anyhow::Result<Vec<String>> {
    let mut urls: Vec<String> = Vec::new();
    for url in values.iter().flat_map(|v| v.as_ref().split(',')) {
        let url = url.trim().trim_end_matches('/');
        if url.is_empty() {
            continue;
        }
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "{url:?} is not an http(s) URL"
        );
        anyhow::ensure!(!urls.iter().any(|u| u == url), "{url} is given twice");
        urls.push(url.to_owned());
    }
    anyhow::ensure!(!urls.is_empty(), "no URL given");
    Ok(urls)
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
    fn path(self) -> &'static str {
        match self {
            Self::Batch(_) => "/v1/events",
            Self::Single => "/v1/event",
            Self::Segment(_) => "/v1/batch",
        }
    }

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

/// Request bodies rendered before a timed phase starts, so that the load generator's own JSON work is not
/// part of what the phase measures (the raw COPY that end to end is compared with reads its rows out
/// untimed too). Events `first..first + events`, `shape`'s number per body.
#[derive(Clone)]
pub struct Prepared {
    first: u64,
    events: u64,
    per_request: u64,
    bodies: Arc<[Bytes]>,
}

impl Prepared {
    /// Renders every body of the next `events` events from `cursor`, as [`run`] would send them.
    pub fn render(shape: Shape, cursor: &Cursor, events: u64) -> anyhow::Result<Self> {
        let first = cursor.position();
        let per_request = shape.events_per_request();
        let bodies = (first..first + events)
            .step_by(per_request as usize)
            .map(|at| {
                let count = per_request.min(first + events - at);
                serde_json::to_vec(&body(shape, at, count)).map(Bytes::from)
            })
            .collect::<Result<Arc<[Bytes]>, _>>()?;
        Ok(Self {
            first,
            events,
            per_request,
            bodies,
        })
    }

    /// The body of the request whose first event is `first`, if it was rendered for `count` events.
    fn body(&self, first: u64, count: u64) -> Option<Bytes> {
        let offset = first.checked_sub(self.first)?;
        let body = self.bodies.get((offset / self.per_request) as usize)?;
        let whole = offset % self.per_request == 0;
        let rendered = self
            .per_request
            .min((self.first + self.events).checked_sub(first)?);
        (whole && rendered == count).then(|| body.clone())
    }
}

#[derive(Default)]
struct TaskTally {
    accepted: u64,
    events: u64,
    failures: BTreeMap<u16, u64>,
    latencies_us: Vec<u32>,
}

/// Sends load as `plan` says, starting at the cursor's event number, and reports progress while it runs;
/// bodies come from `prepared` where it has them, and are rendered as they are sent otherwise.
pub async fn run(
    target: &Target,
    plan: Plan,
    cursor: &Cursor,
    prepared: Option<&Prepared>,
    progress: &Progress,
) -> LoadResult {
    let limit = cursor.position() + plan.max_events;
    let deadline = Instant::now() + plan.duration;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for n in 0..plan.connections.max(1) {
        let (endpoint, cursor, progress) = (target.endpoint(n), cursor.clone(), progress.clone());
        let prepared = prepared.cloned();
        tasks.spawn(async move {
            let sender = Sender {
                endpoint,
                shape: plan.shape,
                prepared,
            };
            connection(sender, cursor, limit, deadline, progress).await
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

/// One connection's way of sending requests.
struct Sender {
    endpoint: Endpoint,
    shape: Shape,
    prepared: Option<Prepared>,
}

async fn connection(
    sender: Sender,
    cursor: Cursor,
    limit: u64,
    deadline: Instant,
    progress: Progress,
) -> TaskTally {
    let mut tally = TaskTally::default();
    let size = sender.shape.events_per_request();
    while Instant::now() < deadline {
        let first = cursor.0.fetch_add(size, Ordering::Relaxed);
        if first >= limit {
            break;
        }
        let count = size.min(limit - first);
        let sent = Instant::now();
        match sender.send(first, count).await {
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

impl Sender {
    /// Sends events `first..first + count`; answers the status.
    async fn send(&self, first: u64, count: u64) -> reqwest::Result<u16> {
        let target = &self.endpoint;
        let request = target
            .client
            .post(format!("{}{}", target.base, self.shape.path()))
            .bearer_auth(&target.key);
        let request = match self.prepared.as_ref().and_then(|p| p.body(first, count)) {
            Some(rendered) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(rendered),
            None => request.json(&body(self.shape, first, count)),
        };
        let response = request.send().await?;
        let status = response.status().as_u16();
        // Read the answer to the end so the connection goes back to the pool.
        response.bytes().await?;
        Ok(status)
    }
}

/// The body of a request carrying events `first..first + count`.
fn body(shape: Shape, first: u64, count: u64) -> serde_json::Value {
    match shape {
        Shape::Batch(_) => workload::batch_body(first, count),
        Shape::Single => workload::spec(first).to_wire(),
        Shape::Segment(_) => workload::segment_body(first, count),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_bodies_are_the_requests_a_connection_would_send_and_nothing_else()
    -> anyhow::Result<()> {
        let prepared = Prepared::render(Shape::Batch(100), &Cursor::starting_at(1000), 250)?;
        let events = |body: Option<Bytes>| -> anyhow::Result<Vec<u64>> {
            let body: serde_json::Value = serde_json::from_slice(&body.context("a body")?)?;
            let events = body["events"].as_array().context("events")?;
            Ok(events
                .iter()
                .filter_map(|e| e["data"]["n"].as_u64())
                .collect())
        };
        assert_eq!(
            events(prepared.body(1000, 100))?,
            (1000..1100).collect::<Vec<_>>()
        );
        assert_eq!(
            events(prepared.body(1200, 50))?,
            (1200..1250).collect::<Vec<_>>()
        );
        assert!(
            prepared.body(1050, 100).is_none(),
            "not where a body starts"
        );
        assert!(
            prepared.body(1200, 100).is_none(),
            "only 50 were rendered there"
        );
        assert!(
            prepared.body(1300, 100).is_none(),
            "past the rendered events"
        );
        assert!(prepared.body(900, 100).is_none(), "before them");
        assert!(
            prepared.body(1260, 40).is_none(),
            "in the last body's slot, past its end"
        );
        Ok(())
    }

    #[test]
    fn one_url_is_a_list_of_one_without_its_trailing_slash() {
        let urls = parse_urls(&["http://127.0.0.1:18080/"]).expect("valid");
        assert_eq!(urls, ["http://127.0.0.1:18080"]);
    }

    #[test]
    fn urls_may_be_comma_separated_repeated_or_both() {
        let cases: [&[&str]; 3] = [
            &["http://a:1, http://b:2,http://c:3"],
            &["http://a:1", "http://b:2", "http://c:3"],
            &["http://a:1,", "http://b:2,http://c:3/", ""],
        ];
        for values in cases {
            let urls = parse_urls(values).expect("valid");
            assert_eq!(
                urls,
                ["http://a:1", "http://b:2", "http://c:3"],
                "{values:?}"
            );
        }
    }

    #[test]
    fn empty_duplicate_or_schemeless_urls_are_refused() {
        let cases: [&[&str]; 4] = [
            &[],
            &[" , "],
            &["http://a:1,http://a:1/"],
            &["127.0.0.1:18080"],
        ];
        for values in cases {
            assert!(parse_urls(values).is_err(), "{values:?}");
        }
    }

    #[test]
    fn connections_are_spread_round_robin_over_the_apis() {
        let per_api = |connections: usize, apis: usize| {
            let mut counts = vec![0; apis];
            for n in 0..connections {
                counts[base_index(n, apis)] += 1;
            }
            counts
        };
        assert_eq!(per_api(32, 1), [32]);
        assert_eq!(per_api(32, 2), [16, 16]);
        assert_eq!(per_api(32, 3), [11, 11, 10]);
        assert_eq!(per_api(2, 4), [1, 1, 0, 0]);
        assert_eq!(base_index(5, 0), 0);
    }

    #[test]
    fn each_connection_sends_to_its_own_api() {
        let bases = parse_urls(&["http://a:1,http://b:2"]).expect("valid");
        let target = Target::new(&bases, "key", 4).expect("client");
        let sent_to: Vec<String> = (0..4).map(|n| target.endpoint(n).base).collect();
        assert_eq!(
            sent_to,
            ["http://a:1", "http://b:2", "http://a:1", "http://b:2"]
        );
    }
}

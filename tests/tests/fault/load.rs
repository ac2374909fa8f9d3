//! The load generator: clients posting prepared batches with client-set event ids to `POST /v1/events`,
//! at a steady pace, recording every id answered 202. A batch that gets anything else (503, 500, a cut
//! connection) is sent again with the SAME ids until it is answered 202, so "accepted once" is exact.

use anyhow::Context;
use chrono::Utc;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Longest a load may run, retries included; far beyond what any scenario needs.
const LOAD_LIMIT: Duration = Duration::from_secs(300);

/// Pause before sending a refused batch again.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// One request's worth of events, serialized once.
pub struct Batch {
    ids: Vec<Uuid>,
    body: Vec<u8>,
}

impl Batch {
    /// A batch of events that each carry an `event_id`.
    pub fn new(events: Vec<Value>) -> anyhow::Result<Self> {
        let ids = events
            .iter()
            .map(|e| {
                let id = e["event_id"].as_str().context("event without event_id")?;
                Ok(id.parse()?)
            })
            .collect::<anyhow::Result<Vec<Uuid>>>()?;
        let body = serde_json::to_vec(&json!({ "events": events }))?;
        Ok(Self { ids, body })
    }
}

/// `batches` batches of `size` plain events with fresh ids, spread over a few sessions per batch.
pub fn tick_batches(batches: usize, size: usize) -> anyhow::Result<Vec<Batch>> {
    let now = Utc::now().to_rfc3339();
    (0..batches)
        .map(|b| {
            let events = (0..size)
                .map(|n| {
                    json!({"event_id": Uuid::new_v4(), "session_id": format!("s{}-{}", b % 16, n % 4),
                           "category": "load", "name": "tick", "timestamp": now, "data": {"n": n}})
                })
                .collect();
            Batch::new(events)
        })
        .collect()
}

/// How the batches are sent.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Concurrent clients.
    pub clients: usize,
    /// Events per second over all clients (each client sends one batch per tick).
    pub events_per_second: usize,
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    acknowledged: Mutex<HashSet<Uuid>>,
    acknowledged_count: AtomicUsize,
    answers: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn answer(&self, what: String) {
        if let Ok(mut answers) = self.answers.lock() {
            *answers.entry(what).or_default() += 1;
        }
    }
}

/// The outcome of a finished load.
pub struct LoadReport {
    /// Every id answered 202.
    pub acknowledged: HashSet<Uuid>,
    /// Every id sent, answered or not.
    pub sent: HashSet<Uuid>,
    /// Answers by kind: status codes, `connection error`.
    pub answers: BTreeMap<String, u64>,
}

impl LoadReport {
    /// How many attempts were answered anything but 202 (or not answered at all).
    pub fn not_accepted(&self) -> u64 {
        self.answers
            .iter()
            .filter(|(kind, _)| kind.as_str() != "202")
            .map(|(_, n)| n)
            .sum()
    }
}

/// A running load.
pub struct Load {
    tally: Arc<Tally>,
    sent: HashSet<Uuid>,
    clients: JoinSet<anyhow::Result<()>>,
}

impl Load {
    /// Starts `pace.clients` clients posting `batches` to `base` with `key`.
    pub fn start(base: &str, key: &str, batches: Vec<Batch>, pace: Pace) -> anyhow::Result<Self> {
        let size = batches.first().map_or(1, |b| b.ids.len());
        let sent = batches.iter().flat_map(|b| b.ids.iter().copied()).collect();
        let period =
            Duration::from_secs_f64((pace.clients * size) as f64 / pace.events_per_second as f64);
        let work = Arc::new(Mutex::new(VecDeque::from(batches)));
        let tally = Arc::new(Tally::default());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let client = Client {
            url: format!("{base}/v1/events"),
            key: key.to_owned(),
            http,
            tally: tally.clone(),
            work,
            period,
            deadline: Instant::now() + LOAD_LIMIT,
        };
        let mut clients = JoinSet::new();
        for _ in 0..pace.clients {
            clients.spawn(client.clone().run());
        }
        Ok(Self {
            tally,
            sent,
            clients,
        })
    }

    /// Events answered 202 so far.
    pub fn acknowledged(&self) -> usize {
        self.tally.acknowledged_count.load(Ordering::Relaxed)
    }

    /// Waits until at least `events` are acknowledged: the moment a scenario strikes. A client that
    /// failed ends the wait with its error.
    pub async fn wait_for_acknowledged(&mut self, events: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.acknowledged() < events {
            if let Some(ended) = self.clients.try_join_next() {
                ended??;
            }
            anyhow::ensure!(
                started.elapsed() < LOAD_LIMIT && !self.clients.is_empty(),
                "only {} of {events} events acknowledged",
                self.acknowledged()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Waits for every batch to be acknowledged.
    pub async fn finish(mut self) -> anyhow::Result<LoadReport> {
        while let Some(result) = self.clients.join_next().await {
            result??;
        }
        Ok(LoadReport {
            acknowledged: take(&self.tally.acknowledged)?,
            sent: self.sent,
            answers: take(&self.tally.answers)?,
        })
    }
}

fn take<T: Default>(shared: &Mutex<T>) -> anyhow::Result<T> {
    let mut guard = shared.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    Ok(std::mem::take(&mut *guard))
}

#[derive(Clone)]
struct Client {
    url: String,
    key: String,
    http: reqwest::Client,
    tally: Arc<Tally>,
    work: Arc<Mutex<VecDeque<Batch>>>,
    period: Duration,
    deadline: Instant,
}

impl Client {
    async fn run(self) -> anyhow::Result<()> {
        let mut ticks = tokio::time::interval(self.period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let next = self
                .work
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .pop_front();
            let Some(batch) = next else { return Ok(()) };
            self.deliver(&batch).await?;
        }
    }

    /// Sends `batch` until it is answered 202.
    async fn deliver(&self, batch: &Batch) -> anyhow::Result<()> {
        loop {
            let response = self
                .http
                .post(&self.url)
                .bearer_auth(&self.key)
                .header("content-type", "application/json")
                .body(batch.body.clone())
                .send()
                .await;
            let status = match response {
                Ok(response) => response.status(),
                Err(_) => {
                    self.tally.answer("connection error".into());
                    self.pause().await?;
                    continue;
                }
            };
            self.tally.answer(status.as_u16().to_string());
            if status == reqwest::StatusCode::ACCEPTED {
                return self.acknowledge(batch);
            }
            // A refusal of the request itself is a bug of this harness, not a fault to ride out.
            anyhow::ensure!(
                status.is_server_error() || status.as_u16() == 429,
                "POST /v1/events answered {status}"
            );
            self.pause().await?;
        }
    }

    fn acknowledge(&self, batch: &Batch) -> anyhow::Result<()> {
        let mut acknowledged = self
            .tally
            .acknowledged
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        acknowledged.extend(batch.ids.iter().copied());
        self.tally
            .acknowledged_count
            .store(acknowledged.len(), Ordering::Relaxed);
        Ok(())
    }

    async fn pause(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            Instant::now() < self.deadline,
            "a batch was not acknowledged within {LOAD_LIMIT:?}"
        );
        tokio::time::sleep(RETRY_PAUSE).await;
        Ok(())
    }
}

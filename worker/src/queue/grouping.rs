//! Group commit for producers. Requests that arrive while a push is under way share the next push, merged
//! into one job per application: a busy API makes one queue round trip for many requests, and workers
//! handle a few large jobs instead of many small ones. While requests flow, a push also lingers briefly for
//! more to join it. An idle API pushes each request at once, so grouping adds no latency there; each
//! request is answered only once the push carrying its events has returned.

use super::{Queue, QueueError};
use chrono::{DateTime, Utc};
use eye_domain::{ApplicationId, IngestBatch, JobId, NewEvent};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

/// How requests are grouped.
#[derive(Debug, Clone, Copy)]
pub struct GroupingSettings {
    /// The most events merged into one job (a larger request still gets a job of its own, unsplit).
    /// Larger jobs spread a job's fixed cost (its transaction, ~20 statements) over more events; a worker
    /// holds the jobs it runs and has fetched in memory. At 1,000 its peak RSS under load was 54 MiB once
    /// the events' `COPY` streamed in pieces, and end to end ran ~10 % faster than at 500 (BENCHMARKS.md,
    /// "The fourth round").
    pub max_job_events: usize,
    /// The most events taken into one push.
    pub max_push_events: usize,
    /// Pushes under way at once; requests arriving meanwhile wait for the next one.
    pub max_in_flight: usize,
    /// While requests flow (the last push carried several), how long a push waits for more to join it.
    /// Without it, jobs of single events held only the few requests of one round trip (~0.5 ms), and
    /// workers stored ~3,300 single events/s; each request waits at most this much longer.
    pub linger: Duration,
    /// Requests waiting for a push before senders wait too (back-pressure).
    pub max_waiting: usize,
}

impl Default for GroupingSettings {
    fn default() -> Self {
        Self {
            max_job_events: 1000,
            max_push_events: 10_000,
            max_in_flight: 2,
            linger: Duration::from_millis(2),
            max_waiting: 4096,
        }
    }
}

/// Where a group's jobs go: the queue, or a stand-in in tests. `Ok` means queued, `Err` not queued.
pub trait Push: Clone + Send + Sync + 'static {
    /// Durably enqueues the batches, one job each; bounded in time by the backend's own push timeout.
    fn push_all(
        &self,
        batches: Vec<IngestBatch>,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

impl Push for Queue {
    fn push_all(
        &self,
        batches: Vec<IngestBatch>,
    ) -> impl Future<Output = Result<(), QueueError>> + Send {
        Queue::push_all(self, batches)
    }
}

/// Enqueues accepted events with group commit (cheap to clone).
#[derive(Clone)]
pub struct Enqueuer {
    waiting: mpsc::Sender<Request>,
}

/// One accepted request waiting for its push.
struct Request {
    application_id: ApplicationId,
    received_at: DateTime<Utc>,
    slot: Arc<Slot>,
    answer: oneshot::Sender<Result<(), QueueError>>,
}

/// A request's events until either its push claims them or its requester withdraws them at the deadline.
/// Whoever takes them first decides: claimed events are pushed and the requester waits for that push's
/// answer; withdrawn events are dropped at once (so a stalled queue holds no memory for them) and never
/// pushed. This is what makes 503 mean "not queued": no push can start after the requester gave up.
struct Slot {
    events: Mutex<Option<Vec<NewEvent>>>,
    deadline: Instant,
}

impl Slot {
    fn take(&self) -> Option<Vec<NewEvent>> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

fn deadline_passed() -> QueueError {
    QueueError::Unavailable(
        "the queue did not take the events before the request's deadline".into(),
    )
}

fn stopped() -> QueueError {
    QueueError::Unavailable("the enqueuer has stopped".into())
}

impl Enqueuer {
    /// Starts the grouping task over `queue`; it ends once every clone of the enqueuer is dropped.
    pub fn start(queue: impl Push, settings: GroupingSettings) -> Self {
        let (waiting, requests) = mpsc::channel(settings.max_waiting.max(1));
        tokio::spawn(group_and_push(queue, requests, settings));
        Self { waiting }
    }

    /// Durably enqueues the events of one request, received now; returns once the queue has them.
    /// `Err` means the events are not queued and never will be: either the queue refused them, or their
    /// push had not started by `deadline`. Once their push has started, this waits for its answer (the
    /// queue's push timeout bounds it), even past `deadline`.
    pub async fn enqueue(
        &self,
        application_id: ApplicationId,
        events: Vec<NewEvent>,
        deadline: Instant,
    ) -> Result<(), QueueError> {
        let (answer, mut answered) = oneshot::channel();
        let slot = Arc::new(Slot {
            events: Mutex::new(Some(events)),
            deadline,
        });
        let request = Request {
            application_id,
            received_at: Utc::now(),
            slot: slot.clone(),
            answer,
        };
        match tokio::time::timeout_at(deadline, self.waiting.send(request)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(stopped()),
            Err(_) => return Err(deadline_passed()),
        }
        tokio::select! {
            answer = &mut answered => return answer.map_err(|_| stopped())?,
            () = tokio::time::sleep_until(deadline) => {}
        }
        if slot.take().is_some() {
            return Err(deadline_passed());
        }
        // Its push has started: only that push's answer tells whether the events are queued.
        answered.await.map_err(|_| stopped())?
    }
}

async fn group_and_push<P: Push>(
    queue: P,
    mut requests: mpsc::Receiver<Request>,
    settings: GroupingSettings,
) {
    let in_flight = Arc::new(Semaphore::new(settings.max_in_flight.max(1)));
    let mut flowing = false;
    loop {
        // The permit comes first: while every push is under way, requests pile up for the next one.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = requests.recv().await else {
            return;
        };
        let until = flowing.then(|| Instant::now() + settings.linger);
        let group = gather(first, &mut requests, settings.max_push_events, until).await;
        let group = claim(group);
        if group.is_empty() {
            continue;
        }
        flowing = group.len() > 1;
        let queue = queue.clone();
        tokio::spawn(async move {
            push_group(&queue, group, settings.max_job_events).await;
            drop(permit);
        });
    }
}

/// A request whose events were taken for a push.
struct Claimed {
    application_id: ApplicationId,
    received_at: DateTime<Utc>,
    events: Vec<NewEvent>,
    answer: oneshot::Sender<Result<(), QueueError>>,
}

/// Takes the events of the group's requests for their push. A request already withdrawn is skipped; one
/// whose deadline has passed is answered "not queued" here, so no push ever starts after a deadline.
fn claim(group: Vec<Request>) -> Vec<Claimed> {
    let now = Instant::now();
    let mut claimed = Vec::with_capacity(group.len());
    for request in group {
        let Some(events) = request.slot.take() else {
            continue;
        };
        if request.slot.deadline <= now {
            let _ = request.answer.send(Err(deadline_passed()));
            continue;
        }
        claimed.push(Claimed {
            application_id: request.application_id,
            received_at: request.received_at,
            events,
            answer: request.answer,
        });
    }
    claimed
}

/// `first` and the requests waiting behind it or, with `until`, arriving before then; up to `max_events`
/// events in all.
async fn gather(
    first: Request,
    requests: &mut mpsc::Receiver<Request>,
    max_events: usize,
    until: Option<Instant>,
) -> Vec<Request> {
    let mut events = first.len();
    let mut group = vec![first];
    while events < max_events {
        let next = match (requests.try_recv(), until) {
            (Ok(next), _) => next,
            (Err(_), Some(until)) => match tokio::time::timeout_at(until, requests.recv()).await {
                Ok(Some(next)) => next,
                _ => break,
            },
            (Err(_), None) => break,
        };
        events += next.len();
        group.push(next);
    }
    group
}

impl Request {
    /// Its events, or 0 once withdrawn.
    fn len(&self) -> usize {
        self.slot
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map_or(0, Vec::len)
    }
}

async fn push_group<P: Push>(queue: &P, group: Vec<Claimed>, max_job_events: usize) {
    let (jobs, answers) = into_jobs(group, max_job_events);
    let result = queue.push_all(jobs).await;
    for answer in answers {
        // A requester that gave up (client gone) needs no answer.
        let _ = answer.send(result.clone());
    }
}

/// Merges the group's requests into jobs, one application per job, in arrival order, never splitting a
/// request. A job's `received_at` is its earliest request's: the group spans at most one push round trip.
fn into_jobs(
    group: Vec<Claimed>,
    max_job_events: usize,
) -> (
    Vec<IngestBatch>,
    Vec<oneshot::Sender<Result<(), QueueError>>>,
) {
    let mut jobs: Vec<IngestBatch> = Vec::new();
    let mut answers = Vec::with_capacity(group.len());
    for request in group {
        answers.push(request.answer);
        let open = jobs.iter_mut().rev().find(|job| {
            job.application_id == request.application_id
                && job.events.len() + request.events.len() <= max_job_events
        });
        match open {
            Some(job) => {
                job.received_at = job.received_at.min(request.received_at);
                job.events.extend(request.events);
            }
            None => jobs.push(IngestBatch {
                job_id: JobId::generate(),
                application_id: request.application_id,
                received_at: request.received_at,
                events: request.events,
            }),
        }
    }
    (jobs, answers)
}

#[cfg(test)]
mod tests;

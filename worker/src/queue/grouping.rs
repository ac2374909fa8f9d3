//! Group commit for producers. Requests that arrive while a push is under way share the next push, merged
//! into one job per application: a busy API makes one queue round trip for many requests, and workers
//! handle a few large jobs instead of many small ones. While requests flow, a push also lingers briefly for
//! more to join it. An idle API pushes each request at once, so grouping adds no latency there; each
//! request is answered only once the push carrying its events has returned.

use super::{Queue, QueueError};
use chrono::{DateTime, Utc};
use eye_domain::{ApplicationId, IngestBatch, JobId, NewEvent};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

/// How requests are grouped.
#[derive(Debug, Clone, Copy)]
pub struct GroupingSettings {
    /// The most events merged into one job (a larger request still gets a job of its own, unsplit).
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

/// Enqueues accepted events with group commit (cheap to clone).
#[derive(Clone)]
pub struct Enqueuer {
    waiting: mpsc::Sender<Request>,
}

/// One accepted request waiting for its push.
struct Request {
    application_id: ApplicationId,
    received_at: DateTime<Utc>,
    events: Vec<NewEvent>,
    answer: oneshot::Sender<Result<(), QueueError>>,
}

impl Enqueuer {
    /// Starts the grouping task over `queue`; it ends once every clone of the enqueuer is dropped.
    pub fn start(queue: Queue, settings: GroupingSettings) -> Self {
        let (waiting, requests) = mpsc::channel(settings.max_waiting.max(1));
        tokio::spawn(group_and_push(queue, requests, settings));
        Self { waiting }
    }

    /// Durably enqueues the events of one request, received now; returns once the queue has them.
    pub async fn enqueue(
        &self,
        application_id: ApplicationId,
        events: Vec<NewEvent>,
    ) -> Result<(), QueueError> {
        let (answer, answered) = oneshot::channel();
        let request = Request {
            application_id,
            received_at: Utc::now(),
            events,
            answer,
        };
        let stopped = || QueueError::Unavailable("the enqueuer has stopped".into());
        self.waiting.send(request).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

async fn group_and_push(
    queue: Queue,
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
        flowing = group.len() > 1;
        let queue = queue.clone();
        tokio::spawn(async move {
            push_group(&queue, group, settings.max_job_events).await;
            drop(permit);
        });
    }
}

/// `first` and the requests waiting behind it or, with `until`, arriving before then; up to `max_events`
/// events in all.
async fn gather(
    first: Request,
    requests: &mut mpsc::Receiver<Request>,
    max_events: usize,
    until: Option<Instant>,
) -> Vec<Request> {
    let mut events = first.events.len();
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
        events += next.events.len();
        group.push(next);
    }
    group
}

async fn push_group(queue: &Queue, group: Vec<Request>, max_job_events: usize) {
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
    group: Vec<Request>,
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
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn event(n: u32) -> NewEvent {
        serde_json::from_value(serde_json::json!({
            "event_id": format!("0190f0e0-0000-7000-8000-{n:012}"), "session_id": "s",
            "category": "c", "name": "n", "data": {}, "timestamp": "2021-01-01T00:00:00Z"
        }))
        .expect("valid event")
    }

    fn request(application_id: ApplicationId, ids: &[u32], at_ms: i64) -> Request {
        let (answer, _) = oneshot::channel();
        Request {
            application_id,
            received_at: DateTime::UNIX_EPOCH + TimeDelta::milliseconds(at_ms),
            events: ids.iter().copied().map(event).collect(),
            answer,
        }
    }

    fn ids(job: &IngestBatch) -> Vec<String> {
        job.events.iter().map(|e| e.event_id.to_string()).collect()
    }

    #[test]
    fn requests_of_one_application_share_a_job_in_arrival_order() {
        let app = ApplicationId::generate();
        let group = vec![
            request(app, &[1, 2], 5),
            request(app, &[3], 3),
            request(app, &[4], 9),
        ];
        let (jobs, answers) = into_jobs(group, 1000);
        assert_eq!(answers.len(), 3);
        assert_eq!(jobs.len(), 1);
        assert_eq!(ids(&jobs[0]), ids_of(&[1, 2, 3, 4]));
        assert_eq!(
            jobs[0].received_at,
            DateTime::UNIX_EPOCH + TimeDelta::milliseconds(3),
            "the earliest arrival is the job's reference time"
        );
    }

    #[test]
    fn applications_never_share_a_job() {
        let (a, b) = (ApplicationId::generate(), ApplicationId::generate());
        let group = vec![
            request(a, &[1], 0),
            request(b, &[2], 0),
            request(a, &[3], 0),
        ];
        let (jobs, _) = into_jobs(group, 1000);
        assert_eq!(jobs.len(), 2);
        assert_eq!(
            (jobs[0].application_id, ids(&jobs[0])),
            (a, ids_of(&[1, 3]))
        );
        assert_eq!((jobs[1].application_id, ids(&jobs[1])), (b, ids_of(&[2])));
    }

    #[test]
    fn a_full_job_starts_another_and_no_request_is_split() {
        let app = ApplicationId::generate();
        let group = vec![
            request(app, &[1, 2], 0),
            request(app, &[3, 4], 0),
            request(app, &[5, 6, 7], 0),
        ];
        let (jobs, _) = into_jobs(group, 3);
        let sizes: Vec<usize> = jobs.iter().map(|j| j.events.len()).collect();
        assert_eq!(sizes, [2, 2, 3]);
        assert_ne!(jobs[0].job_id, jobs[1].job_id);
    }

    #[tokio::test]
    async fn a_group_stops_taking_requests_at_its_event_budget() {
        let app = ApplicationId::generate();
        let (sender, mut receiver) = mpsc::channel(8);
        for n in 0..4 {
            sender
                .try_send(request(app, &[2 * n, 2 * n + 1], 0))
                .expect("room");
        }
        let first = receiver.try_recv().expect("queued");
        let group = gather(first, &mut receiver, 4, None).await;
        assert_eq!(group.len(), 2, "2 + 2 events reach the budget of 4");
        assert_eq!(receiver.try_recv().map(|r| r.events.len()).ok(), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lingering_group_takes_the_requests_arriving_before_its_deadline() {
        let app = ApplicationId::generate();
        let (sender, mut receiver) = mpsc::channel(8);
        let later = sender.clone();
        tokio::spawn(async move {
            for (n, pause_ms) in [(2, 1), (3, 5)] {
                tokio::time::sleep(Duration::from_millis(pause_ms)).await;
                let _ = later.send(request(app, &[n], 0)).await;
            }
        });
        let first = request(app, &[1], 0);
        let deadline = Instant::now() + Duration::from_millis(2);
        let group = gather(first, &mut receiver, 100, Some(deadline)).await;
        let ids: Vec<String> = group
            .iter()
            .flat_map(|r| &r.events)
            .map(|e| e.event_id.to_string())
            .collect();
        assert_eq!(
            ids,
            ids_of(&[1, 2]),
            "the request sent at 1 ms joins; the one at 6 ms waits"
        );
        let without = gather(request(app, &[4], 0), &mut receiver, 100, None).await;
        assert_eq!(without.len(), 1, "nothing else is waiting, and no linger");
        drop(sender);
    }

    fn ids_of(ns: &[u32]) -> Vec<String> {
        ns.iter().map(|n| event(*n).event_id.to_string()).collect()
    }
}

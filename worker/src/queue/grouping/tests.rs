//! Grouping: how requests become jobs, and how deadlines and pushes decide a request's answer.

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
        slot: Arc::new(Slot {
            events: Mutex::new(Some(ids.iter().copied().map(event).collect())),
            deadline: Instant::now() + Duration::from_secs(3600),
        }),
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
    let (jobs, answers) = into_jobs(claim(group), 1000);
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
    let (jobs, _) = into_jobs(claim(group), 1000);
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
    let (jobs, _) = into_jobs(claim(group), 3);
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
    assert_eq!(receiver.try_recv().map(|r| r.len()).ok(), Some(2));
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
    let ids: Vec<String> = claim(group)
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

/// A push that records what it was given and answers only when the test releases it, like a stalled queue.
#[derive(Clone)]
struct GatedPush {
    pushed: Arc<Mutex<Vec<String>>>,
    releases: Arc<tokio::sync::Mutex<mpsc::Receiver<Result<(), QueueError>>>>,
}

impl GatedPush {
    fn new() -> (Self, mpsc::Sender<Result<(), QueueError>>) {
        let (release, releases) = mpsc::channel(8);
        let push = Self {
            pushed: Arc::default(),
            releases: Arc::new(tokio::sync::Mutex::new(releases)),
        };
        (push, release)
    }

    fn pushed(&self) -> Vec<String> {
        self.pushed.lock().expect("not poisoned").clone()
    }
}

impl Push for GatedPush {
    async fn push_all(&self, batches: Vec<IngestBatch>) -> Result<(), QueueError> {
        self.pushed
            .lock()
            .expect("not poisoned")
            .extend(batches.iter().flat_map(ids));
        let mut releases = self.releases.lock().await;
        releases.recv().await.unwrap_or_else(|| Err(stopped()))
    }
}

fn one_push_at_a_time() -> GroupingSettings {
    GroupingSettings {
        max_in_flight: 1,
        linger: Duration::ZERO,
        ..GroupingSettings::default()
    }
}

fn spawn_enqueue(
    enqueuer: &Enqueuer,
    n: u32,
    deadline_in: Duration,
) -> tokio::task::JoinHandle<Result<(), QueueError>> {
    let enqueuer = enqueuer.clone();
    let deadline = Instant::now() + deadline_in;
    tokio::spawn(async move {
        enqueuer
            .enqueue(ApplicationId::generate(), vec![event(n)], deadline)
            .await
    })
}

/// Lets spawned tasks run up to their next wait, without moving the paused clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn a_request_whose_deadline_passes_before_its_push_starts_is_refused_and_never_pushed() {
    let (push, release) = GatedPush::new();
    let enqueuer = Enqueuer::start(push.clone(), one_push_at_a_time());
    let stalled = spawn_enqueue(&enqueuer, 1, HOUR);
    settle().await;
    assert_eq!(push.pushed(), ids_of(&[1]), "the first push hangs");

    let late = spawn_enqueue(&enqueuer, 2, Duration::from_secs(1));
    let refused = tokio::time::timeout(Duration::from_secs(60), late)
        .await
        .expect("answered at its deadline, while the push still hangs")
        .expect("no panic");
    assert!(refused.is_err(), "503: not queued");

    release.send(Ok(())).await.expect("push waiting");
    assert!(stalled.await.expect("no panic").is_ok());
    let next = spawn_enqueue(&enqueuer, 3, HOUR);
    settle().await;
    release.send(Ok(())).await.expect("push waiting");
    assert!(next.await.expect("no panic").is_ok());
    assert_eq!(
        push.pushed(),
        ids_of(&[1, 3]),
        "the refused request's events were never pushed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_whose_push_started_waits_for_that_push_past_its_deadline() {
    let (push, release) = GatedPush::new();
    let enqueuer = Enqueuer::start(push.clone(), one_push_at_a_time());
    for (n, outcome) in [(1, Ok(())), (2, Err(QueueError::Backend("refused".into())))] {
        let request = spawn_enqueue(&enqueuer, n, Duration::from_secs(1));
        settle().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            !request.is_finished(),
            "request {n}: no answer before its push answers, deadline or not"
        );
        let expected = outcome.is_ok();
        release.send(outcome).await.expect("push waiting");
        let answer = request.await.expect("no panic");
        assert_eq!(
            answer.is_ok(),
            expected,
            "request {n}: the push's own answer"
        );
    }
    assert_eq!(push.pushed(), ids_of(&[1, 2]));
}

#[tokio::test(start_paused = true)]
async fn a_request_found_past_its_deadline_when_its_group_forms_is_answered_and_not_pushed() {
    let app = ApplicationId::generate();
    let (answer, answered) = oneshot::channel();
    let expired = Request {
        application_id: app,
        received_at: Utc::now(),
        slot: Arc::new(Slot {
            events: Mutex::new(Some(vec![event(1)])),
            deadline: Instant::now(),
        }),
        answer,
    };
    let claimed = claim(vec![expired, request(app, &[2], 0)]);
    let ids: Vec<String> = claimed
        .iter()
        .flat_map(|r| &r.events)
        .map(|e| e.event_id.to_string())
        .collect();
    assert_eq!(ids, ids_of(&[2]));
    assert!(answered.await.expect("answered").is_err());
}

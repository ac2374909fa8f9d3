//! The SDK against a real local HTTP server that records event ids and injects faults.

#[allow(dead_code)] // Each test binary uses part of the shared support.
mod support;

use std::collections::HashSet;
use std::time::Duration;

use eye_sdk::{
    Client, Event, EventError, EventId, FlushError, FullBufferPolicy, SendError, TextError,
    TrackError,
};
use serde_json::json;
use support::{DEADLINE, Faults, LogCapture, TestServer, client_for, event, wait_until};

fn ids_as_strings(ids: &[EventId]) -> HashSet<String> {
    ids.iter().map(EventId::to_string).collect()
}

async fn track_from_tasks(client: &Client, tasks: usize, per_task: usize) -> Vec<EventId> {
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut ids = Vec::with_capacity(per_task);
                for n in 0..per_task {
                    ids.push(
                        client
                            .track(event(n % 16, task * per_task + n))
                            .await
                            .expect("tracked"),
                    );
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for handle in handles {
        ids.extend(handle.await.expect("tracking task finished"));
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_events_from_four_tasks_arrive_exactly_once_despite_faults() {
    // Dropped connections, then 503s, and 413 for bodies above 8 KiB (about 40 events).
    let faults = Faults {
        drop_first: 3,
        fail_first: 3,
        max_body: 8 * 1024,
        ..Faults::default()
    };
    let server = TestServer::start(faults).await;
    let client = client_for(&server)
        .buffer_capacity(1000)
        .linger(Duration::from_millis(20))
        .build()
        .expect("valid settings");

    let ids = track_from_tasks(&client, 4, 2500).await;
    let summary = client.flush().await.expect("everything delivered");

    let received = server.received();
    assert_eq!(ids.len(), 10_000);
    assert_eq!(
        received.keys().cloned().collect::<HashSet<_>>(),
        ids_as_strings(&ids)
    );
    assert!(
        received.values().all(|&count| count == 1),
        "an event arrived twice"
    );
    assert_eq!((summary.sent, summary.failed), (10_000, 0));
    let stats = client.stats();
    assert_eq!((stats.sent, stats.failed, stats.buffered), (10_000, 0, 0));
    assert!(stats.retried > 0, "the injected faults were retried");
    client.shutdown(DEADLINE).await.expect("clean shutdown");
}

#[tokio::test]
async fn an_unknown_key_surfaces_as_an_error_and_counts_as_failed() {
    let server = TestServer::start(Faults::default()).await;
    let client = Client::builder(&server.url, "wrong-key")
        .build()
        .expect("valid settings");
    for n in 0..5 {
        client.track(event(0, n)).await.expect("tracked");
    }

    let Err(FlushError::Failed { summary, error }) = client.flush().await else {
        panic!("flush must report the rejected events");
    };
    assert_eq!((summary.sent, summary.failed), (0, 5));
    assert_eq!(error.status(), Some(401));
    assert!(!error.is_transient());

    let sent = client.send(vec![event(0, 5)]).await;
    assert!(matches!(sent, Err(SendError::Rejected { status: 401, .. })));
    assert_eq!(client.stats().failed, 6);
    assert_eq!(server.requests(), 2, "permanent failures are not retried");
}

#[tokio::test]
async fn fail_fast_reports_a_full_buffer() {
    let server = TestServer::start(Faults::default()).await;
    let client = client_for(&server)
        .buffer_capacity(3)
        .linger(Duration::from_secs(60))
        .full_buffer_policy(FullBufferPolicy::FailFast)
        .build()
        .expect("valid settings");
    for n in 0..3 {
        client.track(event(0, n)).await.expect("room in the buffer");
    }

    let full = client.track(event(0, 3)).await;
    assert!(matches!(full, Err(TrackError::BufferFull { capacity: 3 })));
    assert!(matches!(
        client.try_track(event(0, 4)),
        Err(TrackError::BufferFull { .. })
    ));
    let stats = client.stats();
    assert_eq!((stats.buffered, stats.refused_buffer_full), (3, 2));

    client.shutdown(DEADLINE).await.expect("clean shutdown");
    assert_eq!(server.received().len(), 3);
}

#[tokio::test]
async fn a_track_that_finds_the_buffer_full_waits_and_is_counted() {
    let server = TestServer::start(Faults::default()).await;
    let client = client_for(&server)
        .buffer_capacity(1)
        .linger(Duration::from_secs(60))
        .build()
        .expect("valid settings");
    client.track(event(0, 0)).await.expect("room in the buffer");

    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.track(event(0, 1)).await }
    });
    wait_until(|| client.stats().waited_buffer_full == 1).await;
    assert!(!waiting.is_finished(), "the second track waits for room");
    client.flush().await.expect("the first event is delivered");
    waiting
        .await
        .expect("task")
        .expect("tracked once room came free");

    client.shutdown(DEADLINE).await.expect("clean shutdown");
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn the_wait_policy_holds_track_until_delivered_events_free_space() {
    let server = TestServer::start(Faults::default()).await;
    let client = client_for(&server)
        .buffer_capacity(2)
        .linger(Duration::from_millis(1))
        .build()
        .expect("valid settings");

    let ids = track_from_tasks(&client, 2, 20).await;

    client.shutdown(DEADLINE).await.expect("clean shutdown");
    assert_eq!(
        server.received().keys().cloned().collect::<HashSet<_>>(),
        ids_as_strings(&ids)
    );
}

#[tokio::test]
async fn shutdown_drains_the_buffer_and_closes_the_client() {
    let server = TestServer::start(Faults::default()).await;
    let client = client_for(&server)
        .linger(Duration::from_secs(60))
        .build()
        .expect("valid settings");
    for n in 0..250 {
        client.track(event(n % 3, n)).await.expect("tracked");
    }

    let summary = client.shutdown(DEADLINE).await.expect("clean shutdown");

    assert_eq!((summary.sent, summary.failed), (250, 0));
    assert_eq!(server.received().len(), 250);
    assert_eq!(client.stats().buffered, 0);
    assert!(matches!(
        client.track(event(0, 0)).await,
        Err(TrackError::Closed)
    ));
    assert!(matches!(
        client.try_track(event(0, 0)),
        Err(TrackError::Closed)
    ));
    assert!(matches!(client.flush().await, Err(FlushError::Closed)));
}

#[tokio::test]
async fn send_returns_the_accepted_ids_in_request_order() {
    let server = TestServer::start(Faults::default()).await;
    let client = client_for(&server).build().expect("valid settings");
    let chosen = EventId::new_v7();
    let events = vec![event(0, 0), event(0, 1).event_id(chosen), event(1, 2)];

    let ids = client.send(events).await.expect("accepted");

    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1], chosen);
    assert_eq!(
        server.received().keys().cloned().collect::<HashSet<_>>(),
        ids_as_strings(&ids)
    );
    assert_eq!(client.stats().sent, 3);
}

#[tokio::test]
async fn an_oversized_body_is_split_until_the_server_accepts_it() {
    let server = TestServer::start(Faults {
        max_body: 2048,
        ..Faults::default()
    })
    .await;
    let client = client_for(&server).build().expect("valid settings");
    let events: Vec<_> = (0..60).map(|n| event(0, n)).collect();

    let ids = client.send(events).await.expect("accepted after splitting");

    assert_eq!(ids.len(), 60);
    assert_eq!(server.received().len(), 60);
    assert!(server.requests() > 2);
}

#[tokio::test]
async fn dropped_connections_are_retried_with_the_same_ids() {
    let server = TestServer::start(Faults {
        drop_first: 2,
        ..Faults::default()
    })
    .await;
    let client = client_for(&server).build().expect("valid settings");

    let ids = client
        .send(vec![event(0, 0)])
        .await
        .expect("accepted on the third attempt");

    assert_eq!(
        server.received().keys().cloned().collect::<HashSet<_>>(),
        ids_as_strings(&ids)
    );
    assert_eq!((client.stats().retried, server.requests()), (2, 3));
}

#[tokio::test]
async fn rate_limited_requests_are_retried_with_the_same_ids() {
    let faults = Faults {
        fail_first: 2,
        fail_status: 429,
        ..Faults::default()
    };
    let server = TestServer::start(faults).await;
    let client = client_for(&server).build().expect("valid settings");

    let ids = client
        .send(vec![event(0, 0), event(0, 1)])
        .await
        .expect("accepted");

    assert_eq!(
        server.received().keys().cloned().collect::<HashSet<_>>(),
        ids_as_strings(&ids)
    );
    assert_eq!((client.stats().retried, server.requests()), (4, 3));
}

#[tokio::test]
async fn transient_failures_past_the_retry_budget_count_as_failed() {
    let server = TestServer::start(Faults {
        fail_first: 1_000_000,
        ..Faults::default()
    })
    .await;
    let client = client_for(&server)
        .retry_budget(Duration::from_millis(200))
        .build()
        .expect("valid settings");

    let sent = client.send(vec![event(0, 0)]).await;

    let Err(SendError::RetriesExhausted { attempts, last }) = sent else {
        panic!("expected the retry budget to run out, got {sent:?}");
    };
    assert_eq!(last.status(), Some(503));
    assert!(attempts >= 2, "retried within the budget");
    assert_eq!(client.stats().failed, 1);
    assert_eq!(server.requests(), attempts as usize);
}

#[tokio::test]
async fn invalid_events_are_refused_before_anything_is_sent() {
    let server = TestServer::start(Faults::default()).await;
    let client = client_for(&server).build().expect("valid settings");

    let tracked = client.track(Event::new("", "test", "tick")).await;
    let sent = client
        .send(vec![Event::new("s", "test", "tick").data(json!(3))])
        .await;

    assert!(matches!(tracked, Err(TrackError::InvalidEvent(_))));
    assert!(matches!(sent, Err(SendError::InvalidEvent(_))));
    client.shutdown(DEADLINE).await.expect("clean shutdown");
    assert_eq!(server.requests(), 0);
    assert_eq!(client.stats().failed, 1, "the tracked one is counted");
}

#[tokio::test]
async fn ten_good_events_and_one_with_a_newline_in_user_id_give_ten_sent_and_one_failed() {
    let server = TestServer::start(Faults::default()).await;
    let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&failures);
    let client = client_for(&server)
        .on_error(move |failure| {
            let seen = (failure.event_ids.to_vec(), failure.error.to_string());
            sink.lock().expect("not poisoned").push(seen);
        })
        .build()
        .expect("valid settings");
    let bad = EventId::new_v7();

    for n in 0..11 {
        let event = event(0, n);
        let tracked = if n == 3 {
            client.track(event.user_id("u\n1").event_id(bad)).await
        } else {
            client.track(event.user_id("u1")).await
        };
        if n == 3 {
            let Err(TrackError::InvalidEvent(error)) = tracked else {
                panic!("the newline is refused at once, got {tracked:?}");
            };
            let expected = EventError::Text {
                field: "user_id",
                reason: TextError::ControlCharacter,
            };
            assert_eq!(error, expected);
        }
    }
    client.shutdown(DEADLINE).await.expect("clean shutdown");

    let stats = client.stats();
    assert_eq!((stats.sent, stats.failed), (10, 1));
    assert_eq!(server.received().len(), 10);
    let failures = failures.lock().expect("not poisoned").clone();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, [bad]);
    assert!(failures[0].1.contains("control characters"), "{failures:?}");
}

#[tokio::test]
async fn dropping_the_client_without_shutdown_warns_how_many_events_were_not_sent() {
    let server = TestServer::start(Faults::default()).await;
    let client = client_for(&server)
        .linger(Duration::from_secs(60))
        .build()
        .expect("valid settings");
    for n in 0..7 {
        client.track(event(0, n)).await.expect("tracked");
    }

    let logs = LogCapture::default();
    tracing::subscriber::with_default(logs.subscriber(), || drop(client));

    assert!(
        logs.contents().contains("7 events were not sent"),
        "logs: {}",
        logs.contents()
    );
    assert_eq!(server.requests(), 0);
}

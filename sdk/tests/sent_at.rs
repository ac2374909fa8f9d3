//! `sent_at` is stamped on each attempt's request, not when an event is tracked.

#[allow(dead_code)] // Each test binary uses part of the shared support.
mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use support::{DEADLINE, Faults, TestServer, client_for, event, wait_until};

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339 sent_at")
        .to_utc()
}

/// The one `sent_at` of each request.
fn request_stamps(server: &TestServer) -> Vec<DateTime<Utc>> {
    let stamps = server.sent_at();
    assert!(
        stamps.iter().all(|s| s.len() == 1),
        "one per request: {stamps:?}"
    );
    stamps.iter().map(|s| parse_time(&s[0])).collect()
}

#[tokio::test]
async fn each_attempt_stamps_its_own_sent_at_on_every_event() {
    let server = TestServer::start(Faults {
        fail_first: 1,
        retry_after: 1,
        ..Faults::default()
    })
    .await;
    let client = client_for(&server).build().expect("valid settings");
    let before = Utc::now();

    client
        .send(vec![event(0, 0), event(0, 1), event(1, 2)])
        .await
        .expect("accepted on the second attempt");

    let stamps = request_stamps(&server);
    assert_eq!(stamps.len(), 2);
    assert!(stamps[0] >= before);
    // The retry waited for Retry-After: 1 and says so, instead of repeating the first stamp.
    assert!(
        stamps[1] - stamps[0] >= chrono::TimeDelta::seconds(1),
        "{stamps:?}"
    );
}

#[tokio::test]
async fn a_buffered_event_is_stamped_when_its_batch_is_sent_not_when_tracked() {
    let server = TestServer::start(Faults::default()).await;
    let linger = Duration::from_millis(500);
    let client = client_for(&server)
        .linger(linger)
        .build()
        .expect("valid settings");
    let tracked = Utc::now();

    client.track(event(0, 0)).await.expect("tracked");
    wait_until(|| server.requests() == 1).await;

    let stamps = request_stamps(&server);
    assert!(stamps[0] - tracked >= chrono::TimeDelta::from_std(linger).expect("small"));
    client.shutdown(DEADLINE).await.expect("clean shutdown");
}

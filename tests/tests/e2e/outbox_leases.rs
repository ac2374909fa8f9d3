//! The notifications outbox under several notifiers: leases taken per claim, results recorded only under
//! the lease that sent them.

use crate::notify_server::NotifyServer;
use crate::support::{Backend, Isolation};
use chrono::{TimeDelta, Utc};
use eye_store::{DeliveryResult, NotificationStatus, Store};
use eye_worker::notify::{Notifier, NotifyRetry, NotifySettings};
use eye_worker::rules::SystemClock;
use sea_orm::{ConnectionTrait, Statement};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Puts `count` pending notifications, due now, in the outbox; answers their ids.
async fn pending_notifications(store: &Store, count: usize) -> anyhow::Result<Vec<Uuid>> {
    let db = store.connection();
    let application = Uuid::new_v4();
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let id = Uuid::now_v7();
        let sql = format!(
            "INSERT INTO notifications (id, application_id, occasion, rule, user_id, message, \
             triggered_at, status, attempts, next_attempt_at, created_at) VALUES ('{id}', \
             '{application}', 'lease_test:u{n}:{id}', 'lease_test', 'u{n}', 'hello', now(), \
             'pending', 0, now(), now())"
        );
        db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
            .await?;
        ids.push(id);
    }
    Ok(ids)
}

async fn count_delivered(store: &Store) -> anyhow::Result<i64> {
    let db = store.connection();
    let sql = "SELECT COUNT(*) FROM notifications WHERE status = 'delivered'";
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0))
}

fn notifier(store: &Store, url: String, lease: Duration) -> anyhow::Result<Notifier> {
    let settings = NotifySettings {
        url: Some(url),
        timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(20),
        retry: NotifyRetry::default(),
    };
    Ok(Notifier::new(store.clone(), Arc::new(SystemClock), settings)?.with_lease(lease))
}

/// Each send takes 200 ms and a lease lasts 3 s, so a claim's lease outlives its send by far. One poll of
/// 60 notifications takes ~12 s: with one start time per poll, the claims made after its first 3 s came
/// with leases expired already, and the second notifier, started 4 s in, sent them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_notifiers_behind_a_slow_notify_service_send_each_notification_once()
-> anyhow::Result<()> {
    const COUNT: usize = 60;
    let notify = NotifyServer::start_slow(Duration::from_millis(200)).await?;
    let isolation = Isolation::new(Backend::PostgresRedis).await?;
    let store = eye_server::open_store(&isolation.config).await?;
    let ids = pending_notifications(&store, COUNT).await?;
    let lease = Duration::from_secs(3);
    let shutdown = CancellationToken::new();
    let first = tokio::spawn(notifier(&store, notify.url(), lease)?.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let second = tokio::spawn(notifier(&store, notify.url(), lease)?.run(shutdown.clone()));
    let started = Instant::now();
    while count_delivered(&store).await? < COUNT as i64 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "not all delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    first.await?;
    second.await?;

    let mut sends: BTreeMap<String, usize> = BTreeMap::new();
    for received in notify.received() {
        *sends.entry(received.idempotency_key).or_default() += 1;
    }
    let twice: Vec<_> = sends.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(sends.len(), COUNT);
    assert!(ids.iter().all(|id| sends.contains_key(&id.to_string())));
    notify.stop().await?;
    drop(store);
    isolation.cleanup().await
}

/// A result that comes back after its lease was lost (another worker re-claimed the notification), or
/// after the notification was settled, changes nothing: delivered never turns failed or pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_recorded_without_the_current_lease_changes_nothing() -> anyhow::Result<()> {
    let isolation = Isolation::new(Backend::PostgresRedis).await?;
    let store = eye_server::open_store(&isolation.config).await?;
    let id = pending_notifications(&store, 1).await?[0];
    let first_claim = Utc::now() + TimeDelta::seconds(1);
    let lost = store
        .claim_notification(id, first_claim, first_claim + TimeDelta::seconds(1))
        .await?
        .expect("due, so claimed");
    let later = first_claim + TimeDelta::seconds(5);
    let held = store
        .claim_notification(id, later, later + TimeDelta::seconds(30))
        .await?
        .expect("the first lease expired, so claimed again");
    assert!(
        store
            .claim_notification(id, later, later + TimeDelta::seconds(30))
            .await?
            .is_none(),
        "a lease that holds is not claimed again"
    );
    let failed = DeliveryResult::Failed {
        error: "late".into(),
    };
    let retry = DeliveryResult::Retry {
        error: "late".into(),
        next_attempt_at: later,
    };
    let cases = [
        (lost, &failed, false, NotificationStatus::Pending, 0),
        (
            held,
            &DeliveryResult::Delivered,
            true,
            NotificationStatus::Delivered,
            1,
        ),
        (lost, &retry, false, NotificationStatus::Delivered, 1),
        (held, &failed, false, NotificationStatus::Delivered, 1),
        (held, &retry, false, NotificationStatus::Delivered, 1),
    ];
    for (lease, result, recorded, status, attempts) in cases {
        assert_eq!(
            store.record_delivery(id, lease, result).await?,
            recorded,
            "{result:?}"
        );
        let filter = eye_store::NotificationFilter {
            limit: 10,
            ..Default::default()
        };
        let listed = store.list_notifications(&filter).await?;
        assert_eq!(listed[0].status, status, "{result:?}");
        assert_eq!(listed[0].attempts, attempts, "{result:?}");
    }
    drop(store);
    isolation.cleanup().await
}

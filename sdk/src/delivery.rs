//! Delivering one batch: retries for transient failures, halving for 413, failing the events a
//! 400 names and resending the rest, give-up otherwise.

use std::sync::Arc;

use tokio::time::Instant;
use tracing::{debug, warn};

use crate::batch::Batch;
use crate::config::RetryPolicy;
use crate::error::{FailureKind, SendError};
use crate::event::EventId;
use crate::failure::{Failures, positions, refused_events};
use crate::retry::Backoff;
use crate::stats::Counters;
use crate::transport::Post;

/// What became of one batch (and the parts it was split into).
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Accepted ids in request order.
    pub accepted: Vec<EventId>,
    /// Events given up on.
    pub failed: usize,
    /// The first permanent failure.
    pub error: Option<SendError>,
}

impl Outcome {
    /// Events settled, whether sent or failed.
    pub fn settled(&self) -> usize {
        self.accepted.len() + self.failed
    }
}

/// Sends batches with the client's retry policy and counts the results.
#[derive(Debug)]
pub(crate) struct Delivery<P> {
    pub transport: P,
    pub retry: RetryPolicy,
    pub counters: Arc<Counters>,
    pub failures: Failures,
}

impl<P: Post> Delivery<P> {
    /// Delivers `batch`, splitting it in halves (kept in order) whenever the server answers 413
    /// and taking out the events a 400 names.
    pub async fn deliver(&self, batch: Batch) -> Outcome {
        let mut outcome = Outcome::default();
        let mut pending = vec![batch];
        while let Some(batch) = pending.pop() {
            match self.send_with_retries(&batch).await {
                Ok(ids) => {
                    self.counters.add_sent(batch.len());
                    outcome.accepted.extend(ids);
                }
                Err(error) => pending.extend(self.after_refusal(batch, error, &mut outcome)),
            }
        }
        outcome
    }

    /// Settles what a permanent or 413 answer lets settle; returns what is to be sent next.
    fn after_refusal(&self, batch: Batch, error: SendError, outcome: &mut Outcome) -> Vec<Batch> {
        let batch = if error.kind() == FailureKind::TooLarge {
            match batch.split() {
                Ok((first, second)) => {
                    let events = first.len() + second.len();
                    debug!(events, "body too large; splitting the batch in halves");
                    return vec![second, first];
                }
                Err(single) => single,
            }
        } else {
            batch
        };
        if let Some(refused) = refused_events(&error, batch.len()) {
            let (removed, rest) = batch.remove(&positions(&refused));
            // Both are in position order.
            for (event, errors) in removed.iter().zip(refused.into_values()) {
                let event_id = event.id;
                let error = SendError::EventRefused { event_id, errors };
                self.fail(outcome, &[event_id], error);
            }
            return if rest.is_empty() { vec![] } else { vec![rest] };
        }
        self.fail(outcome, &batch.ids(), error);
        vec![]
    }

    fn fail(&self, outcome: &mut Outcome, event_ids: &[EventId], error: SendError) {
        warn!(events = event_ids.len(), %error, "events failed permanently");
        self.failures.report(event_ids, &error);
        outcome.failed += event_ids.len();
        outcome.error.get_or_insert(error);
    }

    /// Sends the same events (same ids) until accepted, permanently refused, or out of budget.
    async fn send_with_retries(&self, batch: &Batch) -> Result<Vec<EventId>, SendError> {
        let mut backoff = Backoff::new(self.retry, Instant::now());
        loop {
            let error = match self.transport.post(batch).await {
                Ok(ids) => return Ok(ids),
                Err(error) if error.is_transient() => error,
                Err(error) => return Err(error),
            };
            let retry_after = error.retry_after();
            let Some(delay) = backoff.next_delay(Instant::now(), retry_after, rand::random())
            else {
                let attempts = backoff.attempts();
                return Err(SendError::RetriesExhausted {
                    attempts,
                    last: Box::new(error),
                });
            };
            debug!(events = batch.len(), ?delay, %error, "transient failure; retrying");
            self.counters.add_retried(batch.len());
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::batch::EncodedEvent;
    use crate::failure::{Failure, OnError, problem_400};

    /// Answers 413 above `max_events`, 503 while `down_until` or `transient_first` times,
    /// 400 naming the events in `refuse`, or always `status`.
    #[derive(Default)]
    struct FakeServer {
        max_events: usize,
        transient_first: Mutex<usize>,
        down_until: Option<Instant>,
        refuse: HashSet<EventId>,
        status: Option<u16>,
        requests: Mutex<Vec<Vec<EventId>>>,
    }

    fn rejected(status: u16) -> SendError {
        SendError::Rejected {
            status,
            problem: None,
            retry_after: Some(Duration::ZERO),
        }
    }

    /// A 400 the way the server words it: `events[i].user_id` for each refused position.
    fn bad_user_ids(positions: &[usize]) -> SendError {
        problem_400(positions.iter().map(|i| format!("events[{i}].user_id")))
    }

    impl FakeServer {
        fn answer(&self, batch: &Batch) -> Result<Vec<EventId>, SendError> {
            let ids = batch.ids();
            self.requests
                .lock()
                .expect("not poisoned")
                .push(ids.clone());
            let mut transient = self.transient_first.lock().expect("not poisoned");
            if *transient > 0 || self.down_until.is_some_and(|t| Instant::now() < t) {
                *transient = transient.saturating_sub(1);
                return Err(rejected(503));
            }
            let refused: Vec<usize> = (0..ids.len())
                .filter(|&i| self.refuse.contains(&ids[i]))
                .collect();
            match self.status {
                Some(status) => Err(rejected(status)),
                None if batch.len() > self.max_events => Err(rejected(413)),
                None if !refused.is_empty() => Err(bad_user_ids(&refused)),
                None => Ok(ids),
            }
        }

        fn request_sizes(&self) -> Vec<usize> {
            self.requests
                .lock()
                .expect("not poisoned")
                .iter()
                .map(Vec::len)
                .collect()
        }
    }

    impl Post for FakeServer {
        async fn post(&self, batch: &Batch) -> Result<Vec<EventId>, SendError> {
            self.answer(batch)
        }
    }

    fn delivery(server: FakeServer, budget: Duration) -> Delivery<FakeServer> {
        let retry = RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(10),
            budget,
        };
        let counters = Arc::new(Counters::default());
        let failures = Failures {
            counters: Arc::clone(&counters),
            on_error: None,
        };
        Delivery {
            transport: server,
            retry,
            counters,
            failures,
        }
    }

    fn server(max_events: usize) -> FakeServer {
        FakeServer {
            max_events,
            ..FakeServer::default()
        }
    }

    fn batch(events: usize) -> Batch {
        let event = |_| EncodedEvent {
            id: EventId::new_v7(),
            json: b"{}".to_vec(),
        };
        Batch::from_events((0..events).map(event).collect())
    }

    #[tokio::test]
    async fn a_413_splits_the_batch_in_halves_until_each_part_is_accepted() {
        let delivery = delivery(server(2), Duration::ZERO);
        let batch = batch(7);
        let ids = batch.ids();
        let outcome = delivery.deliver(batch).await;
        assert_eq!(outcome.accepted, ids);
        assert_eq!(delivery.transport.request_sizes(), [7, 3, 1, 2, 4, 2, 2]);
        assert_eq!(delivery.counters.snapshot().sent, 7);
    }

    #[tokio::test]
    async fn a_single_event_still_too_large_fails_permanently() {
        let delivery = delivery(server(0), Duration::ZERO);
        let outcome = delivery.deliver(batch(2)).await;
        assert_eq!((outcome.accepted.len(), outcome.failed), (0, 2));
        assert_eq!(outcome.error.and_then(|e| e.status()), Some(413));
        assert_eq!(delivery.counters.snapshot().failed, 2);
    }

    #[tokio::test]
    async fn a_400_naming_one_event_fails_it_and_resends_the_other_ten() {
        let batch = batch(11);
        let ids = batch.ids();
        let bad = ids[3];
        let mut delivery = delivery(
            FakeServer {
                refuse: HashSet::from([bad]),
                ..server(100)
            },
            Duration::ZERO,
        );
        let reported = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reported);
        delivery.failures.on_error = Some(OnError(Arc::new(move |failure: &Failure<'_>| {
            let seen = (failure.event_ids.to_vec(), failure.error.to_string());
            sink.lock().expect("not poisoned").push(seen);
        })));

        let outcome = delivery.deliver(batch).await;

        let good: Vec<EventId> = ids.iter().copied().filter(|&id| id != bad).collect();
        assert_eq!((outcome.accepted.clone(), outcome.failed), (good, 1));
        assert_eq!(delivery.transport.request_sizes(), [11, 10]);
        let stats = delivery.counters.snapshot();
        assert_eq!((stats.sent, stats.failed), (10, 1));
        let reported = reported.lock().expect("not poisoned").clone();
        assert_eq!(reported.len(), 1);
        assert_eq!(reported[0].0, [bad]);
        assert!(
            reported[0].1.contains("`user_id` must not contain control"),
            "{reported:?}"
        );
        assert!(
            matches!(outcome.error, Some(SendError::EventRefused { event_id, .. }) if event_id == bad)
        );
    }

    #[tokio::test]
    async fn a_batch_whose_every_event_is_refused_is_not_sent_again() {
        let batch = batch(2);
        let refuse = batch.ids().into_iter().collect();
        let delivery = delivery(
            FakeServer {
                refuse,
                ..server(100)
            },
            Duration::ZERO,
        );
        let outcome = delivery.deliver(batch).await;
        assert_eq!((outcome.accepted.len(), outcome.failed), (0, 2));
        assert_eq!(delivery.transport.request_sizes(), [2]);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_with_the_same_event_ids() {
        let server = FakeServer {
            transient_first: Mutex::new(2),
            ..server(10)
        };
        let delivery = delivery(server, Duration::from_secs(60));
        let outcome = delivery.deliver(batch(3)).await;
        assert_eq!(outcome.settled(), 3);
        let requests = delivery
            .transport
            .requests
            .lock()
            .expect("not poisoned")
            .clone();
        assert_eq!(requests.len(), 3);
        assert!(requests.iter().all(|ids| ids == &requests[0]));
        assert_eq!(delivery.counters.snapshot().retried, 6);
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let delivery = delivery(
            FakeServer {
                status: Some(401),
                ..FakeServer::default()
            },
            Duration::from_secs(60),
        );
        let outcome = delivery.deliver(batch(4)).await;
        assert_eq!(outcome.failed, 4);
        assert_eq!(delivery.transport.request_sizes(), [4]);
        assert_eq!(delivery.counters.snapshot().retried, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_down_for_a_minute_is_retried_until_it_is_back() {
        let down_until = Instant::now() + Duration::from_secs(60);
        let mut delivery = delivery(
            FakeServer {
                down_until: Some(down_until),
                ..server(10)
            },
            Duration::from_secs(600),
        );
        delivery.retry.max_backoff = Duration::from_secs(30);
        let outcome = delivery.deliver(batch(3)).await;
        assert_eq!((outcome.accepted.len(), outcome.failed), (3, 0));
        assert!(Instant::now() >= down_until);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_down_past_the_budget_fails_the_batch_at_the_budgets_end() {
        let started = Instant::now();
        let mut delivery = delivery(
            FakeServer {
                status: Some(503),
                ..FakeServer::default()
            },
            Duration::from_secs(600),
        );
        delivery.retry.max_backoff = Duration::from_secs(30);
        let outcome = delivery.deliver(batch(1)).await;
        assert_eq!(outcome.failed, 1);
        let Some(SendError::RetriesExhausted { attempts, last }) = outcome.error else {
            panic!("expected the budget to run out, got {:?}", outcome.error);
        };
        assert_eq!(last.status(), Some(503));
        assert_eq!(delivery.transport.request_sizes().len(), attempts as usize);
        // Virtual time: the last attempt falls at the budget's end (timers have 1 ms resolution).
        let elapsed = Instant::now() - started;
        assert!(elapsed >= Duration::from_secs(600), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(601), "{elapsed:?}");
    }
}

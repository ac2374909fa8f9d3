//! Delivering one batch: retries for transient failures, halving for 413, give-up otherwise.

use std::sync::Arc;

use tracing::{debug, warn};

use crate::batch::Batch;
use crate::config::RetryPolicy;
use crate::error::{FailureKind, SendError};
use crate::event::EventId;
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

    fn fail(&mut self, events: usize, error: SendError) {
        warn!(events, %error, "events failed permanently");
        self.failed += events;
        self.error.get_or_insert(error);
    }
}

/// Sends batches with the client's retry policy and counts the results.
#[derive(Debug)]
pub(crate) struct Delivery<P> {
    pub transport: P,
    pub retry: RetryPolicy,
    pub counters: Arc<Counters>,
}

impl<P: Post> Delivery<P> {
    /// Delivers `batch`, splitting it in halves (kept in order) whenever the server answers 413.
    pub async fn deliver(&self, batch: Batch) -> Outcome {
        let mut outcome = Outcome::default();
        let mut pending = vec![batch];
        while let Some(batch) = pending.pop() {
            let events = batch.len();
            match self.send_with_retries(&batch).await {
                Ok(ids) => {
                    self.counters.add_sent(events);
                    outcome.accepted.extend(ids);
                }
                Err(error) if error.kind() == FailureKind::TooLarge => match batch.split() {
                    Some((first, second)) => {
                        debug!(events, "body too large; splitting the batch in halves");
                        pending.extend([second, first]);
                    }
                    None => outcome.fail(events, error),
                },
                Err(error) => outcome.fail(events, error),
            }
        }
        self.counters.add_failed(outcome.failed);
        outcome
    }

    /// Sends the same body (same event ids) until accepted, permanently refused, or out of retries.
    async fn send_with_retries(&self, batch: &Batch) -> Result<Vec<EventId>, SendError> {
        let mut backoff = Backoff::new(self.retry);
        loop {
            let error = match self.transport.post(batch).await {
                Ok(ids) => return Ok(ids),
                Err(error) if error.is_transient() => error,
                Err(error) => return Err(error),
            };
            let Some(delay) = backoff.next_delay(error.retry_after(), rand::random()) else {
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
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::batch::EncodedEvent;

    /// Answers 413 above `max_events`, `transient_first` times 503, or always `status`.
    #[derive(Default)]
    struct FakeServer {
        max_events: usize,
        transient_first: Mutex<usize>,
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

    impl FakeServer {
        fn answer(&self, batch: &Batch) -> Result<Vec<EventId>, SendError> {
            let mut requests = self.requests.lock().expect("not poisoned");
            requests.push(batch.ids());
            let mut transient = self.transient_first.lock().expect("not poisoned");
            if *transient > 0 {
                *transient -= 1;
                return Err(rejected(503));
            }
            match self.status {
                Some(status) => Err(rejected(status)),
                None if batch.len() > self.max_events => Err(rejected(413)),
                None => Ok(batch.ids()),
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

    fn delivery(server: FakeServer, max_retries: u32) -> Delivery<FakeServer> {
        let retry = RetryPolicy {
            max_retries,
            initial_backoff: Duration::from_millis(1),
            max_total_backoff: Duration::from_millis(100),
        };
        Delivery {
            transport: server,
            retry,
            counters: Arc::default(),
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
        let delivery = delivery(
            FakeServer {
                max_events: 2,
                ..FakeServer::default()
            },
            0,
        );
        let batch = batch(7);
        let ids = batch.ids();
        let outcome = delivery.deliver(batch).await;
        assert_eq!(outcome.accepted, ids);
        assert_eq!(delivery.transport.request_sizes(), [7, 3, 1, 2, 4, 2, 2]);
        assert_eq!(delivery.counters.snapshot().sent, 7);
    }

    #[tokio::test]
    async fn a_single_event_still_too_large_fails_permanently() {
        let delivery = delivery(
            FakeServer {
                max_events: 0,
                ..FakeServer::default()
            },
            0,
        );
        let outcome = delivery.deliver(batch(2)).await;
        assert_eq!((outcome.accepted.len(), outcome.failed), (0, 2));
        assert_eq!(outcome.error.and_then(|e| e.status()), Some(413));
        assert_eq!(delivery.counters.snapshot().failed, 2);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_with_the_same_event_ids() {
        let server = FakeServer {
            max_events: 10,
            transient_first: Mutex::new(2),
            ..FakeServer::default()
        };
        let delivery = delivery(server, 5);
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
            5,
        );
        let outcome = delivery.deliver(batch(4)).await;
        assert_eq!(outcome.failed, 4);
        assert_eq!(delivery.transport.request_sizes(), [4]);
        assert_eq!(delivery.counters.snapshot().retried, 0);
    }

    #[tokio::test]
    async fn transient_failures_past_the_retry_limit_are_given_up() {
        let delivery = delivery(
            FakeServer {
                status: Some(503),
                ..FakeServer::default()
            },
            2,
        );
        let outcome = delivery.deliver(batch(1)).await;
        assert_eq!(outcome.failed, 1);
        assert!(matches!(
            outcome.error,
            Some(SendError::RetriesExhausted { attempts: 3, .. })
        ));
        assert_eq!(delivery.transport.request_sizes(), [1, 1, 1]);
    }
}

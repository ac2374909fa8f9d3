//! The client: tracking into the buffer, flushing, shutting down, direct sends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use tokio::runtime::Handle;
use tokio::sync::{Semaphore, SemaphorePermit, TryAcquireError, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{instrument, warn};

use crate::batch::{Batch, BatchLimits, Batcher, EncodedEvent};
use crate::config::{ClientBuilder, Config, FullBufferPolicy};
use crate::delivery::Delivery;
use crate::error::{BuildError, FlushError, SendError, TrackError};
use crate::event::{Event, EventError, EventId};
use crate::failure::Failures;
use crate::stats::{Counters, FlushSummary, Stats};
use crate::transport::HttpTransport;
use crate::worker::{Command, Report, Worker};

/// A handle to The Eye: buffers tracked events and delivers them in the background.
///
/// Cheap to clone; all clones share one buffer and one background task. Call
/// [`Client::shutdown`] before dropping the last clone, or buffered events are lost.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    commands: mpsc::UnboundedSender<Command>,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    failures: Failures,
    delivery: Arc<Delivery<HttpTransport>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    shut_down: AtomicBool,
}

impl Client {
    /// Starts configuring a client for the server at `base_url` with an ingest key.
    pub fn builder(base_url: impl Into<String>, ingest_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(base_url.into(), ingest_key.into())
    }

    pub(crate) fn start(config: Config) -> Result<Self, BuildError> {
        let runtime = Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let counters = Arc::new(Counters::default());
        let transport = HttpTransport::new(&config)?;
        let failures = Failures {
            counters: Arc::clone(&counters),
            on_error: config.on_error.clone(),
        };
        let delivery = Arc::new(Delivery {
            transport,
            retry: config.retry,
            counters: Arc::clone(&counters),
            failures: failures.clone(),
        });
        let permits = Arc::new(Semaphore::new(config.buffer_capacity));
        let (commands, receiver) = mpsc::unbounded_channel();
        let worker = Worker {
            commands: receiver,
            batcher: Batcher::new(batch_limits(&config)),
            delivery: Arc::clone(&delivery),
            permits: Arc::clone(&permits),
            counters: Arc::clone(&counters),
            in_flight: FuturesUnordered::new(),
            report: Report::default(),
            shutdown_reply: None,
        };
        let worker = Mutex::new(Some(runtime.spawn(worker.run())));
        let shut_down = AtomicBool::new(false);
        let inner = Inner {
            config,
            commands,
            permits,
            counters,
            failures,
            delivery,
            worker,
            shut_down,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Buffers an event and returns its id; waits for space only under [`FullBufferPolicy::Wait`].
    ///
    /// Assigns a UUIDv7 `event_id` when absent. `sent_at` is set on every attempt to send it.
    /// An event the server would refuse is refused here, counted as failed and handed to the
    /// error callback; it never reaches a batch.
    pub async fn track(&self, event: Event) -> Result<EventId, TrackError> {
        let encoded = self.encode(event)?;
        let permit = match self.inner.config.full_buffer_policy {
            FullBufferPolicy::Wait => self.acquire().await?,
            FullBufferPolicy::FailFast => self.try_acquire()?,
        };
        self.enqueue(encoded, permit)
    }

    /// Buffers an event without ever waiting: a full buffer is an error whatever the policy.
    pub fn try_track(&self, event: Event) -> Result<EventId, TrackError> {
        let encoded = self.encode(event)?;
        let permit = self.try_acquire()?;
        self.enqueue(encoded, permit)
    }

    /// Sends everything buffered and waits for the answers.
    ///
    /// The summary counts every event settled since the previous flush; if any failed
    /// permanently, the error carries the summary and the first failure.
    #[instrument(skip_all, err)]
    pub async fn flush(&self) -> Result<FlushSummary, FlushError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Flush(reply))
            .map_err(|_| FlushError::Closed)?;
        answer.await.map_err(|_| FlushError::Closed)?.into_result()
    }

    /// Flushes within `deadline`, then stops the background task; later tracks fail with
    /// [`TrackError::Closed`]. Past the deadline the task is stopped and the rest is lost.
    #[instrument(skip_all, fields(?deadline), err)]
    pub async fn shutdown(&self, deadline: Duration) -> Result<FlushSummary, FlushError> {
        self.inner.shut_down.store(true, Ordering::SeqCst);
        self.inner.permits.close();
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Shutdown(reply))
            .map_err(|_| FlushError::Closed)?;
        match tokio::time::timeout(deadline, answer).await {
            Ok(Ok(report)) => report.into_result(),
            Ok(Err(_)) => Err(FlushError::Closed),
            Err(_) => {
                self.inner.stop_worker();
                Err(FlushError::DeadlineExceeded {
                    unsent: self.stats().buffered,
                })
            }
        }
    }

    /// Sends `events` as one batch now, bypassing the buffer, and returns the accepted ids
    /// in order. Transient failures are retried, 413 answers split the batch, and events a 400
    /// names are failed while the rest is sent again, as for tracked events; resending the same
    /// events (same ids) after an error never duplicates.
    ///
    /// An invalid event refuses the whole call before anything is sent. Otherwise the error is
    /// the first failure, and every event not handed to the error callback was accepted.
    #[instrument(skip_all, fields(events = events.len()), err)]
    pub async fn send(&self, events: Vec<Event>) -> Result<Vec<EventId>, SendError> {
        let encoded = events
            .into_iter()
            .map(|mut event| {
                let id = event.assign_id();
                event.validate()?;
                EncodedEvent::encode(id, &event)
            })
            .collect::<Result<Vec<_>, EventError>>()?;
        let batch = self.checked_batch(encoded)?;
        let outcome = self.inner.delivery.deliver(batch).await;
        match outcome.error {
            None => Ok(outcome.accepted),
            Some(error) => Err(error),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Validates and serializes a tracked event; one refused is reported as failed.
    fn encode(&self, mut event: Event) -> Result<EncodedEvent, TrackError> {
        let id = event.assign_id();
        let checked = event
            .validate()
            .and_then(|()| EncodedEvent::encode(id, &event));
        let encoded = match checked {
            Ok(encoded) => encoded,
            Err(error) => {
                let failure = SendError::InvalidEvent(error.clone());
                self.inner.failures.report(&[id], &failure);
                return Err(TrackError::InvalidEvent(error));
            }
        };
        let (bytes, max_bytes) = (encoded.body_size(), self.inner.config.max_batch_bytes);
        if bytes > max_bytes {
            let error = SendError::BatchSize {
                events: 1,
                bytes,
                max_events: self.inner.config.max_batch_events,
                max_bytes,
            };
            self.inner.failures.report(&[id], &error);
            return Err(TrackError::EventTooLarge {
                bytes: encoded.json.len(),
                limit: max_bytes,
            });
        }
        Ok(encoded)
    }

    /// Waits for room in the buffer, counting the wait when it is full.
    async fn acquire(&self) -> Result<SemaphorePermit<'_>, TrackError> {
        match self.inner.permits.try_acquire() {
            Ok(permit) => Ok(permit),
            Err(TryAcquireError::Closed) => Err(TrackError::Closed),
            Err(TryAcquireError::NoPermits) => {
                self.inner.counters.add_waited_buffer_full();
                let waited = self.inner.permits.acquire().await;
                waited.map_err(|_| TrackError::Closed)
            }
        }
    }

    fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TrackError> {
        self.inner
            .permits
            .try_acquire()
            .map_err(|error| match error {
                TryAcquireError::Closed => TrackError::Closed,
                TryAcquireError::NoPermits => {
                    self.inner.counters.add_refused_buffer_full();
                    TrackError::BufferFull {
                        capacity: self.inner.config.buffer_capacity,
                    }
                }
            })
    }

    /// Hands the event to the background task; its permit is returned when it settles.
    fn enqueue(
        &self,
        event: EncodedEvent,
        permit: SemaphorePermit<'_>,
    ) -> Result<EventId, TrackError> {
        let id = event.id;
        self.inner.counters.add_buffered(1);
        if self.inner.commands.send(Command::Track(event)).is_err() {
            self.inner.counters.remove_buffered(1);
            return Err(TrackError::Closed);
        }
        permit.forget();
        Ok(id)
    }

    fn checked_batch(&self, events: Vec<EncodedEvent>) -> Result<Batch, SendError> {
        let batch = Batch::from_events(events);
        let (max_events, max_bytes) = (
            self.inner.config.max_batch_events,
            self.inner.config.max_batch_bytes,
        );
        if batch.is_empty() || batch.len() > max_events || batch.body_size() > max_bytes {
            let (events, bytes) = (batch.len(), batch.body_size());
            return Err(SendError::BatchSize {
                events,
                bytes,
                max_events,
                max_bytes,
            });
        }
        Ok(batch)
    }
}

fn batch_limits(config: &Config) -> BatchLimits {
    BatchLimits {
        max_events: config.max_batch_events,
        max_bytes: config.max_batch_bytes,
        linger: config.linger,
    }
}

impl Inner {
    fn stop_worker(&self) {
        let handle = match self.worker.lock() {
            Ok(mut worker) => worker.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = handle {
            handle.abort();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_worker();
        let unsent = self.counters.snapshot().buffered;
        if unsent > 0 && !self.shut_down.load(Ordering::SeqCst) {
            warn!(
                unsent,
                "eye-sdk client dropped without shutdown; {unsent} events were not sent"
            );
        }
    }
}

//! The background task: batches tracked events and delivers them, a few batches at a time.

use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::{Instant, sleep_until};

use crate::FlushSummary;
use crate::batch::{Batch, Batcher, EncodedEvent};
use crate::delivery::{Delivery, Outcome};
use crate::error::{FlushError, SendError};
use crate::stats::Counters;
use crate::transport::HttpTransport;

/// Batches delivered concurrently; more wait (and so, eventually, does `track`).
const MAX_IN_FLIGHT: usize = 4;

type InFlight = FuturesUnordered<Pin<Box<dyn Future<Output = Outcome> + Send>>>;

/// A request from the [`Client`](crate::Client) to its background task.
pub(crate) enum Command {
    /// Buffer this event.
    Track(EncodedEvent),
    /// Send everything buffered, wait for the answers, report since the last flush.
    Flush(oneshot::Sender<Report>),
    /// Like `Flush`, then stop; events tracked before the stop are still delivered.
    Shutdown(oneshot::Sender<Report>),
}

/// Results accumulated between two flushes.
#[derive(Debug, Default)]
pub(crate) struct Report {
    summary: FlushSummary,
    error: Option<SendError>,
}

impl Report {
    fn add(&mut self, outcome: Outcome) {
        self.summary.sent += count(outcome.accepted.len());
        self.summary.failed += count(outcome.failed);
        if self.error.is_none() {
            self.error = outcome.error;
        }
    }

    /// `Ok` with the counts, or the first permanent failure.
    pub fn into_result(self) -> Result<FlushSummary, FlushError> {
        match self.error {
            None => Ok(self.summary),
            Some(error) => Err(FlushError::Failed {
                summary: self.summary,
                error,
            }),
        }
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The state of the background task.
pub(crate) struct Worker {
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub batcher: Batcher,
    pub delivery: Arc<Delivery<HttpTransport>>,
    pub permits: Arc<Semaphore>,
    pub counters: Arc<Counters>,
    pub in_flight: InFlight,
    pub report: Report,
    pub shutdown_reply: Option<oneshot::Sender<Report>>,
}

impl Worker {
    /// Runs until shut down: then delivers what is left and answers the shutdown.
    pub async fn run(mut self) {
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                () = linger(self.batcher.deadline()) => {
                    let batch = self.batcher.take();
                    self.dispatch(batch).await;
                }
                Some(outcome) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.settle(outcome);
                }
            }
        }
        self.drain().await;
        if let Some(reply) = self.shutdown_reply.take() {
            // The caller may have stopped waiting (deadline); nothing to do then.
            let _ = reply.send(std::mem::take(&mut self.report));
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Track(event) => {
                if let Some(batch) = self.batcher.push(event, Instant::now()) {
                    self.dispatch(batch).await;
                }
            }
            Command::Flush(reply) => {
                self.drain().await;
                let _ = reply.send(std::mem::take(&mut self.report));
            }
            Command::Shutdown(reply) => {
                // Commands already queued are still handled; `recv` then returns `None`.
                self.commands.close();
                self.shutdown_reply = Some(reply);
            }
        }
    }

    /// Starts delivering `batch`, first waiting for a free slot.
    async fn dispatch(&mut self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            if let Some(outcome) = self.in_flight.next().await {
                self.settle(outcome);
            }
        }
        let delivery = Arc::clone(&self.delivery);
        self.in_flight
            .push(Box::pin(async move { delivery.deliver(batch).await }));
    }

    /// Sends the partial batch and waits for every delivery in flight.
    async fn drain(&mut self) {
        let batch = self.batcher.take();
        self.dispatch(batch).await;
        while let Some(outcome) = self.in_flight.next().await {
            self.settle(outcome);
        }
    }

    /// Frees the buffer space of settled events and records their outcome.
    fn settle(&mut self, outcome: Outcome) {
        let settled = outcome.settled();
        self.counters.remove_buffered(settled);
        self.permits.add_permits(settled);
        self.report.add(outcome);
    }
}

/// Completes at the linger deadline of the current batch; never without one.
async fn linger(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => pending().await,
    }
}

//! Progress on stderr while a phase runs: one line a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Counts events of a phase and prints the count and the rate every second until dropped.
#[derive(Clone)]
pub struct Progress {
    count: Arc<AtomicU64>,
    _ticker: Arc<TickerGuard>,
}

struct TickerGuard(JoinHandle<()>);

impl Drop for TickerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Progress {
    /// Starts printing `label: n events (r/s)` once a second.
    pub fn start(label: &str) -> Self {
        let count = Arc::new(AtomicU64::new(0));
        let label = label.to_owned();
        let shared = count.clone();
        let ticker = tokio::spawn(async move {
            let started = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let n = shared.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "  [{label}] {secs:6.1}s  {n:>9} events  {:>8.0}/s",
                    n as f64 / secs
                );
            }
        });
        Self {
            count,
            _ticker: Arc::new(TickerGuard(ticker)),
        }
    }

    /// Events counted so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Counts `n` more events.
    pub fn add(&self, n: u64) {
        self.count.fetch_add(n, Ordering::Relaxed);
    }
}

/// A one-off progress message.
pub fn note(message: &str) {
    eprintln!("{message}");
}

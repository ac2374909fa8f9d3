//! Fault injection: the real `eye` processes on private PostgreSQL and Redis instances (and the embedded
//! default), a load of tens of thousands of events with client-set ids, and a fault in the middle of it:
//! a `kill -9`, a restart, an outage. Afterwards every acknowledged event is stored exactly once.
//!
//! Each scenario prints `fault PASS|FAIL <scenario>: acknowledged = A, lost = L, duplicated = D, …` and,
//! when it fails, the last warnings and errors of each process's log. `EYE_FAULT_KEEP=1` keeps the
//! scenario's directories (data and logs). The `eye` binary must be built (`cargo build -p eye-server`).

mod cluster;
mod embedded;
mod load;
mod outages;
mod processes;
mod procs;
mod rules_at_scale;
mod services;
mod verify;

use load::Pace;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Scenarios at once: each runs a database, Redis and two `eye` processes, on a 2-core machine.
static SLOTS: Semaphore = Semaphore::const_new(2);

/// Waits for a free slot; the scenario holds it until it ends.
pub async fn scenario_slot() -> anyhow::Result<SemaphorePermit<'static>> {
    Ok(SLOTS.acquire().await?)
}

/// The standard load: 300 batches of 100 events (30,000) at 1,500 events/s, about 20 s.
pub const BATCHES: usize = 300;
pub const BATCH_SIZE: usize = 100;
pub const PACE: Pace = Pace {
    clients: 4,
    events_per_second: 1_500,
};

/// When the fault strikes: a quarter of the load acknowledged.
pub const STRIKE_AT: usize = BATCHES * BATCH_SIZE / 4;

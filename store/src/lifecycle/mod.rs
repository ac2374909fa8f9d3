//! The data lifecycle: retention (old events go), user erasure (one user's data goes) and what both must
//! keep exact on the way (sessions). Export needs nothing here: it pages through the analysts' query.

mod erasure;
mod retention;
mod sessions;
mod withhold;

pub use erasure::{ErasureReport, ErasureRequest, UserHash};
pub use retention::RetentionStep;

pub(crate) use retention::take_sweeper_lock;
pub(crate) use withhold::withhold_erased;

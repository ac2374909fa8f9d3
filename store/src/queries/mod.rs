//! The analysts' read side: events, sessions and counts over time, each served from an index.

mod cursor;
mod events;
mod explain;
mod sessions;
mod stats;

pub use cursor::{CursorError, EventCursor, EventOrder, NotificationCursor, SessionCursor};
pub use events::{EventFilter, StoredEvent};
pub use sessions::{SessionFilter, SessionSummary};
pub use stats::{Bucket, GroupBy, Interval, StatsFilter};

use crate::ReadScope;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{ExprTrait, SimpleExpr};
use sea_orm::{ColumnTrait, Condition};

/// Most rows in one page.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// One page of results and where the next one starts (`None` on the last page).
#[derive(Debug, Clone)]
pub struct Page<T, C> {
    /// The rows, in order.
    pub items: Vec<T>,
    /// The cursor for the next page.
    pub next: Option<C>,
}

/// A half-open time range: `from` inclusive, `to` exclusive; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive start.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive end.
    pub to: Option<DateTime<Utc>>,
}

impl TimeRange {
    fn condition(&self, column: impl ColumnTrait) -> Condition {
        Condition::all()
            .add_option(self.from.map(|from| column.gte(from)))
            .add_option(self.to.map(|to| column.lt(to)))
    }
}

/// `None` when the scope allows nothing (so the query need not run); otherwise its condition.
fn scope_condition(scope: &ReadScope, column: impl ColumnTrait) -> Option<Condition> {
    match scope {
        ReadScope::All => Some(Condition::all()),
        ReadScope::Applications(apps) if apps.is_empty() => None,
        ReadScope::Applications(apps) => {
            Some(Condition::all().add(column.is_in(apps.iter().map(|a| a.as_uuid()))))
        }
    }
}

/// `(a, b, …) > (x, y, …)`: strictly after a keyset position, in index order.
pub(crate) fn after(columns: Vec<SimpleExpr>, values: Vec<SimpleExpr>) -> SimpleExpr {
    SimpleExpr::tuple(columns).gt(SimpleExpr::tuple(values))
}

/// `(a, b, …) < (x, y, …)`: strictly before a keyset position, for pages read in reverse index order.
pub(crate) fn before(columns: Vec<SimpleExpr>, values: Vec<SimpleExpr>) -> SimpleExpr {
    SimpleExpr::tuple(columns).lt(SimpleExpr::tuple(values))
}

/// Splits one extra fetched row off into a cursor.
pub(crate) fn paginate<T, C>(
    mut rows: Vec<T>,
    limit: u64,
    cursor_of: impl Fn(&T) -> C,
) -> Page<T, C> {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(cursor_of)
    } else {
        None
    };
    Page { items: rows, next }
}

//! Event counts per time bucket and group, for dashboards.
//!
//! Bucketing is the one place where the SQL differs by backend: PostgreSQL truncates with `date_trunc`,
//! SQLite (which stores timestamps as RFC 3339 text) with `strftime`. Both yield the bucket start as
//! `YYYY-MM-DDTHH:MM:SSZ` text, so the rest of the query and its decoding are shared.

use super::{TimeRange, scope_condition};
use crate::entities::events;
use crate::{ReadScope, Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::Category;
use sea_orm::sea_query::{Expr, Order, Query, SelectStatement};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityName, QueryResult};
use uuid::Uuid;

/// The width of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl Interval {
    /// The bucket's length in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3600,
            Self::Day => 86_400,
        }
    }

    /// The bucket of an event: `(group by, select)` expressions. On PostgreSQL the rows are grouped by
    /// the truncated timestamp itself, which migration 7 keeps statistics on (so the planner counts in a
    /// hash table), and only the ~100 buckets are formatted; SQLite groups by the formatted text.
    fn bucket_sql(self, postgres: bool) -> (String, String) {
        let (unit, sqlite_format) = match self {
            Self::Minute => ("minute", "%Y-%m-%dT%H:%M:00Z"),
            Self::Hour => ("hour", "%Y-%m-%dT%H:00:00Z"),
            Self::Day => ("day", "%Y-%m-%dT00:00:00Z"),
        };
        if postgres {
            let truncated = format!("date_trunc('{unit}', \"timestamp\" AT TIME ZONE 'UTC')");
            let formatted = format!("to_char({truncated}, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
            (truncated, formatted)
        } else {
            let formatted = format!("strftime('{sqlite_format}', \"timestamp\")");
            (formatted.clone(), formatted)
        }
    }
}

/// What the counts are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The event's category.
    Category,
    /// The event's name.
    Name,
    /// The sending application (its id).
    Application,
}

impl GroupBy {
    fn column(self) -> events::Column {
        match self {
            Self::Category => events::Column::Category,
            Self::Name => events::Column::Name,
            Self::Application => events::Column::ApplicationId,
        }
    }
}

/// Which counts to compute.
#[derive(Debug, Clone)]
pub struct StatsFilter {
    /// The applications the reader may see (already narrowed to a requested application).
    pub scope: ReadScope,
    /// Only events of this category.
    pub category: Option<Category>,
    /// When the events occurred.
    pub range: TimeRange,
    /// Bucket width.
    pub interval: Interval,
    /// Grouping.
    pub group_by: GroupBy,
}

/// The number of events of one group in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket's start (UTC).
    pub start: DateTime<Utc>,
    /// The group's value (category, name, or application id).
    pub group: String,
    /// Events in the bucket.
    pub count: i64,
}

impl Store {
    /// Counts per bucket and group, ordered by bucket start then group; empty buckets are left out.
    #[tracing::instrument(skip_all, err)]
    pub async fn event_counts(&self, filter: &StatsFilter) -> Result<Vec<Bucket>, StoreError> {
        let Some(scope) = scope_condition(&filter.scope, events::Column::ApplicationId) else {
            return Ok(Vec::new());
        };
        let select = counts_query(filter, scope, self.is_postgres());
        let rows = self.db.query_all(&select).await?;
        rows.iter()
            .map(|row| bucket(row, filter.group_by))
            .collect()
    }
}

pub(super) fn counts_query(
    filter: &StatsFilter,
    scope: Condition,
    postgres: bool,
) -> SelectStatement {
    use events::Column as C;
    let condition = Condition::all()
        .add(scope)
        .add_option(filter.category.as_ref().map(|c| C::Category.eq(c.as_str())))
        .add(filter.range.condition(C::Timestamp));
    let (group_by, bucket) = filter.interval.bucket_sql(postgres);
    Query::select()
        .expr_as(Expr::cust(bucket), "bucket")
        .expr_as(Expr::col(filter.group_by.column()), "grp")
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .from(events::Entity.table_ref())
        .cond_where(condition)
        .add_group_by([Expr::cust(group_by), Expr::col(filter.group_by.column())])
        .order_by_expr(Expr::cust("1"), Order::Asc)
        .order_by_expr(Expr::cust("2"), Order::Asc)
        .to_owned()
}

fn bucket(row: &QueryResult, group_by: GroupBy) -> Result<Bucket, StoreError> {
    let start: String = row.try_get("", "bucket")?;
    let start = DateTime::parse_from_rfc3339(&start)
        .map_err(|err| DbErr::Custom(format!("bucket start {start:?}: {err}")))?;
    let group = match group_by {
        GroupBy::Application => row.try_get::<Uuid>("", "grp")?.to_string(),
        GroupBy::Category | GroupBy::Name => row.try_get("", "grp")?,
    };
    Ok(Bucket {
        start: start.with_timezone(&Utc),
        group,
        count: row.try_get("", "n")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_backend_truncates_to_the_interval_in_utc() {
        let cases = [
            (
                Interval::Minute,
                true,
                "date_trunc('minute', \"timestamp\" AT TIME ZONE 'UTC')",
            ),
            (Interval::Day, true, "date_trunc('day'"),
            (
                Interval::Hour,
                false,
                "strftime('%Y-%m-%dT%H:00:00Z', \"timestamp\")",
            ),
            (Interval::Day, false, "strftime('%Y-%m-%dT00:00:00Z'"),
        ];
        for (interval, postgres, expected) in cases {
            let (group_by, select) = interval.bucket_sql(postgres);
            assert!(
                group_by.contains(expected) && select.contains(&group_by),
                "{interval:?} postgres={postgres}: group by {group_by}, select {select}"
            );
        }
    }
}

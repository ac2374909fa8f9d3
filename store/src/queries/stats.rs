//! Event counts per time bucket and group, for dashboards.
//!
//! Bucketing is the one place where the SQL differs by backend: PostgreSQL truncates with `date_trunc`,
//! SQLite (which stores timestamps as RFC 3339 text) with `strftime`. Both yield the bucket start as
//! `YYYY-MM-DDTHH:MM:SSZ` text, so the rest of the query and its decoding are shared.

use super::{TimeRange, scope_condition};
use crate::entities::{event_counts, events};
use crate::event_counts::{hour_of, next_hour_from};
use crate::{ReadScope, Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::Category;
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityName, QueryResult};
use std::collections::BTreeMap;
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

    /// The bucket of a row by its time `column`: `(group by, select)` expressions. On PostgreSQL the rows
    /// are grouped by the truncated time itself, which migration 7 keeps statistics on for the events (so
    /// the planner counts in a hash table), and only the buckets are formatted; SQLite, which stores times
    /// as RFC 3339 text, groups by the formatted text.
    fn bucket_sql(self, postgres: bool, column: &str) -> (String, String) {
        let (unit, sqlite_format) = match self {
            Self::Minute => ("minute", "%Y-%m-%dT%H:%M:00Z"),
            Self::Hour => ("hour", "%Y-%m-%dT%H:00:00Z"),
            Self::Day => ("day", "%Y-%m-%dT00:00:00Z"),
        };
        if postgres {
            let truncated = format!("date_trunc('{unit}', \"{column}\" AT TIME ZONE 'UTC')");
            let formatted = format!("to_char({truncated}, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
            (truncated, formatted)
        } else {
            let formatted = format!("strftime('{sqlite_format}', \"{column}\")");
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
    fn events_column(self) -> events::Column {
        match self {
            Self::Category => events::Column::Category,
            Self::Name => events::Column::Name,
            Self::Application => events::Column::ApplicationId,
        }
    }

    fn counts_column(self) -> event_counts::Column {
        match self {
            Self::Category => event_counts::Column::Category,
            Self::Name => event_counts::Column::Name,
            Self::Application => event_counts::Column::ApplicationId,
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

/// Where a range's counts come from: its whole hours from the hourly counts (`event_counts`), and the
/// parts of an hour at its ends (or every minute bucket) from the events themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sources {
    hours: Option<TimeRange>,
    events: Vec<TimeRange>,
}

impl Sources {
    fn of(range: TimeRange, interval: Interval) -> Self {
        let start = range.from.map(next_hour_from);
        let end = range.to.map(hour_of);
        let no_whole_hour = matches!((start, end), (Some(start), Some(end)) if start >= end);
        if interval == Interval::Minute || no_whole_hour {
            return Self {
                hours: None,
                events: vec![range],
            };
        }
        let head = range
            .from
            .zip(start)
            .filter(|(from, start)| from < start)
            .map(|(from, start)| TimeRange {
                from: Some(from),
                to: Some(start),
            });
        let tail = end
            .zip(range.to)
            .filter(|(end, to)| end < to)
            .map(|(end, to)| TimeRange {
                from: Some(end),
                to: Some(to),
            });
        Self {
            hours: Some(TimeRange {
                from: start,
                to: end,
            }),
            events: head.into_iter().chain(tail).collect(),
        }
    }
}

impl Store {
    /// Counts per bucket and group, ordered by bucket start then group (by bytes); empty buckets are left
    /// out. Whole hours are read from the hourly counts, so a 30-day range reads a few thousand rows.
    #[tracing::instrument(skip_all, err)]
    pub async fn event_counts(&self, filter: &StatsFilter) -> Result<Vec<Bucket>, StoreError> {
        let mut totals = BTreeMap::new();
        for select in count_queries(filter, self.is_postgres()) {
            for row in self.db.query_all(&select).await? {
                let (key, n) = bucket_row(&row, filter.group_by)?;
                *totals.entry(key).or_insert(0) += n;
            }
        }
        Ok(totals
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|((start, group), count)| Bucket {
                start,
                group,
                count,
            })
            .collect())
    }
}

/// The statements whose rows [`Store::event_counts`] sums: none when the scope allows nothing.
pub(super) fn count_queries(filter: &StatsFilter, postgres: bool) -> Vec<SelectStatement> {
    let sources = Sources::of(filter.range, filter.interval);
    let mut queries = Vec::new();
    if let Some(hours) = sources.hours {
        let scope = scope_condition(&filter.scope, event_counts::Column::ApplicationId);
        queries.extend(scope.map(|scope| hourly_counts_query(filter, scope, hours, postgres)));
    }
    for range in sources.events {
        let scope = scope_condition(&filter.scope, events::Column::ApplicationId);
        queries.extend(scope.map(|scope| counts_query(filter, scope, range, postgres)));
    }
    queries
}

/// Counts of the events that occurred in `range`, straight from the events.
fn counts_query(
    filter: &StatsFilter,
    scope: Condition,
    range: TimeRange,
    postgres: bool,
) -> SelectStatement {
    use events::Column as C;
    let condition = Condition::all()
        .add(scope)
        .add_option(filter.category.as_ref().map(|c| C::Category.eq(c.as_str())))
        .add(range.condition(C::Timestamp));
    let (group_by, bucket) = filter.interval.bucket_sql(postgres, "timestamp");
    Query::select()
        .expr_as(Expr::cust(bucket), "bucket")
        .expr_as(Expr::col(filter.group_by.events_column()), "grp")
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .from(events::Entity.table_ref())
        .cond_where(condition)
        .add_group_by([
            Expr::cust(group_by),
            Expr::col(filter.group_by.events_column()),
        ])
        .to_owned()
}

/// Counts of the whole hours in `hours`, summed from the hourly counts' slots.
fn hourly_counts_query(
    filter: &StatsFilter,
    scope: Condition,
    hours: TimeRange,
    postgres: bool,
) -> SelectStatement {
    use event_counts::Column as C;
    let condition = Condition::all()
        .add(scope)
        .add_option(filter.category.as_ref().map(|c| C::Category.eq(c.as_str())))
        .add(hours.condition(C::Hour));
    let (group_by, bucket) = filter.interval.bucket_sql(postgres, "hour");
    Query::select()
        .expr_as(Expr::cust(bucket), "bucket")
        .expr_as(Expr::col(filter.group_by.counts_column()), "grp")
        .expr_as(Expr::cust("CAST(SUM(events) AS BIGINT)"), "n")
        .from(event_counts::Entity.table_ref())
        .cond_where(condition)
        .add_group_by([
            Expr::cust(group_by),
            Expr::col(filter.group_by.counts_column()),
        ])
        .to_owned()
}

type BucketKey = (DateTime<Utc>, String);

fn bucket_row(row: &QueryResult, group_by: GroupBy) -> Result<(BucketKey, i64), StoreError> {
    let start: String = row.try_get("", "bucket")?;
    let start = DateTime::parse_from_rfc3339(&start)
        .map_err(|err| DbErr::Custom(format!("bucket start {start:?}: {err}")))?;
    let group = match group_by {
        GroupBy::Application => row.try_get::<Uuid>("", "grp")?.to_string(),
        GroupBy::Category | GroupBy::Name => row.try_get("", "grp")?,
    };
    Ok(((start.with_timezone(&Utc), group), row.try_get("", "n")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("an RFC 3339 time")
            .to_utc()
    }

    fn range(from: Option<&str>, to: Option<&str>) -> TimeRange {
        TimeRange {
            from: from.map(at),
            to: to.map(at),
        }
    }

    #[test]
    fn whole_hours_come_from_the_hourly_counts_and_the_ends_from_the_events() {
        let aligned = range(Some("2026-01-01T00:00:00Z"), Some("2026-01-31T00:00:00Z"));
        assert_eq!(
            Sources::of(aligned, Interval::Day),
            Sources {
                hours: Some(aligned),
                events: vec![]
            }
        );
        let ragged = range(Some("2026-01-01T06:30:00Z"), Some("2026-01-02T06:15:00Z"));
        assert_eq!(
            Sources::of(ragged, Interval::Hour),
            Sources {
                hours: Some(range(
                    Some("2026-01-01T07:00:00Z"),
                    Some("2026-01-02T06:00:00Z")
                )),
                events: vec![
                    range(Some("2026-01-01T06:30:00Z"), Some("2026-01-01T07:00:00Z")),
                    range(Some("2026-01-02T06:00:00Z"), Some("2026-01-02T06:15:00Z")),
                ]
            }
        );
        let open_start = range(None, Some("2026-01-02T06:15:00Z"));
        assert_eq!(
            Sources::of(open_start, Interval::Day).hours,
            Some(range(None, Some("2026-01-02T06:00:00Z")))
        );
    }

    #[test]
    fn minutes_and_ranges_within_one_hour_are_counted_from_the_events() {
        let within = range(Some("2026-01-01T06:10:00Z"), Some("2026-01-01T06:50:00Z"));
        let day = range(Some("2026-01-01T00:00:00Z"), Some("2026-01-02T00:00:00Z"));
        for (range, interval) in [(within, Interval::Hour), (day, Interval::Minute)] {
            assert_eq!(
                Sources::of(range, interval),
                Sources {
                    hours: None,
                    events: vec![range]
                }
            );
        }
    }

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
            let (group_by, select) = interval.bucket_sql(postgres, "timestamp");
            assert!(
                group_by.contains(expected) && select.contains(&group_by),
                "{interval:?} postgres={postgres}: group by {group_by}, select {select}"
            );
        }
    }
}

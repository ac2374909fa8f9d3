//! Query-string parameters of the query API, parsed at the edge: every bad parameter is named in one 400.

use crate::api::event_order;
use crate::api::params::Words;
use crate::api::problem::{ApiError, FieldError};
use chrono::{DateTime, Utc};
use eye_domain::{ApplicationId, Category, EventName, SessionId, UserId};
use eye_store::ReadScope;
use eye_store::queries::{
    EventFilter, GroupBy, Interval, MAX_PAGE_SIZE, SessionCursor, SessionFilter, StatsFilter,
    TimeRange,
};
use std::fmt::Display;
use uuid::Uuid;

/// Page size when `limit` is absent.
pub const DEFAULT_PAGE_SIZE: u64 = 100;

/// Most buckets one stats request may produce (per group).
pub const MAX_BUCKETS: i64 = 10_000;

/// Collects every bad parameter, so one 400 names them all.
#[derive(Debug, Default)]
pub struct ParamErrors(Vec<FieldError>);

impl ParamErrors {
    /// Parses a parameter if present; records why it is bad otherwise.
    pub fn parse<T, E: Display>(
        &mut self,
        field: &str,
        value: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match parse(value?) {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                self.0.push(FieldError::new(field, err.to_string()));
                None
            }
        }
    }

    /// Records a bad parameter.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// `Ok` if every parameter was good.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.0))
        }
    }
}

/// An RFC 3339 instant (URL-encode a `+` offset as `%2B`, or use `Z`).
pub fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| "expected an RFC 3339 timestamp, e.g. 2021-01-01T09:00:00Z".to_owned())
}

fn page_size(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        _ => Err(format!("must be an integer from 1 to {MAX_PAGE_SIZE}")),
    }
}

fn application(text: &str) -> Result<ApplicationId, uuid::Error> {
    Uuid::parse_str(text).map(ApplicationId::from)
}

/// A `from` at or after `to` selects nothing: every time-filtered endpoint answers it with this 400.
pub fn check_order(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Result<(), ApiError> {
    let mut errors = ParamErrors::default();
    add_order_error(&mut errors, from, to);
    errors.finish()
}

fn add_order_error(
    errors: &mut ParamErrors,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) {
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        errors.add("from", "must be earlier than `to`");
    }
}

/// `from` (inclusive) and `to` (exclusive); `from` must come before `to`.
pub fn range(errors: &mut ParamErrors, from: Option<&str>, to: Option<&str>) -> TimeRange {
    let range = TimeRange {
        from: errors.parse("from", from, instant),
        to: errors.parse("to", to, instant),
    };
    add_order_error(errors, range.from, range.to);
    range
}

/// The caller's scope narrowed to a requested application; naming one outside the scope is 403.
pub fn narrow(
    scope: &ReadScope,
    application: Option<ApplicationId>,
) -> Result<ReadScope, ApiError> {
    match application {
        Some(app) if !scope.allows(app) => Err(ApiError::Forbidden(format!(
            "this read key may not read application {app}"
        ))),
        _ => Ok(scope.narrowed_to(application)),
    }
}

/// Raw parameters of `GET /v1/events`.
#[derive(Debug, Default)]
pub struct EventQuery {
    /// `application_id`.
    pub application_id: Option<String>,
    /// `session_id`.
    pub session_id: Option<String>,
    /// `category`.
    pub category: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `user_id`.
    pub user_id: Option<String>,
    /// `from`.
    pub from: Option<String>,
    /// `to`.
    pub to: Option<String>,
    /// `limit`.
    pub limit: Option<String>,
    /// `order` (default `asc`).
    pub order: Option<String>,
    /// `cursor`.
    pub cursor: Option<String>,
}

impl EventQuery {
    /// The store's filter, or a 400 naming every bad parameter (403 for an application outside `scope`).
    pub fn into_filter(self, scope: &ReadScope) -> Result<EventFilter, ApiError> {
        let mut errors = ParamErrors::default();
        let app = errors.parse(
            "application_id",
            self.application_id.as_deref(),
            application,
        );
        let order = errors
            .parse("order", self.order.as_deref(), event_order::order)
            .unwrap_or_default();
        let filter = EventFilter {
            scope: ReadScope::All,
            session_id: errors.parse("session_id", self.session_id.as_deref(), |s| {
                SessionId::parse(s)
            }),
            category: errors.parse("category", self.category.as_deref(), |s| Category::parse(s)),
            name: errors.parse("name", self.name.as_deref(), |s| EventName::parse(s)),
            user_id: errors.parse("user_id", self.user_id.as_deref(), |s| UserId::parse(s)),
            range: range(&mut errors, self.from.as_deref(), self.to.as_deref()),
            order,
            after: errors.parse("cursor", self.cursor.as_deref(), |text| {
                event_order::cursor_for(text, order)
            }),
            limit: errors
                .parse("limit", self.limit.as_deref(), page_size)
                .unwrap_or(DEFAULT_PAGE_SIZE),
        };
        errors.finish()?;
        Ok(EventFilter {
            scope: narrow(scope, app)?,
            ..filter
        })
    }
}

/// Raw parameters of `GET /v1/sessions`.
#[derive(Debug, Default)]
pub struct SessionQuery {
    /// `application_id`.
    pub application_id: Option<String>,
    /// `from`.
    pub from: Option<String>,
    /// `to`.
    pub to: Option<String>,
    /// `limit`.
    pub limit: Option<String>,
    /// `cursor`.
    pub cursor: Option<String>,
}

impl SessionQuery {
    /// The store's filter, or a 400 naming every bad parameter (403 for an application outside `scope`).
    pub fn into_filter(self, scope: &ReadScope) -> Result<SessionFilter, ApiError> {
        let mut errors = ParamErrors::default();
        let app = errors.parse(
            "application_id",
            self.application_id.as_deref(),
            application,
        );
        let range = range(&mut errors, self.from.as_deref(), self.to.as_deref());
        let after = errors.parse("cursor", self.cursor.as_deref(), SessionCursor::decode);
        let limit = errors.parse("limit", self.limit.as_deref(), page_size);
        errors.finish()?;
        Ok(SessionFilter {
            scope: narrow(scope, app)?,
            range,
            after,
            limit: limit.unwrap_or(DEFAULT_PAGE_SIZE),
        })
    }
}

/// Raw parameters of `GET /v1/stats/events`.
#[derive(Debug, Default)]
pub struct StatsQuery {
    /// `application_id`.
    pub application_id: Option<String>,
    /// `group_by` (default `category`).
    pub group_by: Option<String>,
    /// `interval` (default `hour`).
    pub interval: Option<String>,
    /// `from` (required).
    pub from: Option<String>,
    /// `to` (required).
    pub to: Option<String>,
    /// `category`.
    pub category: Option<String>,
}

/// The values of `group_by`.
pub struct GroupByWords;

impl Words for GroupByWords {
    const WORDS: &'static [&'static str] = &["category", "name", "application"];
}

/// The values of `interval`.
pub struct IntervalWords;

impl Words for IntervalWords {
    const WORDS: &'static [&'static str] = &["minute", "hour", "day"];
}

fn group_by(text: &str) -> Result<GroupBy, &'static str> {
    match text {
        "category" => Ok(GroupBy::Category),
        "name" => Ok(GroupBy::Name),
        "application" => Ok(GroupBy::Application),
        _ => Err("must be `category`, `name` or `application`"),
    }
}

fn interval(text: &str) -> Result<Interval, &'static str> {
    match text {
        "minute" => Ok(Interval::Minute),
        "hour" => Ok(Interval::Hour),
        "day" => Ok(Interval::Day),
        _ => Err("must be `minute`, `hour` or `day`"),
    }
}

impl StatsQuery {
    /// The store's filter, or a 400 naming every bad parameter (403 for an application outside `scope`).
    pub fn into_filter(self, scope: &ReadScope) -> Result<StatsFilter, ApiError> {
        let mut errors = ParamErrors::default();
        let app = errors.parse(
            "application_id",
            self.application_id.as_deref(),
            application,
        );
        let range = range(&mut errors, self.from.as_deref(), self.to.as_deref());
        let group_by = errors.parse(
            "group_by",
            Some(self.group_by.as_deref().unwrap_or("category")),
            group_by,
        );
        let interval = errors.parse(
            "interval",
            Some(self.interval.as_deref().unwrap_or("hour")),
            interval,
        );
        let category = errors.parse("category", self.category.as_deref(), |s| Category::parse(s));
        check_buckets(&mut errors, &range, interval);
        errors.finish()?;
        Ok(StatsFilter {
            scope: narrow(scope, app)?,
            category,
            range,
            interval: interval.unwrap_or(Interval::Hour),
            group_by: group_by.unwrap_or(GroupBy::Category),
        })
    }
}

/// Stats need a bounded range: both ends, and at most [`MAX_BUCKETS`] buckets.
fn check_buckets(errors: &mut ParamErrors, range: &TimeRange, interval: Option<Interval>) {
    for (field, end) in [("from", range.from), ("to", range.to)] {
        if end.is_none() && !errors.0.iter().any(|e| e.field == field) {
            errors.add(field, "required");
        }
    }
    if let (Some(from), Some(to), Some(interval)) = (range.from, range.to, interval)
        && (to - from).num_seconds() / interval.seconds() > MAX_BUCKETS
    {
        errors.add(
            "interval",
            format!("more than {MAX_BUCKETS} buckets: widen it or narrow the range"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Invalid(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => vec![format!("not a 400: {other}")],
        }
    }

    #[test]
    fn each_bad_event_parameter_is_named() {
        let cases = [
            (
                EventQuery {
                    from: Some("yesterday".into()),
                    ..Default::default()
                },
                "from",
            ),
            (
                EventQuery {
                    to: Some("2021-01-01".into()),
                    ..Default::default()
                },
                "to",
            ),
            (
                EventQuery {
                    limit: Some("0".into()),
                    ..Default::default()
                },
                "limit",
            ),
            (
                EventQuery {
                    limit: Some("1001".into()),
                    ..Default::default()
                },
                "limit",
            ),
            (
                EventQuery {
                    cursor: Some("nope".into()),
                    ..Default::default()
                },
                "cursor",
            ),
            (
                EventQuery {
                    application_id: Some("x".into()),
                    ..Default::default()
                },
                "application_id",
            ),
            (
                EventQuery {
                    category: Some(String::new()),
                    ..Default::default()
                },
                "category",
            ),
            (
                EventQuery {
                    from: Some("2021-01-02T00:00:00Z".into()),
                    to: Some("2021-01-01T00:00:00Z".into()),
                    ..Default::default()
                },
                "from",
            ),
        ];
        for (query, field) in cases {
            let err = query.into_filter(&ReadScope::All).expect_err(field);
            assert_eq!(fields(err), vec![field.to_owned()]);
        }
    }

    #[test]
    fn defaults_fill_in_for_absent_parameters() {
        let filter = EventQuery::default()
            .into_filter(&ReadScope::All)
            .expect("valid");
        assert_eq!(filter.limit, DEFAULT_PAGE_SIZE);
        assert_eq!(filter.range, TimeRange::default());
    }

    #[test]
    fn naming_an_application_outside_the_scope_is_forbidden() {
        let scope = ReadScope::Applications(vec![ApplicationId::generate()]);
        let query = EventQuery {
            application_id: Some(ApplicationId::generate().to_string()),
            ..Default::default()
        };
        assert!(matches!(
            query.into_filter(&scope),
            Err(ApiError::Forbidden(_))
        ));
    }

    #[test]
    fn stats_need_a_bounded_range_with_a_sane_number_of_buckets() {
        let missing = StatsQuery::default()
            .into_filter(&ReadScope::All)
            .expect_err("no range");
        assert_eq!(fields(missing), vec!["from".to_owned(), "to".to_owned()]);
        let year_by_minute = StatsQuery {
            from: Some("2021-01-01T00:00:00Z".into()),
            to: Some("2022-01-01T00:00:00Z".into()),
            interval: Some("minute".into()),
            ..Default::default()
        };
        let err = year_by_minute
            .into_filter(&ReadScope::All)
            .expect_err("too many");
        assert_eq!(fields(err), vec!["interval".to_owned()]);
    }
}

//! Analysts' queries (read key or admin token): events, sessions and counts over time.

use crate::api::event_order::OrderWords;
use crate::api::json_out::SerdeJson;
use crate::api::params::{self, Cursor, Id, Instant, Limit, OneOf, Required};
use crate::api::problem::{ApiError, FieldError};
use crate::api::query_params::{EventQuery, GroupByWords, IntervalWords, SessionQuery, StatsQuery};
use crate::api::query_wire::{
    EventPage, EventStats, EventsFound, SessionPage, SessionsFound, StatsFound,
};
use crate::api::read_auth::ReadAccess;
use crate::state::AppState;
use eye_store::ReadScope;
use eye_store::queries::EventFilter;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::{OpenApi, Tags};

#[derive(Tags)]
enum QueryTags {
    /// Reading events, sessions and counts (read key or admin token).
    Query,
}

/// The query endpoints.
pub struct QueryApi;

/// Every query parameter is taken as text and parsed in `query_params`, so a bad one is named in a 400
/// problem like any other field; each is documented with its type. (One handler argument per parameter is
/// how poem-openapi documents them, hence the `too_many_arguments` allowances.)
pub(crate) type Param<S> = Query<params::Param<S>>;
pub(crate) type Text<const MAX: usize> = Param<params::Text<MAX>>;

#[OpenApi(tag = "QueryTags::Query")]
impl QueryApi {
    /// Query events
    ///
    /// Any combination of filters, ordered by `timestamp`, then by storage order for equal timestamps:
    /// oldest first by default, newest first with `order=desc`. Pages are keyset-paginated: pass
    /// `next_cursor` back as `cursor` (with the same `order`) until it is `null`. Events stored meanwhile
    /// never shift a page, so pages have no duplicates and no gaps; newest first, events stored after the
    /// first page that sort before the cursor's position are not listed (start again to see them).
    #[oai(path = "/v1/events", method = "get", operation_id = "query_events")]
    #[allow(clippy::too_many_arguments)]
    async fn query_events(
        &self,
        state: Data<&AppState>,
        auth: ReadAccess,
        /// Only this application (UUID).
        application_id: Param<Id>,
        /// Only this session (across the readable applications unless `application_id` is given).
        session_id: Text<128>,
        /// Only this category.
        category: Text<64>,
        /// Only this name.
        name: Text<64>,
        /// Only this user's events.
        user_id: Text<128>,
        /// Events that occurred at or after this instant (RFC 3339); must be earlier than `to`.
        from: Param<Instant>,
        /// Events that occurred before this instant (RFC 3339).
        to: Param<Instant>,
        /// `asc` (oldest first, the default) or `desc` (newest first).
        order: Param<OneOf<OrderWords>>,
        /// Page size, 1..=1000 (default 100).
        limit: Param<Limit>,
        /// `next_cursor` of the previous page, asked with the same `order` (only those are valid).
        cursor: Param<Cursor>,
    ) -> Result<EventsFound, ApiError> {
        let query = EventQuery {
            application_id: application_id.0.into_text(),
            session_id: session_id.0.into_text(),
            category: category.0.into_text(),
            name: name.0.into_text(),
            user_id: user_id.0.into_text(),
            from: from.0.into_text(),
            to: to.0.into_text(),
            order: order.0.into_text(),
            limit: limit.0.into_text(),
            cursor: cursor.0.into_text(),
        };
        let filter = query.into_filter(&auth.0)?;
        events_page(&state, &filter).await
    }

    /// A session's events
    ///
    /// In the order they occurred. Session ids are chosen by applications: when two readable
    /// applications use the same id, name one with `application_id` (400 otherwise).
    #[oai(
        path = "/v1/sessions/:session_id/events",
        method = "get",
        operation_id = "session_events"
    )]
    async fn session_events(
        &self,
        state: Data<&AppState>,
        auth: ReadAccess,
        /// The session id.
        session_id: Path<params::Param<Required<params::Text<128>>>>,
        /// The session's application (UUID), needed when the id is used by several applications.
        application_id: Param<Id>,
        /// Page size, 1..=1000 (default 100).
        limit: Param<Limit>,
        /// `next_cursor` of the previous page (only those are valid).
        cursor: Param<Cursor>,
    ) -> Result<EventsFound, ApiError> {
        let query = EventQuery {
            application_id: application_id.0.into_text(),
            session_id: session_id.0.into_text(),
            limit: limit.0.into_text(),
            cursor: cursor.0.into_text(),
            ..EventQuery::default()
        };
        let mut filter = query.into_filter(&auth.0)?;
        filter.scope = session_application(&state, &filter).await?;
        events_page(&state, &filter).await
    }

    /// Query sessions
    ///
    /// Sessions whose first event lies in `[from, to)`, with their event counts, in key order
    /// (`application_id`, `session_id`): a key never changes, so paging with `next_cursor` lists every
    /// session that exists when it starts exactly once, even when late events move a session's
    /// `first_seen` meanwhile (`from`/`to` see `first_seen` as it is when each page is read).
    #[oai(path = "/v1/sessions", method = "get", operation_id = "query_sessions")]
    #[allow(clippy::too_many_arguments)]
    async fn query_sessions(
        &self,
        state: Data<&AppState>,
        auth: ReadAccess,
        /// Only this application (UUID).
        application_id: Param<Id>,
        /// Sessions that started at or after this instant (RFC 3339); must be earlier than `to`.
        from: Param<Instant>,
        /// Sessions that started before this instant (RFC 3339).
        to: Param<Instant>,
        /// Page size, 1..=1000 (default 100).
        limit: Param<Limit>,
        /// `next_cursor` of the previous page (only those are valid).
        cursor: Param<Cursor>,
    ) -> Result<SessionsFound, ApiError> {
        let query = SessionQuery {
            application_id: application_id.0.into_text(),
            from: from.0.into_text(),
            to: to.0.into_text(),
            limit: limit.0.into_text(),
            cursor: cursor.0.into_text(),
        };
        let filter = query.into_filter(&auth.0)?;
        let page = state.store().query_sessions(&filter).await;
        let page = SessionPage::from(page.map_err(ApiError::internal)?);
        Ok(SessionsFound::Page(SerdeJson::new(&page)?))
    }

    /// Count events over time
    ///
    /// Counts per time bucket (UTC) and group, for dashboards. `from` and `to` are required; at most
    /// 10,000 buckets per group.
    #[oai(
        path = "/v1/stats/events",
        method = "get",
        operation_id = "event_stats"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn event_stats(
        &self,
        state: Data<&AppState>,
        auth: ReadAccess,
        /// `category` (default), `name` or `application`.
        group_by: Param<OneOf<GroupByWords>>,
        /// `minute`, `hour` (default) or `day`.
        interval: Param<OneOf<IntervalWords>>,
        /// Events that occurred at or after this instant (RFC 3339); must be earlier than `to`.
        from: Param<Required<Instant>>,
        /// Events that occurred before this instant (RFC 3339).
        to: Param<Required<Instant>>,
        /// Only this category.
        category: Text<64>,
        /// Only this application (UUID).
        application_id: Param<Id>,
    ) -> Result<StatsFound, ApiError> {
        let query = StatsQuery {
            application_id: application_id.0.into_text(),
            group_by: group_by.0.into_text(),
            interval: interval.0.into_text(),
            from: from.0.into_text(),
            to: to.0.into_text(),
            category: category.0.into_text(),
        };
        let filter = query.into_filter(&auth.0)?;
        let buckets = state.store().event_counts(&filter).await;
        let stats = EventStats::from(buckets.map_err(ApiError::internal)?);
        Ok(StatsFound::Buckets(SerdeJson::new(&stats)?))
    }
}

async fn events_page(state: &AppState, filter: &EventFilter) -> Result<EventsFound, ApiError> {
    let page = state.store().query_events(filter).await;
    let page = EventPage::from(page.map_err(ApiError::internal)?);
    Ok(EventsFound::Page(SerdeJson::new(&page)?))
}

/// The one readable application that has this session: 404 if none, 400 if the id is ambiguous.
async fn session_application(
    state: &AppState,
    filter: &EventFilter,
) -> Result<ReadScope, ApiError> {
    let Some(session) = &filter.session_id else {
        return Ok(filter.scope.clone());
    };
    let apps = state
        .store()
        .session_applications(session, &filter.scope)
        .await
        .map_err(ApiError::internal)?;
    match apps.len() {
        0 => Err(ApiError::NotFound(format!("no session {session}"))),
        1 => Ok(ReadScope::Applications(apps)),
        n => Err(ApiError::Invalid(vec![FieldError::new(
            "application_id",
            format!("session {session} exists in {n} applications: name one"),
        )])),
    }
}

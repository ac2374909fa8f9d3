//! Exporting events as NDJSON, for analysts who load The Eye's data into their own tools.

use crate::api::event_order::OrderWords;
use crate::api::lifecycle_tags::LifecycleTags;
use crate::api::params::{Id, Instant, OneOf};
use crate::api::problem::ApiError;
use crate::api::query::{Param, Text};
use crate::api::query_params::EventQuery;
use crate::api::query_wire::EventOut;
use crate::api::read_auth::ReadAccess;
use crate::state::AppState;
use bytes::Bytes;
use eye_store::Store;
use eye_store::queries::{EventFilter, MAX_PAGE_SIZE};
use futures::{Stream, StreamExt, stream};
use poem::Body;
use poem::web::Data;
use poem_openapi::payload::Binary;
use poem_openapi::{ApiResponse, OpenApi};

/// The export endpoint.
pub struct ExportApi;

/// A streamed export.
#[derive(ApiResponse)]
pub enum Export {
    /// One event per line (NDJSON), each in the shape of an item of `GET /v1/events`' `events`, in the
    /// same order.
    #[oai(status = 200, content_type = "application/x-ndjson")]
    Events(Binary<Body>),
}

#[OpenApi(tag = "LifecycleTags::Lifecycle")]
impl ExportApi {
    /// Export events as NDJSON
    ///
    /// Every event matching the filters of `GET /v1/events` (without `limit` and `cursor`), streamed as
    /// one JSON object per line, ordered by `timestamp`, then storage order (newest first with
    /// `order=desc`). The server reads the events page by page (1,000 rows, by keyset), so an export of
    /// any size holds one page in memory; events stored while it runs appear if they sort after the rows
    /// already sent. A read key sees only its applications. If the database fails midway, the response ends without its final chunk, so the
    /// client sees a broken transfer, never a silently short file.
    #[oai(
        path = "/v1/events/export",
        method = "get",
        operation_id = "export_events"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn export_events(
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
    ) -> Result<Export, ApiError> {
        let query = EventQuery {
            application_id: application_id.0.into_text(),
            session_id: session_id.0.into_text(),
            category: category.0.into_text(),
            name: name.0.into_text(),
            user_id: user_id.0.into_text(),
            from: from.0.into_text(),
            to: to.0.into_text(),
            order: order.0.into_text(),
            ..EventQuery::default()
        };
        let filter = EventFilter {
            limit: MAX_PAGE_SIZE,
            ..query.into_filter(&auth.0)?
        };
        let lines = ndjson_pages(state.store().clone(), filter);
        Ok(Export::Events(Binary(Body::from_bytes_stream(lines))))
    }
}

/// The matching events as NDJSON chunks, one page each, read only as the client takes them.
fn ndjson_pages(
    store: Store,
    filter: EventFilter,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    stream::try_unfold(Some(filter), move |filter| {
        let store = store.clone();
        async move {
            let Some(filter) = filter else {
                return Ok(None);
            };
            let page = store.query_events(&filter).await.map_err(|err| {
                tracing::error!(error = %err, "export failed midway; ending the response");
                std::io::Error::other(err)
            })?;
            let mut chunk = Vec::new();
            for event in page.items {
                serde_json::to_writer(&mut chunk, &EventOut::from(event)).map_err(|err| {
                    tracing::error!(error = %err, "export failed midway; ending the response");
                    std::io::Error::other(err)
                })?;
                chunk.push(b'\n');
            }
            let next = page.next.map(|cursor| EventFilter {
                after: Some(cursor),
                ..filter
            });
            Ok(Some((Bytes::from(chunk), next)))
        }
    })
    // An empty last page sends nothing.
    .filter(|chunk| std::future::ready(!matches!(chunk, Ok(bytes) if bytes.is_empty())))
}

//! The HTTP API: routes, documentation and error mapping.

pub mod admin;
pub mod admission;
pub mod auth;
pub mod body;
pub mod dead_jobs;
pub mod erasure;
pub mod errors;
pub mod event_order;
pub mod event_types;
mod examples;
pub mod export;
pub mod health;
pub mod ingest;
pub mod json_out;
pub mod legacy;
mod lifecycle_tags;
pub mod merge;
pub mod notifications;
mod optional_body;
pub mod params;
pub mod problem;
pub mod query;
mod query_params;
pub mod query_wire;
pub mod read_auth;
pub mod read_keys;
pub mod rules;
pub mod segment;
pub mod segment_map;
pub mod spec;
pub mod wire;

use crate::http::{AllowedMethods, with_allow_header};
use crate::state::AppState;
use poem::endpoint::make_sync;
use poem::http::Method;
use poem::web::{Html, Redirect};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route};
use poem_openapi::OpenApiService;
use std::sync::Arc;

/// Every documented operation (`MergePaths`: `/v1/events` is served by two APIs, POST and GET).
pub type Apis = merge::MergePaths<(
    ingest::IngestApi,
    segment::SegmentApi,
    admin::AdminApi,
    event_types::EventTypesApi,
    errors::ErrorsApi,
    health::HealthApi,
    notifications::NotificationsApi,
    query::QueryApi,
    read_keys::ReadKeysApi,
    dead_jobs::DeadJobsApi,
    export::ExportApi,
    erasure::ErasureApi,
    rules::RulesApi,
)>;

/// The OpenAPI service (its spec is published through [`spec::spec`]).
pub fn openapi() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        merge::MergePaths((
            ingest::IngestApi,
            segment::SegmentApi,
            admin::AdminApi,
            event_types::EventTypesApi,
            errors::ErrorsApi,
            health::HealthApi,
            notifications::NotificationsApi,
            query::QueryApi,
            read_keys::ReadKeysApi,
            dead_jobs::DeadJobsApi,
            export::ExportApi,
            erasure::ErasureApi,
            rules::RulesApi,
        )),
        "The Eye",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Collects behavioural events from trusted applications, queues them, validates and stores them \
         grouped by session, and answers analysts.",
    )
}

/// The routes of a worker-only process: `/health`, `/ready` and `/metrics`.
pub fn ops_routes(state: AppState) -> impl Endpoint {
    let ops = OpenApiService::new(
        health::HealthApi,
        "The Eye worker",
        env!("CARGO_PKG_VERSION"),
    );
    Route::new()
        .nest("/", ops)
        .data(state)
        .catch_all_error(problem::catch_all)
}

/// `GET /` itself: someone who opens the service's address lands on its documentation. (A route of its
/// own cannot take `/`: the API is nested there and its wildcard answers first.)
async fn docs_at_root<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    if req.uri().path() == "/" && req.method() == Method::GET {
        return Ok(Redirect::see_other("/docs").into_response());
    }
    Ok(ep.call(req).await?.into_response())
}

/// The routes: the API at `/`, Swagger UI at `/docs`, the spec at `/openapi.json`.
pub fn routes(state: AppState) -> impl Endpoint {
    let document: Arc<str> = spec::spec().into();
    let allowed = AllowedMethods::from_spec(&document);
    // Built for each request: the page embeds the Swagger UI bundle, 3.2 MB that every API process would
    // otherwise hold for its lifetime (a heap profile's largest single allocation) for a page rarely opened.
    let docs = {
        let document = document.clone();
        make_sync(move |_| Html(spec::swagger_ui_html(&document)))
    };
    let spec = make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(document.to_string())
    });
    let routes = Route::new()
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .nest("/", openapi())
        .around(docs_at_root)
        .data(state)
        .catch_all_error(problem::catch_all);
    with_allow_header(routes, allowed)
}

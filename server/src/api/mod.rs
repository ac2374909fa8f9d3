//! The HTTP API: routes, documentation and error mapping.

pub mod admin;
pub mod admission;
pub mod auth;
pub mod body;
pub mod dead_jobs;
pub mod errors;
pub mod event_types;
pub mod health;
pub mod ingest;
pub mod legacy;
pub mod merge;
pub mod notifications;
mod optional_body;
pub mod problem;
pub mod query;
mod query_params;
pub mod query_wire;
pub mod read_auth;
pub mod read_keys;
pub mod segment;
pub mod segment_map;
pub mod wire;

use crate::state::AppState;
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

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
)>;

/// The OpenAPI service (also used to print the spec without a server).
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

/// The routes: the API at `/`, Swagger UI at `/docs`, the spec at `/openapi.json`.
pub fn routes(state: AppState) -> impl Endpoint {
    let api = openapi();
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    Route::new()
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .nest("/", api)
        .data(state)
        .catch_all_error(problem::catch_all)
}

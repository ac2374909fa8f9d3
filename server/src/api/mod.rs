//! The HTTP API: routes, documentation and error mapping.

pub mod admin;
pub mod auth;
mod body;
pub mod health;
pub mod ingest;
pub mod problem;
pub mod wire;

use crate::state::AppState;
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

/// Every documented operation.
pub type Apis = (ingest::IngestApi, admin::AdminApi, health::HealthApi);

/// The OpenAPI service (also used to print the spec without a server).
pub fn openapi() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (ingest::IngestApi, admin::AdminApi, health::HealthApi),
        "The Eye",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Collects behavioural events from trusted applications, queues them, validates and stores them \
         grouped by session, and answers analysts.",
    )
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

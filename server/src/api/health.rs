//! Liveness, readiness and metrics.

use crate::state::AppState;
use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

#[derive(Tags)]
enum OpsTags {
    /// Probes and metrics.
    Operations,
}

/// Probe and metrics endpoints.
pub struct HealthApi;

/// Readiness of each dependency.
#[derive(Debug, Object)]
pub struct Readiness {
    /// The database answered.
    pub database: bool,
    /// The queue answered.
    pub queue: bool,
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// Database and queue are reachable.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// A dependency is unreachable.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

#[OpenApi(tag = "OpsTags::Operations")]
impl HealthApi {
    /// Liveness: the process answers
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// Readiness: database and queue reachable
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self, state: Data<&AppState>) -> ReadyResponse {
        let (database, queue) = tokio::join!(state.store().ping(), state.queue().ping());
        let readiness = Readiness {
            database: database.is_ok(),
            queue: queue.is_ok(),
        };
        if readiness.database && readiness.queue {
            ReadyResponse::Ready(Json(readiness))
        } else {
            ReadyResponse::NotReady(Json(readiness))
        }
    }

    /// Prometheus metrics
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, state: Data<&AppState>) -> PlainText<String> {
        if let Ok(depth) = state.queue().depth().await {
            state.metrics().set_queue_depth(depth);
        }
        crate::api::dead_jobs::refresh_gauge(&state).await;
        PlainText(crate::metrics::encode(state.registry()))
    }
}

//! Liveness, readiness and metrics.

use crate::state::AppState;
use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use std::time::Duration;

/// The longest a readiness check waits for one dependency: under a probe's usual 1 s timeout.
const CHECK_TIMEOUT: Duration = Duration::from_millis(800);

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

#[derive(ApiResponse)]
enum Alive {
    /// The process answers (`ok`).
    #[oai(status = 200)]
    Ok(PlainText<&'static str>),
}

#[derive(ApiResponse)]
enum Exposition {
    /// The metrics, in the Prometheus text format.
    #[oai(status = 200)]
    Metrics(PlainText<String>),
}

#[OpenApi(tag = "OpsTags::Operations")]
impl HealthApi {
    /// Liveness: the process answers
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Alive {
        Alive::Ok(PlainText("ok"))
    }

    /// Readiness: database and queue reachable (each answers within 0.8 s, or counts as unreachable)
    #[oai(path = "/ready", method = "get", operation_id = "ready")]
    async fn ready(&self, state: Data<&AppState>) -> ReadyResponse {
        // Both checks run at once, each bounded, so a hanging dependency cannot outlast a probe's timeout.
        let (database, queue) = tokio::join!(
            tokio::time::timeout(CHECK_TIMEOUT, state.store().ping()),
            tokio::time::timeout(CHECK_TIMEOUT, state.queue().ping()),
        );
        let readiness = Readiness {
            database: matches!(database, Ok(Ok(()))),
            queue: matches!(queue, Ok(Ok(()))),
        };
        if readiness.database && readiness.queue {
            ReadyResponse::Ready(Json(readiness))
        } else {
            ReadyResponse::NotReady(Json(readiness))
        }
    }

    /// Prometheus metrics
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, state: Data<&AppState>) -> Exposition {
        if let Ok(Ok(depth)) = tokio::time::timeout(CHECK_TIMEOUT, state.queue().depth()).await {
            state.metrics().set_queue_depth(depth);
        }
        crate::api::dead_jobs::refresh_gauge(&state).await;
        Exposition::Metrics(PlainText(crate::metrics::encode(state.registry())))
    }
}

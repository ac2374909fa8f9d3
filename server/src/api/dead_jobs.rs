//! Dead jobs (admin token): batches the workers could not store for a reason that is not transient, listed
//! with their error and replayed through the normal processing path once the cause is fixed.

use crate::api::auth::AdminToken;
use crate::api::optional_body::OptionalJson;
use crate::api::params::{Id, Param, Required};
use crate::api::problem::{ApiError, FieldError};
use crate::state::AppState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use eye_domain::{ApplicationId, JobId};
use eye_store::{
    DeadJob, DeadJobCursor, DeadJobFilter, DeadJobStatus, DeadJobSummary, ReplaySelection,
};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, Tags};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// The most jobs one replay call pushes; call again for more.
const REPLAY_LIMIT: u64 = 100;
/// `/metrics` must answer while the database is away: the count is skipped (the gauge keeps its last
/// value) when the database does not answer in this time.
const GAUGE_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Tags)]
enum DeadJobTags {
    /// Jobs that failed for a reason that is not transient (admin token).
    DeadJobs,
}

/// The dead-job endpoints.
pub struct DeadJobsApi;

/// Whether a dead job was replayed since it last failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "DeadJobStatus", rename_all = "snake_case")]
pub enum DeadStatus {
    /// Waiting for an operator.
    Dead,
    /// Pushed back onto the queue by a replay.
    Replayed,
}

impl From<DeadStatus> for DeadJobStatus {
    fn from(status: DeadStatus) -> Self {
        match status {
            DeadStatus::Dead => Self::Dead,
            DeadStatus::Replayed => Self::Replayed,
        }
    }
}

impl From<DeadJobStatus> for DeadStatus {
    fn from(status: DeadJobStatus) -> Self {
        match status {
            DeadJobStatus::Dead => Self::Dead,
            DeadJobStatus::Replayed => Self::Replayed,
        }
    }
}

/// A dead job, without its events.
#[derive(Debug, Object)]
pub struct DeadJobOut {
    /// The job's id (a replay keeps it).
    pub id: Uuid,
    /// The application that sent the events.
    pub application_id: Uuid,
    /// How many events the job holds.
    pub events: u32,
    /// Why it failed the last time.
    pub error: String,
    /// Attempts of its last run.
    pub attempts: u32,
    // No doc comment: poem-openapi would wrap the enum's `$ref` in `allOf` with it, which generators drop.
    pub status: DeadStatus,
    /// When it first failed.
    pub first_failed_at: DateTime<Utc>,
    /// When it last failed.
    pub last_failed_at: DateTime<Utc>,
    /// When a replay put it back on the queue; cleared if it fails again.
    #[oai(nullable)]
    pub replayed_at: Option<DateTime<Utc>>,
}

/// One page of dead jobs, newest first.
#[derive(Debug, Object)]
pub struct DeadJobsPage {
    /// The jobs.
    pub dead_jobs: Vec<DeadJobOut>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A dead job with its events, as they were queued.
#[derive(Debug, Object)]
pub struct DeadJobDetail {
    // No doc comment: it would wrap the `$ref` in `allOf` (see `DeadJobOut::status`).
    pub dead_job: DeadJobOut,
    /// When The Eye accepted its events.
    pub received_at: DateTime<Utc>,
    /// The events.
    pub events: Vec<Value>,
}

/// Which dead jobs to replay.
#[derive(Debug, Object)]
#[oai(example)]
pub struct DeadJobsToReplay {
    /// These jobs, whatever their status (at most 100). Absent: every job not replayed yet, oldest first,
    /// up to 100 per call.
    #[oai(nullable, skip_serializing_if_is_none, validator(max_items = 100))]
    pub job_ids: Option<Vec<Uuid>>,
}

/// What a replay did.
#[derive(Debug, Object)]
pub struct DeadJobsReplayed {
    /// Jobs pushed back onto the queue.
    pub replayed: u64,
    /// Their ids.
    pub job_ids: Vec<Uuid>,
}

#[derive(ApiResponse)]
enum DeadJobsFound {
    /// One page of dead jobs, newest first.
    #[oai(status = 200)]
    Page(Json<DeadJobsPage>),
}

#[derive(ApiResponse)]
enum DeadJobsReplay {
    /// The jobs pushed back onto the queue.
    #[oai(status = 200)]
    Outcome(Json<DeadJobsReplayed>),
}

#[derive(ApiResponse)]
enum DeadJobResponse {
    /// The job.
    #[oai(status = 200)]
    Found(Json<DeadJobDetail>),
}

fn out(job: DeadJobSummary) -> DeadJobOut {
    DeadJobOut {
        id: job.job_id.as_uuid(),
        application_id: job.application_id.as_uuid(),
        events: job.events,
        status: job.status().into(),
        error: job.error,
        attempts: job.attempts,
        first_failed_at: job.first_failed_at,
        last_failed_at: job.last_failed_at,
        replayed_at: job.replayed_at,
    }
}

fn detail(job: DeadJob) -> Result<DeadJobDetail, ApiError> {
    let events = job
        .batch
        .events
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    Ok(DeadJobDetail {
        dead_job: out(job.summary),
        received_at: job.batch.received_at,
        events,
    })
}

fn encode_cursor(cursor: DeadJobCursor) -> String {
    let at = cursor
        .last_failed_at
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    URL_SAFE_NO_PAD.encode(format!("{at}|{}", cursor.job_id))
}

fn decode_cursor(cursor: &str) -> Result<DeadJobCursor, ApiError> {
    let invalid = || {
        ApiError::Invalid(vec![FieldError::new(
            "cursor",
            "not a cursor from a previous page",
        )])
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (at, id) = text.split_once('|').ok_or_else(invalid)?;
    Ok(DeadJobCursor {
        last_failed_at: DateTime::parse_from_rfc3339(at)
            .map_err(|_| invalid())?
            .with_timezone(&Utc),
        job_id: Uuid::parse_str(id).map_err(|_| invalid())?.into(),
    })
}

/// Refreshes `eye_dead_jobs` at scrape time (a count over a small table).
pub(crate) async fn refresh_gauge(state: &AppState) {
    match tokio::time::timeout(GAUGE_TIMEOUT, state.store().count_dead_jobs()).await {
        Ok(Ok(count)) => state.metrics().set_dead_jobs(count),
        Ok(Err(err)) => tracing::warn!(error = %err, "counting dead jobs failed"),
        Err(_) => tracing::warn!("counting dead jobs timed out"),
    }
}

#[OpenApi(tag = "DeadJobTags::DeadJobs")]
impl DeadJobsApi {
    /// List dead jobs, newest first
    ///
    /// A job is dead when it failed for a reason that is not transient (transient failures are retried for
    /// as long as they last). Filters: `application_id`, `status` (`dead`: not replayed since it last
    /// failed; `replayed`). Events are not listed: get one job for them.
    #[oai(
        path = "/v1/admin/dead-jobs",
        method = "get",
        operation_id = "list_dead_jobs"
    )]
    async fn list(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        /// Only this application's jobs.
        application_id: Query<Option<Uuid>>,
        /// Only jobs in this status.
        status: Query<Option<DeadStatus>>,
        /// Page size, 1..=1000 (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u64>>,
        /// `next_cursor` of the previous page (only those are valid).
        cursor: Query<Option<String>>,
    ) -> Result<DeadJobsFound, ApiError> {
        let filter = DeadJobFilter {
            application: application_id.0.map(ApplicationId::from),
            status: status.0.map(DeadJobStatus::from),
            after: cursor.0.as_deref().map(decode_cursor).transpose()?,
        };
        let limit = limit.0.unwrap_or(100);
        let jobs = state
            .store()
            .dead_jobs(&filter, limit)
            .await
            .map_err(ApiError::internal)?;
        let next_cursor = (jobs.len() as u64 == limit)
            .then(|| jobs.last().map(|job| encode_cursor(job.cursor())))
            .flatten();
        Ok(DeadJobsFound::Page(Json(DeadJobsPage {
            dead_jobs: jobs.into_iter().map(out).collect(),
            next_cursor,
        })))
    }

    /// Get a dead job with its events
    #[oai(
        path = "/v1/admin/dead-jobs/:job_id",
        method = "get",
        operation_id = "get_dead_job"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        job_id: Path<Param<Required<Id>>>,
    ) -> Result<DeadJobResponse, ApiError> {
        // Parsed here, not by poem, whose error names the parameter `param0`.
        let job_id = Uuid::parse_str(&job_id.0.into_text().unwrap_or_default())
            .map_err(|_| ApiError::Invalid(vec![FieldError::new("job_id", "not a UUID")]))?;
        let job = state
            .store()
            .dead_job(JobId::from(job_id))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::NotFound(format!("no dead job {job_id}")))?;
        Ok(DeadJobResponse::Found(Json(detail(job)?)))
    }

    /// Replay dead jobs through the normal processing path
    ///
    /// Pushes each job's batch back onto the queue, with the same job id, and marks it `replayed` once the
    /// queue took it. Safe to repeat: events are stored once per (application, event id). Without a body,
    /// takes every job not replayed yet, up to 100 per call (call again for more). 503 with `Retry-After`
    /// when the queue is unavailable (nothing was marked).
    #[oai(
        path = "/v1/admin/dead-jobs/replay",
        method = "post",
        operation_id = "replay_dead_jobs"
    )]
    async fn replay(
        &self,
        state: Data<&AppState>,
        _auth: AdminToken,
        body: OptionalJson<DeadJobsToReplay>,
    ) -> Result<DeadJobsReplay, ApiError> {
        let ids: Option<Vec<JobId>> = body
            .0
            .and_then(|body| body.job_ids)
            .map(|ids| ids.into_iter().map(JobId::from).collect());
        let selection = match &ids {
            Some(ids) => ReplaySelection::These(ids),
            None => ReplaySelection::EveryDead,
        };
        let jobs = state
            .store()
            .dead_jobs_to_replay(selection, REPLAY_LIMIT)
            .await
            .map_err(ApiError::internal)?;
        let job_ids = push(&state, jobs).await?;
        Ok(DeadJobsReplay::Outcome(Json(DeadJobsReplayed {
            replayed: job_ids.len() as u64,
            job_ids: job_ids.iter().map(JobId::as_uuid).collect(),
        })))
    }
}

/// Pushes the jobs' batches, then marks them replayed. If marking fails the jobs are on the queue all the
/// same and a repeated replay pushes them again, which stores nothing twice.
async fn push(state: &AppState, jobs: Vec<DeadJob>) -> Result<Vec<JobId>, ApiError> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let job_ids: Vec<JobId> = jobs.iter().map(|job| job.summary.job_id).collect();
    let pushed_from = Utc::now();
    state
        .queue()
        .push_all(jobs.into_iter().map(|job| job.batch).collect())
        .await
        .map_err(ApiError::QueueUnavailable)?;
    state
        .store()
        .mark_dead_jobs_replayed(&job_ids, pushed_from)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(jobs = job_ids.len(), "dead jobs replayed");
    Ok(job_ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_to_the_nanosecond_and_garbage_is_refused() {
        let cursor = DeadJobCursor {
            last_failed_at: Utc::now(),
            job_id: JobId::generate(),
        };
        assert_eq!(decode_cursor(&encode_cursor(cursor)).ok(), Some(cursor));
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("x|y")).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("2026-11-30T00:00:00Z|nope")).is_err());
    }
}

//! Dead jobs: queued batches that failed for a reason that is not transient, kept whole (every event, as
//! queued) so that an operator can see why and replay them through the normal processing path.

use crate::entities::dead_jobs;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use eye_domain::{ApplicationId, IngestBatch, JobId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DbErr, EntityTrait, ExprTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

/// Whether a dead job was replayed since it last failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadJobStatus {
    /// Waiting for an operator.
    Dead,
    /// Pushed back onto the queue by a replay (it is dead again only if it fails again).
    Replayed,
}

/// A position in the list of dead jobs (newest first): when the job last failed, ties broken by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadJobCursor {
    /// When the job last failed.
    pub last_failed_at: DateTime<Utc>,
    /// The job.
    pub job_id: JobId,
}

/// A dead job without its events, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadJobSummary {
    /// The job (the queued batch's id; a replay keeps it).
    pub job_id: JobId,
    /// The application that sent the events.
    pub application_id: ApplicationId,
    /// How many events the batch holds.
    pub events: u32,
    /// Why it failed the last time.
    pub error: String,
    /// Attempts of its last run.
    pub attempts: u32,
    /// When it first died.
    pub first_failed_at: DateTime<Utc>,
    /// When it last died.
    pub last_failed_at: DateTime<Utc>,
    /// When a replay pushed it back onto the queue (cleared when it dies again).
    pub replayed_at: Option<DateTime<Utc>>,
}

impl DeadJobSummary {
    /// Its status.
    pub fn status(&self) -> DeadJobStatus {
        match self.replayed_at {
            None => DeadJobStatus::Dead,
            Some(_) => DeadJobStatus::Replayed,
        }
    }

    /// Its position in the list, for the next page.
    pub fn cursor(&self) -> DeadJobCursor {
        DeadJobCursor {
            last_failed_at: self.last_failed_at,
            job_id: self.job_id,
        }
    }
}

/// A dead job with its whole batch.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadJob {
    /// What the list shows.
    pub summary: DeadJobSummary,
    /// The batch as it was queued.
    pub batch: IngestBatch,
}

/// Which dead jobs to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadJobFilter {
    /// Only this application's.
    pub application: Option<ApplicationId>,
    /// Only dead or only replayed ones.
    pub status: Option<DeadJobStatus>,
    /// Only jobs older than this position (keyset pagination, newest first).
    pub after: Option<DeadJobCursor>,
}

/// Which dead jobs a replay takes.
#[derive(Debug, Clone, Copy)]
pub enum ReplaySelection<'a> {
    /// Every job not replayed since it died, oldest first.
    EveryDead,
    /// These jobs, whatever their status (replaying is safe to repeat: events are stored once).
    These(&'a [JobId]),
}

#[derive(Debug, FromQueryResult)]
struct SummaryRow {
    job_id: Uuid,
    application_id: Uuid,
    event_count: i32,
    error: String,
    attempts: i64,
    first_failed_at: DateTime<Utc>,
    last_failed_at: DateTime<Utc>,
    replayed_at: Option<DateTime<Utc>>,
}

impl From<SummaryRow> for DeadJobSummary {
    fn from(row: SummaryRow) -> Self {
        Self {
            job_id: row.job_id.into(),
            application_id: row.application_id.into(),
            events: u32::try_from(row.event_count).unwrap_or(0),
            error: row.error,
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            first_failed_at: row.first_failed_at,
            last_failed_at: row.last_failed_at,
            replayed_at: row.replayed_at,
        }
    }
}

fn summary_of(row: &dead_jobs::Model) -> DeadJobSummary {
    SummaryRow {
        job_id: row.job_id,
        application_id: row.application_id,
        event_count: row.event_count,
        error: row.error.clone(),
        attempts: row.attempts,
        first_failed_at: row.first_failed_at,
        last_failed_at: row.last_failed_at,
        replayed_at: row.replayed_at,
    }
    .into()
}

fn dead_job_of(row: dead_jobs::Model) -> Result<DeadJob, StoreError> {
    let batch = serde_json::from_str(&row.batch).map_err(|err| DbErr::Json(err.to_string()))?;
    Ok(DeadJob {
        summary: summary_of(&row),
        batch,
    })
}

fn to_row(
    job: &IngestBatch,
    error: &str,
    attempts: u32,
) -> Result<dead_jobs::ActiveModel, StoreError> {
    let batch = serde_json::to_string(job).map_err(|err| DbErr::Json(err.to_string()))?;
    let now = Utc::now();
    Ok(dead_jobs::ActiveModel {
        job_id: Set(job.job_id.as_uuid()),
        application_id: Set(job.application_id.as_uuid()),
        event_count: Set(i32::try_from(job.events.len()).unwrap_or(i32::MAX)),
        // PostgreSQL text cannot hold NUL, and an error message may quote the data that caused it.
        error: Set(error.replace('\0', "\u{fffd}")),
        attempts: Set(i64::from(attempts)),
        batch: Set(batch),
        first_failed_at: Set(now),
        last_failed_at: Set(now),
        replayed_at: Set(None),
    })
}

fn status_condition(status: DeadJobStatus) -> Condition {
    let column = dead_jobs::Column::ReplayedAt;
    match status {
        DeadJobStatus::Dead => Condition::all().add(column.is_null()),
        DeadJobStatus::Replayed => Condition::all().add(column.is_not_null()),
    }
}

/// Jobs that come after `cursor` in newest-first order, as one row comparison.
fn older_than(cursor: DeadJobCursor) -> Condition {
    use dead_jobs::Column as C;
    let position = Expr::tuple([Expr::col(C::LastFailedAt), Expr::col(C::JobId)]);
    let at = Expr::tuple([
        Expr::val(cursor.last_failed_at),
        Expr::val(cursor.job_id.as_uuid()),
    ]);
    Condition::all().add(position.lt(at))
}

impl Store {
    /// Keeps a job that failed for a reason that is not transient, whole. Recording the same job again (it
    /// died again after a replay, or its run was retried after recording) updates its row: error, attempts
    /// and last failure time, and clears `replayed_at`; the first failure time stays.
    #[tracing::instrument(skip_all, fields(job = %job.job_id, events = job.events.len()), err)]
    pub async fn record_dead_job(
        &self,
        job: &IngestBatch,
        error: &str,
        attempts: u32,
    ) -> Result<(), StoreError> {
        use dead_jobs::Column as C;
        let conflict = OnConflict::column(C::JobId)
            .update_columns([
                C::ApplicationId,
                C::EventCount,
                C::Error,
                C::Attempts,
                C::Batch,
                C::LastFailedAt,
                C::ReplayedAt,
            ])
            .to_owned();
        dead_jobs::Entity::insert(to_row(job, error, attempts)?)
            .on_conflict(conflict)
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Dead jobs matching `filter`, newest first, without their events.
    pub async fn dead_jobs(
        &self,
        filter: &DeadJobFilter,
        limit: u64,
    ) -> Result<Vec<DeadJobSummary>, StoreError> {
        use dead_jobs::Column as C;
        let rows = dead_jobs::Entity::find()
            .select_only()
            .columns([
                C::JobId,
                C::ApplicationId,
                C::EventCount,
                C::Error,
                C::Attempts,
            ])
            .columns([C::FirstFailedAt, C::LastFailedAt, C::ReplayedAt])
            .apply_if(filter.application, |q, app| {
                q.filter(C::ApplicationId.eq(app.as_uuid()))
            })
            .apply_if(filter.status, |q, status| {
                q.filter(status_condition(status))
            })
            .apply_if(filter.after, |q, cursor| q.filter(older_than(cursor)))
            .order_by_desc(C::LastFailedAt)
            .order_by_desc(C::JobId)
            .limit(limit)
            .into_model::<SummaryRow>()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(DeadJobSummary::from).collect())
    }

    /// One dead job with its batch.
    pub async fn dead_job(&self, job_id: JobId) -> Result<Option<DeadJob>, StoreError> {
        let row = dead_jobs::Entity::find_by_id(job_id.as_uuid())
            .one(&self.db)
            .await?;
        row.map(dead_job_of).transpose()
    }

    /// Up to `limit` dead jobs to replay, with their batches. A row whose batch no longer parses is
    /// skipped (and logged) so that it cannot block the others.
    pub async fn dead_jobs_to_replay(
        &self,
        selection: ReplaySelection<'_>,
        limit: u64,
    ) -> Result<Vec<DeadJob>, StoreError> {
        use dead_jobs::Column as C;
        let query = match selection {
            ReplaySelection::EveryDead => dead_jobs::Entity::find()
                .filter(C::ReplayedAt.is_null())
                .order_by_asc(C::LastFailedAt)
                .order_by_asc(C::JobId),
            ReplaySelection::These(ids) => dead_jobs::Entity::find()
                .filter(C::JobId.is_in(ids.iter().map(JobId::as_uuid)))
                .order_by_asc(C::LastFailedAt),
        };
        let rows = query.limit(limit).all(&self.db).await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in rows {
            let job_id = row.job_id;
            match dead_job_of(row) {
                Ok(job) => jobs.push(job),
                Err(err) => tracing::error!(job = %job_id, error = %err, "dead job unreadable"),
            }
        }
        Ok(jobs)
    }

    /// Marks jobs replayed now that their batches are back on the queue. A job that died again since
    /// `pushed_from` (the replayed run already failed) stays dead.
    pub async fn mark_dead_jobs_replayed(
        &self,
        ids: &[JobId],
        pushed_from: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        use dead_jobs::Column as C;
        if ids.is_empty() {
            return Ok(0);
        }
        let result = dead_jobs::Entity::update_many()
            .col_expr(C::ReplayedAt, Expr::value(Utc::now()))
            .filter(C::JobId.is_in(ids.iter().map(JobId::as_uuid)))
            .filter(C::LastFailedAt.lt(pushed_from))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// How many jobs are dead and not replayed (for `/metrics`).
    pub async fn count_dead_jobs(&self) -> Result<u64, StoreError> {
        let count = dead_jobs::Entity::find()
            .filter(dead_jobs::Column::ReplayedAt.is_null())
            .count(&self.db)
            .await?;
        Ok(count)
    }
}

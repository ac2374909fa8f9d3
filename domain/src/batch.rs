//! The unit of queued work: one accepted request's events.

use crate::{ApplicationId, JobId, NewEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Events of one application, queued as one job and stored in one transaction: one request's, or several
/// requests' that the API grouped while a push was under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestBatch {
    /// Identifies the job in logs and error records.
    pub job_id: JobId,
    /// The trusted client that sent the events.
    pub application_id: ApplicationId,
    /// When The Eye accepted them, the earliest of the group (the reference for clock-skew and "future
    /// timestamp" checks).
    pub received_at: DateTime<Utc>,
    /// The events, in request order.
    pub events: Vec<NewEvent>,
}

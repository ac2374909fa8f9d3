//! Accepting events: parse at the edge, enqueue durably, answer 202. Never waits for the database.

use crate::api::admission::AdmittedBody;
use crate::api::auth::IngestKey;
use crate::api::legacy;
use crate::api::problem::ApiError;
use crate::api::wire::{self, Accepted, AcceptedOne, EventIn, EventsIn};
use crate::metrics::Refusal;
use crate::state::AppState;
use eye_domain::{ApplicationId, NewEvent};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, Tags};
use tokio::time::Instant;

#[derive(Tags)]
enum IngestTags {
    /// Sending events (ingest key).
    Ingest,
}

/// The ingest endpoints.
pub struct IngestApi;

#[derive(ApiResponse)]
enum BatchAccepted {
    /// The events are durably queued; they will be validated and stored shortly.
    #[oai(status = 202)]
    Accepted(Json<Accepted>),
}

#[derive(ApiResponse)]
enum OneAccepted {
    /// The event is durably queued; it will be validated and stored shortly.
    #[oai(status = 202)]
    Accepted(Json<AcceptedOne>),
}

#[OpenApi(tag = "IngestTags::Ingest")]
impl IngestApi {
    /// Send a batch of events
    ///
    /// 1..=1000 events (body <= 1 MiB). The answer comes once the events are durably queued; 503 (with
    /// `Retry-After`) means none of them were, e.g. when the queue did not take them within the request's
    /// deadline. A batch with any invalid event is rejected whole with 400 listing every bad field, so
    /// nothing is half-accepted. Resending events with the same `event_id` is safe: each is stored once.
    #[oai(path = "/v1/events", method = "post", operation_id = "send_events")]
    async fn send_events(
        &self,
        state: Data<&AppState>,
        auth: IngestKey,
        body: AdmittedBody<EventsIn>,
    ) -> Result<BatchAccepted, ApiError> {
        let AdmittedBody {
            bytes, admitted, ..
        } = body;
        // Only the events are held while they wait: the body is dropped once parsed.
        let events = wire::parse_batch_body(&bytes)?;
        drop(bytes);
        let event_ids = events
            .iter()
            .map(|e| e.event_id.as_uuid())
            .collect::<Vec<_>>();
        enqueue(&state, auth.0, events, admitted.deadline).await?;
        let accepted = Accepted {
            accepted: event_ids.len() as u32,
            event_ids,
        };
        Ok(BatchAccepted::Accepted(Json(accepted)))
    }

    /// Send one event
    ///
    /// Also accepts the fitness app's current shape (`user_id`, `device_id`, `type`, `time_stamp`,
    /// `training_program_id`, ...): a body with `type` and no `category` is mapped to a `fitness` event
    /// named after its `type`, in the device's session, with an id derived from its content.
    #[oai(path = "/v1/event", method = "post", operation_id = "send_event")]
    async fn send_event(
        &self,
        state: Data<&AppState>,
        auth: IngestKey,
        body: AdmittedBody<EventIn>,
    ) -> Result<OneAccepted, ApiError> {
        let (value, admitted) = body.into_json()?;
        let event = if legacy::is_legacy(&value) {
            legacy::parse(&value)
        } else {
            wire::parse_one(value)
        }
        .map_err(ApiError::Invalid)?;
        let event_id = event.event_id.as_uuid();
        enqueue(&state, auth.0, vec![event], admitted.deadline).await?;
        Ok(OneAccepted::Accepted(Json(AcceptedOne { event_id })))
    }
}

pub(crate) async fn enqueue(
    state: &AppState,
    application_id: ApplicationId,
    events: Vec<NewEvent>,
    deadline: Instant,
) -> Result<(), ApiError> {
    let count = events.len() as u64;
    state
        .enqueuer()
        .enqueue(application_id, events, deadline)
        .await
        .map_err(|err| {
            state.metrics().record_refused(Refusal::Queue);
            ApiError::QueueUnavailable(err)
        })?;
    state.metrics().record_accepted(count);
    Ok(())
}

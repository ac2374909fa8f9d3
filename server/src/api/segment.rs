//! The Segment tracking API (`/v1/batch`, `/v1/track`, ...), so applications carrying a Segment-compatible
//! SDK send to The Eye by changing its host and write key. The messages take the same path as
//! `/v1/events`: admission, the body limit (gzip included), durable queueing before the answer, and the
//! same worker (schemas, rules). The mapping lives in [`crate::api::segment_map`].

use crate::api::admission::{Admitted, AdmittedBody};
use crate::api::auth;
use crate::api::ingest::enqueue;
use crate::api::problem::{ApiError, FieldError};
use crate::api::segment_map::{self, Call, Envelope};
use crate::api::wire::MAX_EVENTS_PER_REQUEST;
use crate::state::AppState;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use eye_domain::{ApplicationId, NewEvent};
use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Tags)]
enum SegmentTags {
    /// Sending events with a Segment-compatible SDK (ingest key as the write key).
    Segment,
}

/// The Segment-compatible endpoints.
pub struct SegmentApi;

/// One Segment message (the fields The Eye reads; every other field is kept under `data.$segment`).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct SegmentMessageIn {
    /// `track`, `page`, `screen`, `identify`, `group` or `alias` (required in a batch; implied by the
    /// path of a single call). It becomes the event's category.
    #[oai(rename = "type")]
    pub message_type: Option<String>,
    /// The name of a `track` event (required for `track`).
    pub event: Option<String>,
    /// The name of a `page` or `screen` (default: the type).
    pub name: Option<String>,
    /// The payload of `track`, `page` and `screen`: the event's `data`.
    pub properties: Option<BTreeMap<String, Value>>,
    /// The payload of `identify` and `group`: the event's `data`.
    pub traits: Option<BTreeMap<String, Value>>,
    /// The message's id: a UUID is the event id as is; any other text maps to one UUID per application.
    pub message_id: Option<String>,
    /// The user (`user_id`); this or `anonymousId` is required.
    pub user_id: Option<String>,
    /// The device (`device_id`), and the session when the SDK sends none.
    pub anonymous_id: Option<String>,
    /// When it happened, by the device's clock.
    pub timestamp: Option<String>,
    /// When it happened, by the device's clock (preferred over `timestamp`).
    pub original_timestamp: Option<String>,
    /// When the device sent it (lets the service correct the device's clock).
    pub sent_at: Option<String>,
    /// SDK context (`context.sessionId` is the session; `context.device.id` the device without an
    /// `anonymousId`).
    pub context: Option<BTreeMap<String, Value>>,
    /// Destination settings, kept as sent.
    pub integrations: Option<BTreeMap<String, Value>>,
    /// The ingest key, when not sent with HTTP Basic.
    pub write_key: Option<String>,
}

/// A batch of Segment messages.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct SegmentBatchIn {
    /// 1..=1000 messages.
    pub batch: Vec<SegmentMessageIn>,
    /// Context shared by every message (a message's own keys win).
    pub context: Option<BTreeMap<String, Value>>,
    /// When the device sent the batch (for messages without their own `sentAt`).
    pub sent_at: Option<String>,
    /// The ingest key, when not sent with HTTP Basic.
    pub write_key: Option<String>,
}

/// Segment's success answer.
#[derive(Debug, Clone, Object)]
pub struct SegmentSuccess {
    /// Always true.
    pub success: bool,
}

#[derive(ApiResponse)]
enum SegmentAccepted {
    /// The messages are durably queued (the plain 200 the SDKs expect); they will be validated and
    /// stored shortly.
    #[oai(status = 200)]
    Ok(Json<SegmentSuccess>),
}

#[OpenApi(tag = "SegmentTags::Segment")]
impl SegmentApi {
    /// Send a batch of Segment messages
    ///
    /// What Segment's SDKs send. Authenticate with HTTP Basic (the ingest key as the user name, an empty
    /// password) or `writeKey` in the body; gzip bodies are accepted. The answer (200
    /// `{"success": true}`) comes once every message is durably queued; 503 with `Retry-After` means none
    /// was. A batch with any invalid message is refused whole with 400 naming every bad field.
    #[oai(path = "/v1/batch", method = "post", operation_id = "segment_batch")]
    async fn batch(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: AdmittedBody<SegmentBatchIn>,
    ) -> Result<SegmentAccepted, ApiError> {
        let (value, admitted) = body.into_json()?;
        let application = authenticate(&state, request, &value).await?;
        let events = parse_batch(value, application).map_err(ApiError::Invalid)?;
        accept(&state, application, events, admitted).await
    }

    /// Track an action (Segment `track`)
    ///
    /// Stored as category `track`, named by `event`. Authentication, answers and limits as `/v1/batch`.
    #[oai(path = "/v1/track", method = "post", operation_id = "segment_track")]
    async fn track(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: AdmittedBody<SegmentMessageIn>,
    ) -> Result<SegmentAccepted, ApiError> {
        single(&state, request, body, Call::Track).await
    }

    /// Record a page view (Segment `page`)
    ///
    /// Stored as category `page`, named by `name`. Authentication, answers and limits as `/v1/batch`.
    #[oai(path = "/v1/page", method = "post", operation_id = "segment_page")]
    async fn page(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: AdmittedBody<SegmentMessageIn>,
    ) -> Result<SegmentAccepted, ApiError> {
        single(&state, request, body, Call::Page).await
    }

    /// Record a screen view (Segment `screen`)
    ///
    /// Stored as category `screen`, named by `name`. Authentication, answers and limits as `/v1/batch`.
    #[oai(path = "/v1/screen", method = "post", operation_id = "segment_screen")]
    async fn screen(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: AdmittedBody<SegmentMessageIn>,
    ) -> Result<SegmentAccepted, ApiError> {
        single(&state, request, body, Call::Screen).await
    }

    /// Identify a user (Segment `identify`)
    ///
    /// Stored as `identify / identify` with the `traits` as data. Authentication, answers and limits as
    /// `/v1/batch`.
    #[oai(
        path = "/v1/identify",
        method = "post",
        operation_id = "segment_identify"
    )]
    async fn identify(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: AdmittedBody<SegmentMessageIn>,
    ) -> Result<SegmentAccepted, ApiError> {
        single(&state, request, body, Call::Identify).await
    }

    /// Put a user in a group (Segment `group`)
    ///
    /// Stored as `group / group` with the `traits` as data. Authentication, answers and limits as
    /// `/v1/batch`.
    #[oai(path = "/v1/group", method = "post", operation_id = "segment_group")]
    async fn group(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: AdmittedBody<SegmentMessageIn>,
    ) -> Result<SegmentAccepted, ApiError> {
        single(&state, request, body, Call::Group).await
    }

    /// Join two identities (Segment `alias`)
    ///
    /// Stored as `alias / alias`. Authentication, answers and limits as `/v1/batch`.
    #[oai(path = "/v1/alias", method = "post", operation_id = "segment_alias")]
    async fn alias(
        &self,
        state: Data<&AppState>,
        request: &Request,
        body: AdmittedBody<SegmentMessageIn>,
    ) -> Result<SegmentAccepted, ApiError> {
        single(&state, request, body, Call::Alias).await
    }
}

async fn single<T>(
    state: &AppState,
    request: &Request,
    body: AdmittedBody<T>,
    call: Call,
) -> Result<SegmentAccepted, ApiError> {
    let (value, admitted) = body.into_json()?;
    let application = authenticate(state, request, &value).await?;
    let envelope = Envelope {
        call: Some(call),
        ..envelope(application, None)
    };
    let event = segment_map::parse_message(value, &envelope, "").map_err(ApiError::Invalid)?;
    accept(state, application, vec![event], admitted).await
}

/// Queues the events (the request's JSON is gone by now: the messages moved into them).
async fn accept(
    state: &AppState,
    application: ApplicationId,
    events: Vec<NewEvent>,
    admitted: Admitted,
) -> Result<SegmentAccepted, ApiError> {
    enqueue(state, application, events, admitted.deadline).await?;
    Ok(SegmentAccepted::Ok(Json(SegmentSuccess { success: true })))
}

fn envelope(application_id: ApplicationId, batch: Option<&Value>) -> Envelope<'_> {
    Envelope {
        application_id,
        call: None,
        context: batch
            .and_then(|b| b.get("context"))
            .and_then(Value::as_object),
        sent_at: batch.and_then(|b| b.get("sentAt")),
        received_at: Utc::now(),
    }
}

/// Parses `{"batch": [...]}`, reporting every bad field. The messages move into the events.
pub fn parse_batch(
    mut body: Value,
    application: ApplicationId,
) -> Result<Vec<NewEvent>, Vec<FieldError>> {
    let Some(Value::Array(messages)) = body.get_mut("batch").map(Value::take) else {
        return Err(vec![FieldError::new(
            "batch",
            "required: an array of messages",
        )]);
    };
    if messages.is_empty() || messages.len() > MAX_EVENTS_PER_REQUEST {
        let message = format!(
            "must hold 1..={MAX_EVENTS_PER_REQUEST} messages, got {}",
            messages.len()
        );
        return Err(vec![FieldError::new("batch", message)]);
    }
    if body
        .get("context")
        .is_some_and(|c| !c.is_null() && !c.is_object())
    {
        return Err(vec![FieldError::new("context", "must be a JSON object")]);
    }
    let envelope = envelope(application, Some(&body));
    let mut errors = Vec::new();
    let mut events = Vec::with_capacity(messages.len());
    for (i, message) in messages.into_iter().enumerate() {
        match segment_map::parse_message(message, &envelope, &format!("batch[{i}]")) {
            Ok(event) => events.push(event),
            Err(bad) => errors.extend(bad),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

/// The application of the presented key: HTTP Basic (the key as user name), a bearer token, or
/// `writeKey` in the body, in that order.
async fn authenticate(
    state: &AppState,
    request: &Request,
    body: &Value,
) -> Result<ApplicationId, ApiError> {
    let key = presented_key(request, body)?;
    auth::ingest_application(state, &key).await
}

fn presented_key(request: &Request, body: &Value) -> Result<String, ApiError> {
    let header = request.header(poem::http::header::AUTHORIZATION);
    if let Some(header) = header {
        return key_from_header(header)
            .ok_or_else(|| ApiError::Unauthorized("malformed Authorization header".into()));
    }
    body.get("writeKey")
        .and_then(Value::as_str)
        .filter(|key| !key.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "no ingest key: send HTTP Basic with the key as user name, or writeKey".into(),
            )
        })
}

/// The key of `Basic base64(key:)` or `Bearer key`.
pub fn key_from_header(header: &str) -> Option<String> {
    let (scheme, credentials) = header.trim().split_once(' ')?;
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(credentials.to_owned()).filter(|key| !key.is_empty());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(credentials).ok()?).ok()?;
    let (user, _password) = decoded.split_once(':').unwrap_or((&decoded, ""));
    Some(user.to_owned()).filter(|key| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_key_is_read_from_basic_or_bearer_credentials() {
        let basic = format!("Basic {}", STANDARD.encode("eyk_abc:"));
        let cases = [
            (basic.as_str(), Some("eyk_abc")),
            ("Bearer eyk_abc", Some("eyk_abc")),
            ("basic ZXlrX2FiYw==", Some("eyk_abc")),
            ("Basic !!!", None),
            ("Basic Og==", None),
            ("Digest x", None),
            ("Bearer", None),
        ];
        for (header, key) in cases {
            assert_eq!(key_from_header(header).as_deref(), key, "{header}");
        }
    }

    #[test]
    fn a_batch_reports_every_bad_message_and_its_size_is_bounded() {
        let app = ApplicationId::generate();
        let good = json!({"type": "track", "event": "e", "userId": "u"});
        let body = json!({"batch": [good, {"type": "track", "userId": "u"}, {"type": "x"}]});
        let errors = parse_batch(body, app).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["batch[1].event", "batch[2].type"]);
        for count in [0, MAX_EVENTS_PER_REQUEST + 1] {
            let errors = parse_batch(json!({"batch": vec![good.clone(); count]}), app);
            assert_eq!(errors.expect_err("bounded")[0].field, "batch");
        }
        let errors = parse_batch(json!({"events": []}), app).expect_err("no batch");
        assert_eq!(errors[0].field, "batch");
    }
}

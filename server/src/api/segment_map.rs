//! Segment tracking API messages mapped to The Eye's event structure, at the edge and in one place.
//!
//! | Segment sends | The Eye stores |
//! |---|---|
//! | `type` | `category` (`track`, `page`, `screen`, `identify`, `group`, `alias`) |
//! | `event` (track), `name` (page, screen) | `name`; a page or screen without one is named after its type; identify, group and alias are named after their type |
//! | `properties` (track, page, screen), `traits` (identify, group) | `data`, validated by the type's schema |
//! | everything else (`context`, `integrations`, `anonymousId`, `groupId`, `previousId`, ...) | `data.$segment`, as sent (`writeKey` excepted) |
//! | `messageId` | `event_id`: a UUID as is, anything else a UUID derived from the application and the id; none: derived from the content |
//! | `userId` | `user_id` |
//! | `anonymousId`, else `context.device.id` | `device_id` |
//! | `context.sessionId`, else `integrations.Amplitude.session_id`, else the device, else the user | `session_id` |
//! | `originalTimestamp`, else `timestamp`, else the time received | `timestamp` |
//! | `sentAt` (the message's, else the batch's) | `sent_at`, so the worker corrects the device's clock skew |
//!
//! The result is parsed like any event (`wire::parse_one`), so the same limits apply; errors name the
//! fields Segment's SDKs send.

use crate::api::problem::FieldError;
use crate::api::wire;
use chrono::{DateTime, SecondsFormat, Utc};
use eye_domain::{ApplicationId, NewEvent, Payload};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The key of `data` that keeps what the client sent beyond the payload.
pub const ENVELOPE_KEY: &str = Payload::ENVELOPE_KEY;

/// The calls of the Segment tracking API, each mapped to a category of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// An action the user took (`event`, `properties`).
    Track,
    /// A web page viewed (`name`, `properties`).
    Page,
    /// A mobile screen viewed (`name`, `properties`).
    Screen,
    /// Who the user is (`traits`).
    Identify,
    /// The user's group (`groupId`, `traits`).
    Group,
    /// Two identities of one user (`previousId`).
    Alias,
}

impl Call {
    /// The call named by a message's `type`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "track" => Self::Track,
            "page" => Self::Page,
            "screen" => Self::Screen,
            "identify" => Self::Identify,
            "group" => Self::Group,
            "alias" => Self::Alias,
            _ => return None,
        })
    }

    /// The `type` (and the stored category).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Identify => "identify",
            Self::Group => "group",
            Self::Alias => "alias",
        }
    }

    /// The field holding the event's name, if the call has one.
    fn name_field(self) -> Option<&'static str> {
        match self {
            Self::Track => Some("event"),
            Self::Page | Self::Screen => Some("name"),
            Self::Identify | Self::Group | Self::Alias => None,
        }
    }

    /// The field holding the payload, if the call has one.
    fn payload_field(self) -> Option<&'static str> {
        match self {
            Self::Track | Self::Page | Self::Screen => Some("properties"),
            Self::Identify | Self::Group => Some("traits"),
            Self::Alias => None,
        }
    }
}

/// What a message is read with besides itself.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The sending application (message ids are mapped per application).
    pub application_id: ApplicationId,
    /// The call a single-call endpoint implies (`None` for `/v1/batch`: each message's `type` says).
    pub call: Option<Call>,
    /// The batch's `context`, merged under each message's own.
    pub context: Option<&'a Map<String, Value>>,
    /// The batch's `sentAt`, for messages without their own.
    pub sent_at: Option<&'a Value>,
    /// When the request arrived, the timestamp of a message that has none.
    pub received_at: DateTime<Utc>,
}

/// Maps one Segment message; `at` names it in errors (`batch[3]`, or `` for a single call).
pub fn parse_message(
    message: Value,
    envelope: &Envelope<'_>,
    at: &str,
) -> Result<NewEvent, Vec<FieldError>> {
    let Mapped { value, sources } =
        to_event(message, envelope).map_err(|error| vec![at_message(error, at)])?;
    wire::parse_one(value).map_err(|errors| {
        errors
            .into_iter()
            .map(|error| segment_field(error, &sources))
            .map(|error| at_message(error, at))
            .collect()
    })
}

/// The event in The Eye's structure, and which Segment field each of its fields came from.
struct Mapped {
    value: Value,
    sources: Vec<(&'static str, &'static str)>,
}

fn to_event(message: Value, envelope: &Envelope<'_>) -> Result<Mapped, FieldError> {
    let Value::Object(mut message) = message else {
        return Err(FieldError::new("", "must be a JSON object"));
    };
    let call = call_of(&message, envelope.call)?;
    merge_batch_context(&mut message, envelope.context);
    let name = event_name(&message, call)?;
    let (device_id, device_source) = first_of(&message, &["anonymousId", "context.device.id"]);
    let (user_id, _) = first_of(&message, &["userId"]);
    let (session_id, session_source) = session(&message, device_id.as_ref(), user_id.as_ref());
    let (timestamp, timestamp_source) = first_of(&message, &["originalTimestamp", "timestamp"]);
    let timestamp = timestamp.unwrap_or_else(|| {
        json!(
            envelope
                .received_at
                .to_rfc3339_opts(SecondsFormat::Micros, true)
        )
    });
    let sent_at = message.get("sentAt").or(envelope.sent_at).cloned();
    let event_id = event_id(&message, envelope.application_id)?;
    // Last: the rest of the message moves into the payload instead of being copied.
    let data = payload(message, call)?;
    let value = json!({
        "event_id": event_id,
        "session_id": session_id,
        "category": call.as_str(),
        "name": name,
        "data": data,
        "timestamp": timestamp,
        "sent_at": sent_at,
        "user_id": user_id,
        "device_id": device_id,
    });
    let sources = vec![
        ("name", call.name_field().unwrap_or("type")),
        ("data", call.payload_field().unwrap_or(ENVELOPE_KEY)),
        ("session_id", session_source),
        ("timestamp", timestamp_source),
        ("sent_at", "sentAt"),
        ("user_id", "userId"),
        ("device_id", device_source),
    ];
    Ok(Mapped { value, sources })
}

fn call_of(message: &Map<String, Value>, implied: Option<Call>) -> Result<Call, FieldError> {
    if let Some(call) = implied {
        return Ok(call);
    }
    match message.get("type") {
        None | Some(Value::Null) => Err(FieldError::new("type", "required")),
        Some(value) => value.as_str().and_then(Call::parse).ok_or_else(|| {
            FieldError::new(
                "type",
                "must be one of track, page, screen, identify, group, alias",
            )
        }),
    }
}

/// Adds the batch's `context` keys the message does not set itself.
fn merge_batch_context(message: &mut Map<String, Value>, batch: Option<&Map<String, Value>>) {
    let Some(batch) = batch.filter(|context| !context.is_empty()) else {
        return;
    };
    let mut context = batch.clone();
    if let Some(Value::Object(own)) = message.remove("context") {
        context.extend(own);
    }
    message.insert("context".into(), Value::Object(context));
}

fn event_name(message: &Map<String, Value>, call: Call) -> Result<Value, FieldError> {
    let Some(field) = call.name_field() else {
        return Ok(json!(call.as_str()));
    };
    match message.get(field) {
        None | Some(Value::Null) if call == Call::Track => Err(FieldError::new(field, "required")),
        None | Some(Value::Null) => Ok(json!(call.as_str())),
        Some(name) => Ok(name.clone()),
    }
}

/// `properties` or `traits`, with everything else the message carries under [`ENVELOPE_KEY`].
fn payload(mut message: Map<String, Value>, call: Call) -> Result<Value, FieldError> {
    let field = call.payload_field();
    let payload_field = field.unwrap_or_default();
    let mut data = match field.and_then(|field| message.remove(field)) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(payload)) => payload,
        Some(_) => return Err(FieldError::new(payload_field, "must be a JSON object")),
    };
    if data.contains_key(ENVELOPE_KEY) {
        let field = format!("{payload_field}.{ENVELOPE_KEY}");
        return Err(FieldError::new(field, "reserved for the Segment envelope"));
    }
    // A credential is never stored.
    message.remove("writeKey");
    data.insert(ENVELOPE_KEY.into(), Value::Object(message));
    Ok(Value::Object(data))
}

/// The first of `paths` (dotted) that is present, as text (SDKs may send numeric ids), with its path.
fn first_of(message: &Map<String, Value>, paths: &[&'static str]) -> (Option<Value>, &'static str) {
    for &path in paths {
        let mut value = Some(message);
        let mut found = None;
        for (i, key) in path.split('.').enumerate() {
            let Some(next) = value.and_then(|object| object.get(key)) else {
                break;
            };
            if i == path.matches('.').count() {
                found = Some(next);
            }
            value = next.as_object();
        }
        match found {
            None | Some(Value::Null) => continue,
            Some(Value::Number(number)) => return (Some(json!(number.to_string())), path),
            Some(other) => return (Some(other.clone()), path),
        }
    }
    (None, paths.first().copied().unwrap_or_default())
}

/// The session: the SDK's when it sends one, else the device's, else the user's.
fn session(
    message: &Map<String, Value>,
    device: Option<&Value>,
    user: Option<&Value>,
) -> (Option<Value>, &'static str) {
    let (sdk, path) = first_of(
        message,
        &["context.sessionId", "integrations.Amplitude.session_id"],
    );
    match (sdk, device, user) {
        (Some(session), _, _) => (Some(session), path),
        (None, Some(device), _) => (Some(device.clone()), "anonymousId"),
        (None, None, Some(user)) => (Some(user.clone()), "userId"),
        (None, None, None) => (None, "userId or anonymousId"),
    }
}

/// A UUID `messageId` as is; any other one, or none, a UUID derived per application.
fn event_id(message: &Map<String, Value>, application: ApplicationId) -> Result<Uuid, FieldError> {
    match message.get("messageId") {
        None | Some(Value::Null) => Ok(derived_id(
            application,
            &Value::Object(message.clone()).to_string(),
        )),
        Some(Value::String(id)) if id.is_empty() => {
            Err(FieldError::new("messageId", "must not be empty"))
        }
        Some(Value::String(id)) => {
            Ok(Uuid::parse_str(id).unwrap_or_else(|_| derived_id(application, id)))
        }
        Some(_) => Err(FieldError::new("messageId", "must be a string")),
    }
}

/// A UUID (version 8) from the SHA-256 of the application and `text`: the same id for the same retry.
fn derived_id(application: ApplicationId, text: &str) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(application.as_uuid().as_bytes());
    hasher.update(text.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Names an error by the Segment field the value came from.
fn segment_field(mut error: FieldError, sources: &[(&'static str, &'static str)]) -> FieldError {
    let (head, tail) = error
        .field
        .split_once('.')
        .map_or((error.field.as_str(), ""), |(head, tail)| (head, tail));
    if let Some((_, source)) = sources.iter().find(|(field, _)| *field == head) {
        error.field = if tail.is_empty() {
            (*source).to_owned()
        } else {
            format!("{source}.{tail}")
        };
    }
    error
}

fn at_message(mut error: FieldError, at: &str) -> FieldError {
    if !at.is_empty() {
        error.field = if error.field.is_empty() {
            at.to_owned()
        } else {
            format!("{at}.{}", error.field)
        };
    }
    error
}

#[cfg(test)]
#[path = "segment_map_tests.rs"]
mod tests;

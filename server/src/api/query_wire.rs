//! Wire types of the query API: what analysts read.

use crate::api::json_out::{SerdeJson, rfc3339};
use chrono::{DateTime, Utc};
use eye_store::queries::{Bucket, EventCursor, Page, SessionCursor, SessionSummary, StoredEvent};
use poem_openapi::types::Any;
use poem_openapi::{ApiResponse, Object};
use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

/// A stored event.
#[derive(Debug, Clone, Object, Serialize)]
pub struct EventOut {
    /// Its id.
    pub event_id: Uuid,
    /// The application that sent it.
    pub application_id: Uuid,
    /// Its session, as the application names it.
    pub session_id: String,
    /// Its category.
    pub category: String,
    /// Its name.
    pub name: String,
    /// Its payload (a JSON object).
    // As the database's JSON text: passed on, never parsed.
    pub data: Any<Box<RawValue>>,
    /// When it occurred (UTC).
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: DateTime<Utc>,
    /// When The Eye accepted it.
    #[serde(serialize_with = "rfc3339")]
    pub received_at: DateTime<Utc>,
    /// The application's user, if sent.
    #[oai(nullable)]
    pub user_id: Option<String>,
    /// The device, if sent.
    #[oai(nullable)]
    pub device_id: Option<String>,
}

/// One page of events, in the order they occurred.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(example)]
pub struct EventPage {
    /// The events.
    pub events: Vec<EventOut>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A session's summary.
#[derive(Debug, Clone, Object, Serialize)]
pub struct SessionOut {
    /// The application it belongs to.
    pub application_id: Uuid,
    /// Its id, as the application names it.
    pub session_id: String,
    /// Its earliest event's timestamp.
    #[serde(serialize_with = "rfc3339")]
    pub first_seen: DateTime<Utc>,
    /// Its latest event's timestamp.
    #[serde(serialize_with = "rfc3339")]
    pub last_seen: DateTime<Utc>,
    /// How many events it has.
    pub event_count: i64,
}

/// One page of sessions, in key order (`application_id`, `session_id`).
#[derive(Debug, Clone, Object, Serialize)]
#[oai(example)]
pub struct SessionPage {
    /// The sessions.
    pub sessions: Vec<SessionOut>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// The number of events of one group in one time bucket.
#[derive(Debug, Clone, Object, Serialize)]
pub struct BucketOut {
    /// The bucket's start (UTC).
    #[serde(serialize_with = "rfc3339")]
    pub start: DateTime<Utc>,
    /// The group: a category, a name, or an application id.
    pub group: String,
    /// Events in the bucket.
    pub count: i64,
}

/// Counts per time bucket and group; buckets without events are left out.
#[derive(Debug, Clone, Object, Serialize)]
#[oai(example)]
pub struct EventStats {
    /// Ordered by start, then group.
    pub buckets: Vec<BucketOut>,
}

/// The answer of the event queries.
#[derive(ApiResponse)]
pub enum EventsFound {
    /// One page of events, in the order they occurred.
    #[oai(status = 200)]
    Page(SerdeJson<EventPage>),
}

/// The answer of the session query.
#[derive(ApiResponse)]
pub enum SessionsFound {
    /// One page of sessions, ordered by when they started.
    #[oai(status = 200)]
    Page(SerdeJson<SessionPage>),
}

/// The answer of the stats query.
#[derive(ApiResponse)]
pub enum StatsFound {
    /// Counts per time bucket and group.
    #[oai(status = 200)]
    Buckets(SerdeJson<EventStats>),
}

impl From<StoredEvent> for EventOut {
    fn from(event: StoredEvent) -> Self {
        Self {
            event_id: event.event_id.as_uuid(),
            application_id: event.application_id.as_uuid(),
            session_id: event.session_id,
            category: event.category,
            name: event.name,
            data: Any(event.data),
            timestamp: event.timestamp,
            received_at: event.received_at,
            user_id: event.user_id,
            device_id: event.device_id,
        }
    }
}

impl From<Page<StoredEvent, EventCursor>> for EventPage {
    fn from(page: Page<StoredEvent, EventCursor>) -> Self {
        Self {
            events: page.items.into_iter().map(EventOut::from).collect(),
            next_cursor: page.next.map(|cursor| cursor.encode()),
        }
    }
}

impl From<SessionSummary> for SessionOut {
    fn from(session: SessionSummary) -> Self {
        Self {
            application_id: session.application_id.as_uuid(),
            session_id: session.session_id,
            first_seen: session.first_seen,
            last_seen: session.last_seen,
            event_count: session.event_count,
        }
    }
}

impl From<Page<SessionSummary, SessionCursor>> for SessionPage {
    fn from(page: Page<SessionSummary, SessionCursor>) -> Self {
        Self {
            sessions: page.items.into_iter().map(SessionOut::from).collect(),
            next_cursor: page.next.map(|cursor| cursor.encode()),
        }
    }
}

impl From<Vec<Bucket>> for EventStats {
    fn from(buckets: Vec<Bucket>) -> Self {
        let buckets = buckets
            .into_iter()
            .map(|b| BucketOut {
                start: b.start,
                group: b.group,
                count: b.count,
            })
            .collect();
        Self { buckets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use poem_openapi::types::{Example, ToJSON};

    /// What [`SerdeJson`] writes is the JSON the schema documents (poem-openapi's own writing), compared
    /// as values: a payload's text is passed on as stored, whitespace and key order included.
    fn written_as_documented<T: ToJSON + Serialize>(answer: &T) {
        let written = serde_json::to_value(answer).expect("serializes");
        assert_eq!(Some(written), answer.to_json());
    }

    #[test]
    fn every_answer_is_written_as_its_schema_documents_it() {
        let mut page = EventPage::example();
        let event = page.events[0].clone();
        page.events.push(EventOut {
            user_id: Some("user-7".to_owned()),
            device_id: Some("device \"quoted\" ✓".to_owned()),
            data: Any(RawValue::from_string(
                r#"{"n": 1.5, "nested": {"a": [1, null]}}"#.to_owned(),
            )
            .expect("JSON")),
            timestamp: Utc
                .with_ymd_and_hms(2026, 1, 5, 8, 0, 15)
                .single()
                .expect("a time"),
            ..event
        });
        page.next_cursor = Some("abc".to_owned());
        written_as_documented(&page);
        written_as_documented(&SessionPage::example());
        written_as_documented(&EventStats::example());
    }
}

//! Wire types of the query API: what analysts read.

use chrono::{DateTime, Utc};
use eye_store::queries::{Bucket, EventCursor, Page, SessionCursor, SessionSummary, StoredEvent};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use serde_json::Value;
use uuid::Uuid;

/// A stored event.
#[derive(Debug, Clone, Object)]
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
    pub data: Value,
    /// When it occurred (UTC).
    pub timestamp: DateTime<Utc>,
    /// When The Eye accepted it.
    pub received_at: DateTime<Utc>,
    /// The application's user, if sent.
    #[oai(nullable)]
    pub user_id: Option<String>,
    /// The device, if sent.
    #[oai(nullable)]
    pub device_id: Option<String>,
}

/// One page of events, in the order they occurred.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct EventPage {
    /// The events.
    pub events: Vec<EventOut>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// A session's summary.
#[derive(Debug, Clone, Object)]
pub struct SessionOut {
    /// The application it belongs to.
    pub application_id: Uuid,
    /// Its id, as the application names it.
    pub session_id: String,
    /// Its earliest event's timestamp.
    pub first_seen: DateTime<Utc>,
    /// Its latest event's timestamp.
    pub last_seen: DateTime<Utc>,
    /// How many events it has.
    pub event_count: i64,
}

/// One page of sessions, in key order (`application_id`, `session_id`).
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct SessionPage {
    /// The sessions.
    pub sessions: Vec<SessionOut>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

/// The number of events of one group in one time bucket.
#[derive(Debug, Clone, Object)]
pub struct BucketOut {
    /// The bucket's start (UTC).
    pub start: DateTime<Utc>,
    /// The group: a category, a name, or an application id.
    pub group: String,
    /// Events in the bucket.
    pub count: i64,
}

/// Counts per time bucket and group; buckets without events are left out.
#[derive(Debug, Clone, Object)]
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
    Page(Json<EventPage>),
}

/// The answer of the session query.
#[derive(ApiResponse)]
pub enum SessionsFound {
    /// One page of sessions, ordered by when they started.
    #[oai(status = 200)]
    Page(Json<SessionPage>),
}

/// The answer of the stats query.
#[derive(ApiResponse)]
pub enum StatsFound {
    /// Counts per time bucket and group.
    #[oai(status = 200)]
    Buckets(Json<EventStats>),
}

impl From<StoredEvent> for EventOut {
    fn from(event: StoredEvent) -> Self {
        Self {
            event_id: event.event_id.as_uuid(),
            application_id: event.application_id.as_uuid(),
            session_id: event.session_id,
            category: event.category,
            name: event.name,
            data: event.data,
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

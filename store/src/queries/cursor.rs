//! Opaque keyset cursors: the sort key of the last row of a page, base64 encoded.
//!
//! A page continues strictly after that key, so rows inserted meanwhile never shift it: nothing is
//! skipped and nothing repeats.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use eye_domain::ApplicationId;
use uuid::Uuid;

/// A cursor that was not issued by this service (or was damaged on the way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cursor issued by this endpoint")]
pub struct CursorError;

/// Which way events are listed: by `(timestamp, id)`, oldest or newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventOrder {
    /// Oldest first (the default).
    #[default]
    Ascending,
    /// Newest first.
    Descending,
}

impl EventOrder {
    /// The cursor tag: `e` is the tag ascending cursors always had, so those issued before descending
    /// order existed still read back.
    fn tag(self) -> &'static str {
        match self {
            Self::Ascending => "e",
            Self::Descending => "d",
        }
    }
}

/// Where a page of events ends: events are ordered by `(timestamp, id)`, in the direction the cursor
/// was issued for (a cursor only continues a listing in that direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    pub(crate) timestamp: DateTime<Utc>,
    pub(crate) id: i64,
    pub(crate) order: EventOrder,
}

/// Where a page of sessions ends: sessions are ordered by `(application_id, session_id)`, their identity.
/// Not by `first_seen`: a late event moves it earlier, and a session whose key moves behind the cursor
/// between two pages would be on neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCursor {
    pub(crate) application_id: ApplicationId,
    pub(crate) session_id: String,
}

/// Where a page of notifications ends: newest first, by `(created_at, id)` descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationCursor {
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) id: Uuid,
}

fn time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, CursorError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| CursorError)
}

fn decode_parts(cursor: &str, tag: &str, parts: usize) -> Result<Vec<String>, CursorError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| CursorError)?;
    let text = String::from_utf8(bytes).map_err(|_| CursorError)?;
    let fields: Vec<String> = text.splitn(parts + 1, '|').map(str::to_owned).collect();
    match fields.split_first() {
        Some((first, rest)) if first == tag && rest.len() == parts => Ok(rest.to_vec()),
        _ => Err(CursorError),
    }
}

impl EventCursor {
    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        let tag = self.order.tag();
        URL_SAFE_NO_PAD.encode(format!("{tag}|{}|{}", time(&self.timestamp), self.id))
    }

    /// Reads a cursor back, in either direction.
    pub fn decode(cursor: &str) -> Result<Self, CursorError> {
        [EventOrder::Ascending, EventOrder::Descending]
            .into_iter()
            .find_map(|order| Self::decode_as(cursor, order).ok())
            .ok_or(CursorError)
    }

    fn decode_as(cursor: &str, order: EventOrder) -> Result<Self, CursorError> {
        let parts = decode_parts(cursor, order.tag(), 2)?;
        Ok(Self {
            timestamp: parse_time(&parts[0])?,
            id: parts[1].parse().map_err(|_| CursorError)?,
            order,
        })
    }

    /// The direction of the listing this cursor continues.
    pub fn order(&self) -> EventOrder {
        self.order
    }
}

impl SessionCursor {
    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("k|{}|{}", self.application_id, self.session_id))
    }

    /// Reads a cursor back (the session id comes last, so it may contain any character). The tag `k`
    /// differs from the earlier `(first_seen, …)` cursors' `s`, so one of those is refused, not misread.
    pub fn decode(cursor: &str) -> Result<Self, CursorError> {
        let parts = decode_parts(cursor, "k", 2)?;
        let application = Uuid::parse_str(&parts[0]).map_err(|_| CursorError)?;
        Ok(Self {
            application_id: application.into(),
            session_id: parts[1].clone(),
        })
    }
}

impl NotificationCursor {
    /// The opaque text handed to clients.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("n|{}|{}", time(&self.created_at), self.id))
    }

    /// Reads a cursor back.
    pub fn decode(cursor: &str) -> Result<Self, CursorError> {
        let parts = decode_parts(cursor, "n", 2)?;
        Ok(Self {
            created_at: parse_time(&parts[0])?,
            id: Uuid::parse_str(&parts[1]).map_err(|_| CursorError)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_time(text).expect("valid time")
    }

    #[test]
    fn an_event_cursor_reads_back_to_the_same_position_to_the_nanosecond_in_either_order() {
        for order in [EventOrder::Ascending, EventOrder::Descending] {
            let cursor = EventCursor {
                timestamp: at("2021-01-01T09:15:27.243860123Z"),
                id: 42,
                order,
            };
            assert_eq!(EventCursor::decode(&cursor.encode()), Ok(cursor));
        }
    }

    #[test]
    fn an_event_cursor_remembers_its_direction() {
        let newest = EventCursor {
            timestamp: at("2021-01-01T09:15:27Z"),
            id: 7,
            order: EventOrder::Descending,
        };
        let oldest = EventCursor {
            order: EventOrder::Ascending,
            ..newest
        };
        assert_ne!(newest.encode(), oldest.encode());
        assert_eq!(
            EventCursor::decode(&newest.encode()).map(|c| c.order()),
            Ok(EventOrder::Descending)
        );
    }

    #[test]
    fn an_ascending_cursor_issued_before_descending_order_existed_still_reads_back() {
        let earlier = URL_SAFE_NO_PAD.encode("e|2021-01-01T09:15:27Z|42");
        let cursor = EventCursor::decode(&earlier);
        assert_eq!(
            cursor.map(|c| (c.id, c.order())),
            Ok((42, EventOrder::Ascending))
        );
    }

    #[test]
    fn a_session_cursor_keeps_a_session_id_containing_the_separator() {
        let cursor = SessionCursor {
            application_id: ApplicationId::generate(),
            session_id: "a|b|c".into(),
        };
        assert_eq!(SessionCursor::decode(&cursor.encode()), Ok(cursor));
    }

    #[test]
    fn a_session_cursor_of_the_earlier_start_time_order_is_refused() {
        let earlier = URL_SAFE_NO_PAD.encode(format!(
            "s|2021-01-01T09:15:27Z|{}|s1",
            ApplicationId::generate()
        ));
        assert_eq!(SessionCursor::decode(&earlier), Err(CursorError));
    }

    #[test]
    fn a_notification_cursor_reads_back_and_refuses_an_event_cursor() {
        let cursor = NotificationCursor {
            created_at: at("2021-02-28T16:59:43.123456Z"),
            id: Uuid::now_v7(),
        };
        assert_eq!(NotificationCursor::decode(&cursor.encode()), Ok(cursor));
        let event = EventCursor {
            timestamp: at("2021-02-28T16:59:43Z"),
            id: 7,
            order: EventOrder::Descending,
        };
        assert_eq!(
            NotificationCursor::decode(&event.encode()),
            Err(CursorError)
        );
    }

    #[test]
    fn foreign_or_damaged_cursors_are_refused() {
        let session = SessionCursor {
            application_id: ApplicationId::generate(),
            session_id: "s".into(),
        };
        let no_id = URL_SAFE_NO_PAD.encode("d|2021-01-01T09:15:27Z");
        let bad_tag = URL_SAFE_NO_PAD.encode("x|2021-01-01T09:15:27Z|1");
        for bad in [
            "",
            "!!",
            "ZXw",
            &session.encode(),
            "ZXx4fDE",
            &no_id,
            &bad_tag,
        ] {
            assert_eq!(EventCursor::decode(bad), Err(CursorError), "cursor {bad:?}");
        }
    }
}

//! Grouping encoded events into batches by count, bytes and linger time.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::time::Instant;

use crate::event::{Event, EventError, EventId};

/// `{"events":[]}`: the body around the comma-separated events.
const BODY_OVERHEAD: usize = 13;
/// `,"sent_at":"2025-01-02T03:04:05.123456Z"`: what stamping adds to each event.
const STAMP_BYTES: usize = 40;

/// An event serialized once, when tracked, so its size is known and its id is fixed.
///
/// Its JSON has no `sent_at`: that is stamped on each attempt's request ([`Batch::body`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EncodedEvent {
    pub id: EventId,
    pub json: Vec<u8>,
}

impl EncodedEvent {
    /// Serializes a prepared event (one that has its id).
    pub fn encode(id: EventId, event: &Event) -> Result<Self, EventError> {
        let json = serde_json::to_vec(event).map_err(|e| EventError::NotSerializable {
            message: e.to_string(),
        })?;
        Ok(Self { id, json })
    }

    /// The size of a body holding only this event.
    pub fn body_size(&self) -> usize {
        BODY_OVERHEAD + self.json.len() + STAMP_BYTES
    }

    /// Appends the event's JSON with `stamp` (`,"sent_at":"…"`) before its closing brace.
    fn write_stamped(&self, body: &mut Vec<u8>, stamp: &[u8]) {
        match self.json.strip_suffix(b"}") {
            Some(open) if open.len() > 1 => {
                body.extend_from_slice(open);
                body.extend_from_slice(stamp);
                body.push(b'}');
            }
            // Not an object with fields: never built from an `Event`; sent as it is.
            _ => body.extend_from_slice(&self.json),
        }
    }
}

/// `,"sent_at":"…"` for a request sent at `at`: microseconds, so its length never varies.
fn stamp(at: DateTime<Utc>) -> Vec<u8> {
    let time = at.to_rfc3339_opts(SecondsFormat::Micros, true);
    format!(",\"sent_at\":\"{time}\"").into_bytes()
}

/// Events sent in one request, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Batch {
    events: Vec<EncodedEvent>,
    json_bytes: usize,
}

impl Batch {
    pub fn from_events(events: Vec<EncodedEvent>) -> Self {
        let json_bytes = events.iter().map(|e| e.json.len()).sum();
        Self { events, json_bytes }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn ids(&self) -> Vec<EventId> {
        self.events.iter().map(|e| e.id).collect()
    }

    /// The exact size of [`Batch::body`].
    pub fn body_size(&self) -> usize {
        let events = self.events.len();
        BODY_OVERHEAD + self.json_bytes + events * STAMP_BYTES + events.saturating_sub(1)
    }

    /// The size of the body after adding `event`.
    fn body_size_with(&self, event: &EncodedEvent) -> usize {
        let comma = usize::from(!self.events.is_empty());
        self.body_size() + comma + event.json.len() + STAMP_BYTES
    }

    fn push(&mut self, event: EncodedEvent) {
        self.json_bytes += event.json.len();
        self.events.push(event);
    }

    /// The request body `{"events":[...]}`, every event with `sent_at` set to `sent_at`.
    ///
    /// Built for each attempt with the time of that attempt, so the server's skew correction
    /// (`received_at - sent_at`) removes the device's clock skew and not the time spent buffered
    /// or retrying.
    pub fn body(&self, sent_at: DateTime<Utc>) -> Vec<u8> {
        let stamp = stamp(sent_at);
        let mut body = Vec::with_capacity(self.body_size());
        body.extend_from_slice(b"{\"events\":[");
        for (i, event) in self.events.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            event.write_stamped(&mut body, &stamp);
        }
        body.extend_from_slice(b"]}");
        body
    }

    /// Splits into two halves in order, for a 413 answer; a single event is handed back.
    pub fn split(mut self) -> Result<(Batch, Batch), Batch> {
        if self.events.len() < 2 {
            return Err(self);
        }
        let second = self.events.split_off(self.events.len() / 2);
        Ok((Batch::from_events(self.events), Batch::from_events(second)))
    }
}

impl Batch {
    /// Takes out the events at `positions` (those the server refused), keeping the rest in order.
    pub fn remove(self, positions: &BTreeSet<usize>) -> (Vec<EncodedEvent>, Batch) {
        let (removed, kept): (Vec<_>, Vec<_>) = self
            .events
            .into_iter()
            .enumerate()
            .partition(|(i, _)| positions.contains(i));
        let strip = |events: Vec<(usize, EncodedEvent)>| events.into_iter().map(|(_, e)| e);
        (
            strip(removed).collect(),
            Batch::from_events(strip(kept).collect()),
        )
    }
}

/// Limits that close a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    pub max_events: usize,
    pub max_bytes: usize,
    pub linger: Duration,
}

/// Collects events until a batch is full by count or bytes, or its linger time passes.
#[derive(Debug)]
pub(crate) struct Batcher {
    limits: BatchLimits,
    current: Batch,
    deadline: Option<Instant>,
}

impl Batcher {
    pub fn new(limits: BatchLimits) -> Self {
        Self {
            limits,
            current: Batch::default(),
            deadline: None,
        }
    }

    /// Adds an event (whose own body size fits the byte limit); returns a batch ready to send.
    ///
    /// At most one batch is ready per event: an event that would overflow the bytes closes
    /// the current batch and starts the next one, which then holds one event.
    pub fn push(&mut self, event: EncodedEvent, now: Instant) -> Option<Batch> {
        let overflow =
            !self.current.is_empty() && self.current.body_size_with(&event) > self.limits.max_bytes;
        let closed = if overflow { Some(self.take()) } else { None };
        if self.current.is_empty() {
            self.deadline = Some(now + self.limits.linger);
        }
        self.current.push(event);
        if self.current.len() >= self.limits.max_events {
            return Some(self.take());
        }
        closed
    }

    /// When the current batch must be sent even if not full.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Takes the current batch (possibly empty).
    pub fn take(&mut self) -> Batch {
        self.deadline = None;
        std::mem::take(&mut self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn event(json_len: usize) -> EncodedEvent {
        // A JSON object of exactly `json_len` bytes: `{"k":"xx…"}`.
        let json = format!("{{\"k\":\"{}\"}}", "x".repeat(json_len - 8)).into_bytes();
        EncodedEvent {
            id: EventId::new_v7(),
            json,
        }
    }

    fn limits(max_events: usize, max_bytes: usize) -> BatchLimits {
        BatchLimits {
            max_events,
            max_bytes,
            linger: Duration::from_millis(200),
        }
    }

    #[test]
    fn a_batch_is_ready_when_it_reaches_the_event_count() {
        let mut batcher = Batcher::new(limits(3, 10_000));
        let now = Instant::now();
        assert!(batcher.push(event(10), now).is_none());
        assert!(batcher.push(event(10), now).is_none());
        let batch = batcher
            .push(event(10), now)
            .expect("third event fills the batch");
        assert_eq!(batch.len(), 3);
        assert!(batcher.deadline().is_none());
    }

    #[test]
    fn an_event_that_would_exceed_the_bytes_closes_the_batch_and_starts_the_next() {
        // Two 40-byte events, each stamped with 40 bytes of `sent_at`, make a
        // 13 + 80 + 1 + 80 = 174 byte body; a third exceeds 200.
        let mut batcher = Batcher::new(limits(100, 200));
        let now = Instant::now();
        assert!(batcher.push(event(40), now).is_none());
        assert!(batcher.push(event(40), now).is_none());
        let batch = batcher
            .push(event(40), now)
            .expect("the third event overflows");
        assert_eq!((batch.len(), batch.body_size()), (2, 174));
        assert_eq!(batcher.take().len(), 1);
    }

    #[test]
    fn a_batch_that_fits_exactly_is_not_closed_early() {
        let mut batcher = Batcher::new(limits(100, 174));
        let now = Instant::now();
        assert!(batcher.push(event(40), now).is_none());
        assert!(batcher.push(event(40), now).is_none());
        assert_eq!(batcher.take().body_size(), 174);
    }

    #[test]
    fn the_linger_deadline_starts_with_the_first_event_of_a_batch() {
        let mut batcher = Batcher::new(limits(10, 10_000));
        let start = Instant::now();
        assert!(batcher.deadline().is_none());
        batcher.push(event(10), start);
        batcher.push(event(10), start + Duration::from_millis(50));
        assert_eq!(batcher.deadline(), Some(start + Duration::from_millis(200)));
        batcher.take();
        assert!(batcher.deadline().is_none());
    }

    #[test]
    fn the_body_is_valid_json_of_exactly_the_computed_size() {
        let batch = Batch::from_events(vec![event(9), event(12), event(30)]);
        let body = batch.body(Utc::now());
        assert_eq!(body.len(), batch.body_size());
        let parsed: Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(parsed["events"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn every_event_of_a_body_carries_the_attempts_sent_at() {
        let sent_at = DateTime::parse_from_rfc3339("2025-01-02T03:04:05.000006Z")
            .expect("valid")
            .to_utc();
        let body = Batch::from_events(vec![event(10), event(11)]).body(sent_at);
        let parsed: Value = serde_json::from_slice(&body).expect("valid JSON");
        let stamps: Vec<&Value> = parsed["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| &e["sent_at"])
            .collect();
        assert_eq!(stamps, ["2025-01-02T03:04:05.000006Z"; 2]);
    }

    #[test]
    fn splitting_keeps_order_and_halves_the_events() {
        let events: Vec<_> = (0..5).map(|_| event(10)).collect();
        let ids: Vec<_> = events.iter().map(|e| e.id).collect();
        let (first, second) = Batch::from_events(events)
            .split()
            .map_err(|_| "one event")
            .expect("splittable");
        assert_eq!((first.len(), second.len()), (2, 3));
        assert_eq!([first.ids(), second.ids()].concat(), ids);
        assert_eq!(first.body_size(), first.body(Utc::now()).len());
    }

    #[test]
    fn a_single_event_cannot_be_split() {
        assert!(Batch::from_events(vec![event(10)]).split().is_err());
    }

    #[test]
    fn removing_refused_positions_keeps_the_rest_in_order() {
        let events: Vec<_> = (0..5).map(|_| event(10)).collect();
        let ids: Vec<_> = events.iter().map(|e| e.id).collect();
        let positions = BTreeSet::from([1, 3, 9]);
        let (removed, kept) = Batch::from_events(events).remove(&positions);
        let removed: Vec<_> = removed.iter().map(|e| e.id).collect();
        assert_eq!(removed, [ids[1], ids[3]]);
        assert_eq!(kept.ids(), [ids[0], ids[2], ids[4]]);
        assert_eq!(kept.body_size(), kept.body(Utc::now()).len());
    }
}

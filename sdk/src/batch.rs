//! Grouping encoded events into batches by count, bytes and linger time.

use std::time::Duration;

use tokio::time::Instant;

use crate::event::{Event, EventError, EventId};

/// `{"events":[]}`: the body around the comma-separated events.
const BODY_OVERHEAD: usize = 13;

/// An event serialized once, when tracked, so its size is known and its id is fixed.
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
        BODY_OVERHEAD + self.json.len()
    }
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
        BODY_OVERHEAD + self.json_bytes + self.events.len().saturating_sub(1)
    }

    /// The size of the body after adding `event`.
    fn body_size_with(&self, event: &EncodedEvent) -> usize {
        let comma = usize::from(!self.events.is_empty());
        self.body_size() + comma + event.json.len()
    }

    fn push(&mut self, event: EncodedEvent) {
        self.json_bytes += event.json.len();
        self.events.push(event);
    }

    /// The request body `{"events":[...]}`.
    pub fn body(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.body_size());
        body.extend_from_slice(b"{\"events\":[");
        for (i, event) in self.events.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&event.json);
        }
        body.extend_from_slice(b"]}");
        body
    }

    /// Splits into two halves in order, for a 413 answer; `None` for a single event.
    pub fn split(mut self) -> Option<(Batch, Batch)> {
        if self.events.len() < 2 {
            return None;
        }
        let second = self.events.split_off(self.events.len() / 2);
        Some((Batch::from_events(self.events), Batch::from_events(second)))
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
        // A JSON string of exactly `json_len` bytes.
        let json = format!("\"{}\"", "x".repeat(json_len - 2)).into_bytes();
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
        // Two 40-byte events make a 13 + 40 + 1 + 40 = 94 byte body; a third exceeds 100.
        let mut batcher = Batcher::new(limits(100, 100));
        let now = Instant::now();
        assert!(batcher.push(event(40), now).is_none());
        assert!(batcher.push(event(40), now).is_none());
        let batch = batcher
            .push(event(40), now)
            .expect("the third event overflows");
        assert_eq!((batch.len(), batch.body_size()), (2, 94));
        assert_eq!(batcher.take().len(), 1);
    }

    #[test]
    fn a_batch_that_fits_exactly_is_not_closed_early() {
        let mut batcher = Batcher::new(limits(100, 94));
        let now = Instant::now();
        assert!(batcher.push(event(40), now).is_none());
        assert!(batcher.push(event(40), now).is_none());
        assert_eq!(batcher.take().body_size(), 94);
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
        let batch = Batch::from_events(vec![event(5), event(7), event(9)]);
        let body = batch.body();
        assert_eq!(body.len(), batch.body_size());
        let parsed: Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(parsed["events"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn splitting_keeps_order_and_halves_the_events() {
        let events: Vec<_> = (0..5).map(|_| event(10)).collect();
        let ids: Vec<_> = events.iter().map(|e| e.id).collect();
        let (first, second) = Batch::from_events(events).split().expect("splittable");
        assert_eq!((first.len(), second.len()), (2, 3));
        assert_eq!([first.ids(), second.ids()].concat(), ids);
        assert_eq!(first.body_size(), first.body().len());
    }

    #[test]
    fn a_single_event_cannot_be_split() {
        assert!(Batch::from_events(vec![event(10)]).split().is_none());
    }
}

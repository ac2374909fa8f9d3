//! Judging a batch's events: clock skew, future timestamps, and each type's payload schema.

use chrono::{DateTime, TimeDelta, Utc};
use eye_domain::{IngestBatch, NewEvent};
use eye_store::{EventRecord, IngestErrorRecord, RejectReason};
use eye_validation::{
    EventTypeKey, Rejection, SharedSchemaRegistry, UnknownEventPolicy, Verdict, judge_time,
};

/// Decides which events of a batch are stored and which are recorded as errors.
#[derive(Clone)]
pub struct Validator {
    registry: SharedSchemaRegistry,
    unknown: UnknownEventPolicy,
    max_skew: TimeDelta,
    retention: Option<TimeDelta>,
}

/// A batch split by the verdicts.
pub struct Judged<'a> {
    /// Events to store.
    pub valid: Vec<EventRecord<'a>>,
    /// Events to record as errors.
    pub refused: Vec<IngestErrorRecord>,
    /// Valid events of types without a schema (accepted by policy).
    pub unregistered: u64,
}

impl Validator {
    /// A validator over a registry that the refresh task keeps current.
    pub fn new(
        registry: SharedSchemaRegistry,
        unknown: UnknownEventPolicy,
        max_skew: TimeDelta,
    ) -> Self {
        Self {
            registry,
            unknown,
            max_skew,
            retention: None,
        }
    }

    /// Refuses events that occurred before `EYE_RETENTION` ago (as `expired`), judged when the batch is
    /// processed: the retention sweeper may have deleted a stored copy of such an event already, so
    /// storing it again would break exactly-once storage, and it would be deleted at once anyway.
    pub fn with_retention(mut self, retention: Option<TimeDelta>) -> Self {
        self.retention = retention;
        self
    }

    /// The registry this validator reads.
    pub fn registry(&self) -> &SharedSchemaRegistry {
        &self.registry
    }

    /// Judges every event of `batch`; one event's failure never affects another.
    pub fn judge<'a>(&self, batch: &'a IngestBatch) -> Judged<'a> {
        let registry = self.registry.snapshot();
        let mut judged = Judged {
            valid: Vec::new(),
            refused: Vec::new(),
            unregistered: 0,
        };
        let oldest_kept = self.retention.map(|keep| Utc::now() - keep);
        for event in &batch.events {
            match self.judge_event(&registry, batch, event) {
                Ok(record) if oldest_kept.is_some_and(|oldest| record.timestamp < oldest) => {
                    judged.refused.push(expired(batch, event, record.timestamp));
                }
                Ok(record) => {
                    judged.unregistered += u64::from(record.schema_version.is_none());
                    judged.valid.push(record);
                }
                Err(rejection) => judged.refused.push(refusal(batch, event, &rejection)),
            }
        }
        judged
    }

    fn judge_event<'a>(
        &self,
        registry: &eye_validation::SchemaRegistry,
        batch: &IngestBatch,
        event: &'a NewEvent,
    ) -> Result<EventRecord<'a>, Rejection> {
        let time = judge_time(
            event.timestamp,
            event.sent_at,
            batch.received_at,
            self.max_skew,
        )?;
        let key = EventTypeKey::new(
            event.event_type.category.as_str(),
            event.event_type.name.as_str(),
        );
        match registry.judge(&key, &event.data.schema_view(), self.unknown) {
            Verdict::Invalid(rejection) => Err(rejection),
            Verdict::Valid { schema_version } => Ok(EventRecord {
                event,
                timestamp: time.corrected(),
                client_timestamp: event.sent_at.map(|_| time.original()),
                schema_version,
            }),
        }
    }
}

/// The error record of a refused event: the reason, and a detail naming each offending value.
pub(crate) fn refusal(
    batch: &IngestBatch,
    event: &NewEvent,
    rejection: &Rejection,
) -> IngestErrorRecord {
    let mut detail = rejection.detail().to_owned();
    for violation in rejection.violations() {
        let pointer = if violation.pointer.is_empty() {
            "/"
        } else {
            &violation.pointer
        };
        detail.push_str(&format!("\n{pointer}: {}", violation.message));
    }
    error_record(batch, event, reason_code(rejection.reason()), detail)
}

fn expired(batch: &IngestBatch, event: &NewEvent, timestamp: DateTime<Utc>) -> IngestErrorRecord {
    let detail = format!(
        "occurred at {} (after clock correction), before the retention limit (EYE_RETENTION): \
         not stored",
        timestamp.to_rfc3339()
    );
    error_record(batch, event, RejectReason::Expired, detail)
}

/// The record of an event that was accepted but not stored, with the event as received.
pub(crate) fn error_record(
    batch: &IngestBatch,
    event: &NewEvent,
    reason: RejectReason,
    detail: String,
) -> IngestErrorRecord {
    IngestErrorRecord {
        application_id: batch.application_id,
        job_id: batch.job_id,
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        reason,
        detail,
        raw: serde_json::to_value(event).unwrap_or_default(),
        received_at: batch.received_at,
    }
}

fn reason_code(reason: eye_validation::RejectReason) -> RejectReason {
    match reason {
        eye_validation::RejectReason::InvalidPayload => RejectReason::InvalidPayload,
        eye_validation::RejectReason::FutureTimestamp => RejectReason::FutureTimestamp,
        eye_validation::RejectReason::UnknownEventType => RejectReason::UnknownEventType,
        eye_validation::RejectReason::InvalidSentAt => RejectReason::InvalidSentAt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use eye_domain::{ApplicationId, JobId};
    use serde_json::json;

    fn batch(events: serde_json::Value) -> IngestBatch {
        IngestBatch {
            job_id: JobId::generate(),
            application_id: ApplicationId::generate(),
            received_at: Utc::now(),
            events: serde_json::from_value(events).expect("valid events"),
        }
    }

    fn validator(unknown: UnknownEventPolicy) -> Validator {
        let registry = eye_validation::builtin_registry().expect("built-in schemas compile");
        Validator::new(
            SharedSchemaRegistry::new(registry),
            unknown,
            Duration::minutes(5),
        )
    }

    fn event(
        id: u8,
        category: &str,
        name: &str,
        data: serde_json::Value,
        timestamp: String,
    ) -> serde_json::Value {
        json!({"event_id": format!("0190f0e0-0000-7000-8000-0000000000{id:02}"), "session_id": "s",
               "category": category, "name": name, "data": data, "timestamp": timestamp})
    }

    #[test]
    fn one_bad_event_does_not_affect_the_others() {
        let now = Utc::now().to_rfc3339();
        let future = (Utc::now() + Duration::hours(1)).to_rfc3339();
        let batch = batch(json!([
            event(
                1,
                "page interaction",
                "pageview",
                json!({"host": "www.ca.com", "path": "/"}),
                now.clone()
            ),
            event(
                2,
                "page interaction",
                "pageview",
                json!({"host": "www.ca.com"}),
                now.clone()
            ),
            event(
                3,
                "page interaction",
                "pageview",
                json!({"host": "www.ca.com", "path": "/"}),
                future
            ),
            event(4, "video", "play", json!({}), now),
        ]));
        let judged = validator(UnknownEventPolicy::Reject).judge(&batch);
        assert_eq!(judged.valid.len(), 1);
        assert_eq!(judged.valid[0].schema_version, Some(1));
        let reasons: Vec<&str> = judged.refused.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            ["invalid_payload", "future_timestamp", "unknown_event_type"]
        );
        assert!(
            judged.refused[0]
                .detail
                .contains("\"path\" is a required property"),
            "{}",
            judged.refused[0].detail
        );
    }

    #[test]
    fn a_closed_schema_judges_the_payload_without_the_segment_envelope() {
        let closed = json!({"type": "object", "properties": {"total": {"type": "number"}},
                            "additionalProperties": false});
        let registered = eye_validation::RegisteredSchema {
            version: 1,
            schema: eye_validation::CompiledSchema::compile(&closed).expect("compiles"),
        };
        let registry = [(EventTypeKey::new("track", "Order Completed"), registered)]
            .into_iter()
            .collect();
        let validator = Validator::new(
            SharedSchemaRegistry::new(registry),
            UnknownEventPolicy::Reject,
            Duration::minutes(5),
        );
        let now = Utc::now().to_rfc3339();
        let envelope = json!({"total": 12, "$segment": {"context": {"ip": "10.0.0.1"}}});
        let stray = json!({"total": 12, "coupon": "x"});
        let batch = batch(json!([
            event(1, "track", "Order Completed", envelope, now.clone()),
            event(2, "track", "Order Completed", stray, now),
        ]));
        let judged = validator.judge(&batch);
        assert_eq!(judged.valid.len(), 1, "the envelope is not judged");
        assert!(
            judged.valid[0].event.data.fields().contains_key("$segment"),
            "and it is kept"
        );
        assert_eq!(judged.refused.len(), 1, "any other extra field still is");
    }

    #[test]
    fn unknown_types_are_stored_unregistered_when_the_policy_accepts_them() {
        let batch = batch(json!([event(
            1,
            "video",
            "play",
            json!({}),
            Utc::now().to_rfc3339()
        )]));
        let judged = validator(UnknownEventPolicy::Accept).judge(&batch);
        assert_eq!((judged.valid.len(), judged.unregistered), (1, 1));
        assert_eq!(judged.valid[0].schema_version, None);
    }

    #[test]
    fn an_event_older_than_the_retention_is_refused_as_expired_and_a_recent_one_kept() {
        let old = (Utc::now() - Duration::days(401)).to_rfc3339();
        let recent = (Utc::now() - Duration::days(399)).to_rfc3339();
        let batch = batch(json!([
            event(1, "video", "play", json!({}), old),
            event(2, "video", "play", json!({}), recent)
        ]));
        let validator =
            validator(UnknownEventPolicy::Accept).with_retention(Some(Duration::days(400)));
        let judged = validator.judge(&batch);
        assert_eq!(judged.valid.len(), 1);
        assert_eq!(judged.valid[0].event.event_id, batch.events[1].event_id);
        let reasons: Vec<&str> = judged.refused.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons, ["expired"]);
    }

    #[test]
    fn a_fast_device_clock_is_corrected_and_its_own_time_kept() {
        let device_now = Utc::now() + Duration::hours(1);
        let mut raw = event(1, "video", "play", json!({}), device_now.to_rfc3339());
        raw["sent_at"] = json!(device_now.to_rfc3339());
        let batch = batch(json!([raw]));
        let judged = validator(UnknownEventPolicy::Accept).judge(&batch);
        let record = judged.valid.first().expect("accepted after correction");
        assert!((record.timestamp - batch.received_at).num_seconds().abs() <= 1);
        assert_eq!(
            record.client_timestamp.map(|t| t.timestamp()),
            Some(device_now.timestamp())
        );
    }
}

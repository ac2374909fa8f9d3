use serde_json::json;

use super::*;
use crate::builtin::builtin_registry;

fn registry() -> SchemaRegistry {
    builtin_registry().expect("built-in schemas compile")
}

fn pageview() -> EventTypeKey {
    EventTypeKey::new("page interaction", "pageview")
}

fn reason_of(verdict: &Verdict) -> Option<RejectReason> {
    match verdict {
        Verdict::Valid { .. } => None,
        Verdict::Invalid(rejection) => Some(rejection.reason()),
    }
}

#[test]
fn policies_parse_from_their_names_only() {
    let cases = [
        ("accept", Ok(UnknownEventPolicy::Accept)),
        ("reject", Ok(UnknownEventPolicy::Reject)),
        (" Reject ", Ok(UnknownEventPolicy::Reject)),
        ("drop", Err(InvalidPolicy("drop".to_owned()))),
        ("", Err(InvalidPolicy(String::new()))),
    ];
    for (text, expected) in cases {
        assert_eq!(text.parse::<UnknownEventPolicy>(), expected, "{text:?}");
    }
}

#[test]
fn reason_codes_read_as_snake_case_in_text_and_json() {
    let cases = [
        (RejectReason::InvalidPayload, "invalid_payload"),
        (RejectReason::FutureTimestamp, "future_timestamp"),
        (RejectReason::InvalidSentAt, "invalid_sent_at"),
        (RejectReason::UnknownEventType, "unknown_event_type"),
    ];
    for (reason, code) in cases {
        assert_eq!(reason.as_str(), code);
        assert_eq!(
            serde_json::to_value(reason).expect("serializes"),
            json!(code)
        );
    }
}

#[test]
fn a_conforming_event_is_valid_under_its_schema_version() {
    let data = json!({"host": "www.ca.com", "path": "/"});
    let verdict = registry().judge(&pageview(), &data, UnknownEventPolicy::Reject);
    assert_eq!(
        verdict,
        Verdict::Valid {
            schema_version: Some(1)
        }
    );
}

#[test]
fn a_non_conforming_event_is_rejected_as_invalid_payload_with_its_violations() {
    let data = json!({"path": "pricing"});
    let verdict = registry().judge(&pageview(), &data, UnknownEventPolicy::Accept);
    let Verdict::Invalid(rejection) = verdict else {
        panic!("expected a rejection, got {verdict:?}");
    };
    assert_eq!(rejection.reason(), RejectReason::InvalidPayload);
    let pointers: Vec<&str> = rejection
        .violations()
        .iter()
        .map(|v| v.pointer.as_str())
        .collect();
    assert_eq!(pointers, ["", "/path"]);
    assert_eq!(
        rejection.detail(),
        "data of page interaction / pageview violates schema version 1 in 2 place(s)"
    );
}

#[test]
fn an_unknown_event_type_is_accepted_unvalidated_or_rejected_as_the_policy_says() {
    let key = EventTypeKey::new("video", "play");
    let cases = [
        (
            UnknownEventPolicy::Accept,
            Verdict::Valid {
                schema_version: None,
            },
        ),
        (
            UnknownEventPolicy::Reject,
            Verdict::Invalid(Rejection::unknown_event_type(&key)),
        ),
    ];
    for (policy, expected) in cases {
        assert_eq!(
            registry().judge(&key, &json!({"anything": 1}), policy),
            expected
        );
    }
}

#[test]
fn an_unknown_event_type_rejection_names_the_type() {
    let key = EventTypeKey::new("video", "play");
    let verdict = registry().judge(&key, &json!({}), UnknownEventPolicy::Reject);
    assert_eq!(reason_of(&verdict), Some(RejectReason::UnknownEventType));
    let Verdict::Invalid(rejection) = verdict else {
        panic!("expected a rejection");
    };
    assert_eq!(
        rejection.detail(),
        "no schema is registered for event type video / play"
    );
}

#[test]
fn a_future_timestamp_becomes_a_future_timestamp_rejection() {
    let received = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let timestamp = received + chrono::TimeDelta::minutes(5);
    let future = crate::time::judge_time(timestamp, None, received, chrono::TimeDelta::seconds(30))
        .expect_err("future");
    let rejection = Rejection::from(future);
    assert_eq!(rejection.reason(), RejectReason::FutureTimestamp);
    assert_eq!(rejection.detail(), future.detail());
    assert!(rejection.violations().is_empty());
}

#[test]
fn an_implausible_sent_at_becomes_an_invalid_sent_at_rejection() {
    let received = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::TimeDelta::days(20_000);
    let sent_at = received + chrono::TimeDelta::days(3_000_000);
    let invalid = crate::time::judge_time(
        received,
        Some(sent_at),
        received,
        chrono::TimeDelta::seconds(30),
    )
    .expect_err("invalid sent_at");
    let rejection = Rejection::from(invalid);
    assert_eq!(rejection.reason(), RejectReason::InvalidSentAt);
    assert_eq!(rejection.detail(), invalid.detail());
}

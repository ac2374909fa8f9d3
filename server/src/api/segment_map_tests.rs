use super::*;
use chrono::TimeZone;

const APP: &str = "0190f0e0-0000-7000-8000-0000000000aa";
const OTHER_APP: &str = "0190f0e0-0000-7000-8000-0000000000bb";

fn envelope(call: Option<Call>) -> Envelope<'static> {
    Envelope {
        application_id: ApplicationId::from(Uuid::parse_str(APP).expect("uuid")),
        call,
        context: None,
        sent_at: None,
        received_at: Utc
            .with_ymd_and_hms(2026, 11, 30, 8, 0, 0)
            .single()
            .expect("valid"),
    }
}

fn map(message: Value) -> NewEvent {
    parse_message(message, &envelope(None), "").expect("valid")
}

fn track() -> Value {
    json!({
        "type": "track", "event": "Order Completed", "userId": "u1", "anonymousId": "a1",
        "messageId": "0190f0e0-0000-7000-8000-000000000001", "properties": {"revenue": 9.5},
        "context": {"ip": "1.2.3.4"}, "integrations": {"All": true},
        "timestamp": "2026-11-30T07:59:00.000Z", "writeKey": "secret"
    })
}

#[test]
fn each_call_maps_to_its_category_name_and_payload() {
    let cases = [
        (track(), "track / Order Completed", "revenue"),
        (
            json!({"type": "page", "name": "Home", "anonymousId": "a", "properties": {"path": "/"}}),
            "page / Home",
            "path",
        ),
        (
            json!({"type": "screen", "anonymousId": "a", "properties": {"x": 1}}),
            "screen / screen",
            "x",
        ),
        (
            json!({"type": "identify", "userId": "u", "traits": {"email": "e"}}),
            "identify / identify",
            "email",
        ),
        (
            json!({"type": "group", "userId": "u", "groupId": "g", "traits": {"plan": "pro"}}),
            "group / group",
            "plan",
        ),
        (
            json!({"type": "alias", "userId": "u", "previousId": "p"}),
            "alias / alias",
            ENVELOPE_KEY,
        ),
    ];
    for (message, event_type, data_key) in cases {
        let event = map(message.clone());
        assert_eq!(event.event_type.to_string(), event_type, "{message}");
        assert!(event.data.fields().contains_key(data_key), "{message}");
    }
}

#[test]
fn everything_but_the_payload_and_the_write_key_is_kept_under_the_envelope_key() {
    let event = map(track());
    let data = event.data.fields();
    assert_eq!(data["revenue"], 9.5);
    let envelope = data[ENVELOPE_KEY].as_object().expect("object");
    assert_eq!(envelope["context"], json!({"ip": "1.2.3.4"}));
    assert_eq!(envelope["integrations"], json!({"All": true}));
    assert_eq!(envelope["anonymousId"], "a1");
    assert!(!envelope.contains_key("properties"));
    assert!(
        !envelope.contains_key("writeKey"),
        "a credential is never stored"
    );
}

#[test]
fn ids_users_devices_and_sessions_map_as_documented() {
    let event = map(track());
    assert_eq!(
        event.event_id.to_string(),
        "0190f0e0-0000-7000-8000-000000000001"
    );
    assert_eq!(
        event.user_id.map(|u| u.as_str().to_owned()),
        Some("u1".into())
    );
    assert_eq!(
        event.device_id.map(|d| d.as_str().to_owned()),
        Some("a1".into())
    );
    assert_eq!(
        event.session_id.as_str(),
        "a1",
        "no SDK session: the device's"
    );
}

#[test]
fn the_session_comes_from_the_sdk_then_the_device_then_the_user() {
    let cases = [
        (
            json!({"context": {"sessionId": 1700000000}, "anonymousId": "a", "userId": "u"}),
            "1700000000",
        ),
        (
            json!({"integrations": {"Amplitude": {"session_id": 42}}, "anonymousId": "a"}),
            "42",
        ),
        (
            json!({"context": {"device": {"id": "d"}}, "userId": "u"}),
            "d",
        ),
        (json!({"userId": 7}), "7"),
    ];
    for (mut message, session) in cases {
        message["type"] = json!("identify");
        assert_eq!(
            map(message.clone()).session_id.as_str(),
            session,
            "{message}"
        );
    }
}

#[test]
fn a_message_id_that_is_not_a_uuid_maps_to_the_same_uuid_per_application() {
    let mut message = track();
    message["messageId"] = json!("ajs-next-1700000000000-abc");
    let first = map(message.clone()).event_id;
    assert_eq!(
        map(message.clone()).event_id,
        first,
        "a retry is the same event"
    );
    let mut other = envelope(None);
    other.application_id = ApplicationId::from(Uuid::parse_str(OTHER_APP).expect("uuid"));
    let elsewhere = parse_message(message.clone(), &other, "")
        .expect("valid")
        .event_id;
    assert_ne!(
        elsewhere, first,
        "another application's id is another event"
    );
    message.as_object_mut().map(|m| m.remove("messageId"));
    assert_eq!(
        map(message.clone()).event_id,
        map(message).event_id,
        "content"
    );
}

#[test]
fn timestamps_prefer_the_original_and_sent_at_comes_from_the_message_or_the_batch() {
    let mut message = track();
    message["originalTimestamp"] = json!("2026-11-30T07:58:00Z");
    message["sentAt"] = json!("2026-11-30T07:58:30Z");
    let event = map(message.clone());
    assert_eq!(event.timestamp.to_rfc3339(), "2026-11-30T07:58:00+00:00");
    assert_eq!(
        event.sent_at.map(|t| t.to_rfc3339()),
        Some("2026-11-30T07:58:30+00:00".into())
    );

    message.as_object_mut().map(|m| m.remove("sentAt"));
    let batch_sent_at = json!("2026-11-30T07:59:30Z");
    let batch = Envelope {
        sent_at: Some(&batch_sent_at),
        ..envelope(None)
    };
    let event = parse_message(message, &batch, "batch[0]").expect("valid");
    assert_eq!(
        event.sent_at.map(|t| t.to_rfc3339()),
        Some("2026-11-30T07:59:30+00:00".into())
    );

    let undated = json!({"type": "identify", "userId": "u"});
    assert_eq!(
        map(undated).timestamp.to_rfc3339(),
        "2026-11-30T08:00:00+00:00"
    );
}

#[test]
fn the_batch_context_fills_in_what_a_message_context_lacks() {
    let batch_context = json!({"ip": "9.9.9.9", "locale": "de"});
    let mut batch = envelope(None);
    batch.context = batch_context.as_object();
    let event = parse_message(track(), &batch, "batch[0]").expect("valid");
    let context = &event.data.fields()[ENVELOPE_KEY]["context"];
    assert_eq!(*context, json!({"ip": "1.2.3.4", "locale": "de"}));
}

#[test]
fn a_single_call_endpoint_implies_the_type() {
    let message = json!({"event": "Clicked", "userId": "u"});
    let event = parse_message(message, &envelope(Some(Call::Track)), "").expect("valid");
    assert_eq!(event.event_type.to_string(), "track / Clicked");
}

#[test]
fn errors_name_the_segment_fields_with_their_place_in_the_batch() {
    let cases = [
        (json!({"event": "x", "userId": "u"}), "batch[2].type"),
        (json!({"type": "shout", "userId": "u"}), "batch[2].type"),
        (json!({"type": "track", "userId": "u"}), "batch[2].event"),
        (
            json!({"type": "track", "event": "", "userId": "u"}),
            "batch[2].event",
        ),
        (
            json!({"type": "track", "event": "e"}),
            "batch[2].userId or anonymousId",
        ),
        (
            json!({"type": "track", "event": "e", "userId": "u", "properties": [1]}),
            "batch[2].properties",
        ),
        (
            json!({"type": "identify", "userId": "u", "traits": {"$segment": 1}}),
            "batch[2].traits.$segment",
        ),
        (
            json!({"type": "track", "event": "e", "userId": "u", "timestamp": "soon"}),
            "batch[2].timestamp",
        ),
        (
            json!({"type": "track", "event": "e", "userId": "u", "originalTimestamp": "x"}),
            "batch[2].originalTimestamp",
        ),
        (
            json!({"type": "track", "event": "e", "userId": "u", "sentAt": 5}),
            "batch[2].sentAt",
        ),
        (
            json!({"type": "track", "event": "e", "userId": "u", "messageId": 5}),
            "batch[2].messageId",
        ),
        (
            json!({"type": "page", "userId": "x".repeat(129)}),
            "batch[2].userId",
        ),
        (
            json!({"type": "page", "anonymousId": "x".repeat(129)}),
            "batch[2].anonymousId",
        ),
        (json!("a string"), "batch[2]"),
    ];
    for (message, field) in cases {
        let errors =
            parse_message(message.clone(), &envelope(None), "batch[2]").expect_err("invalid");
        assert_eq!(errors[0].field, field, "{message}");
    }
}

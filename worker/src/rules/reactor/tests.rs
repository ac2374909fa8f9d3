use super::*;
use chrono::{DateTime, TimeDelta, Utc};
use eye_domain::NewEvent;
use eye_store::{Checkpoint, EventRecord};

fn at(minutes: i64, id: i64) -> EventCursor {
    EventCursor {
        at: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(minutes),
        id,
    }
}

fn key() -> UserKey {
    UserKey {
        application_id: ApplicationId::generate(),
        user_id: "u".into(),
    }
}

fn stored(cursor: Option<EventCursor>, checkpoint: Option<EventCursor>) -> StoredRuleState {
    StoredRuleState {
        state: UserRuleState::default(),
        version: Some(1),
        cursor,
        checkpoint: checkpoint.map(|cursor| Checkpoint {
            state: UserRuleState::default(),
            cursor,
        }),
        revision: Some(RuleRevision::from(3)),
    }
}

#[test]
fn only_in_order_events_under_the_rules_the_state_was_evaluated_with_skip_the_read_back() {
    let current = RuleRevision::from(3);
    let in_order = starting_point(&key(), stored(Some(at(10, 1)), None), at(11, 2));
    assert!(in_order.continues_in_memory(current));
    assert!(
        !in_order.continues_in_memory(RuleRevision::from(4)),
        "a publish since: events only the new rules name may lie after the cursor"
    );
    let never_evaluated = StoredRuleState {
        revision: None,
        ..stored(None, None)
    };
    let first = starting_point(&key(), never_evaluated, at(11, 2));
    assert!(
        !first.continues_in_memory(current),
        "a user's first evaluation"
    );
    let late = starting_point(&key(), stored(Some(at(10, 1)), None), at(9, 2));
    assert!(!late.continues_in_memory(current), "a rebuild");
}

fn sent(id: u128, user: Option<&str>, name: &str, minute: i64) -> NewEvent {
    serde_json::from_value(serde_json::json!({
        "event_id": uuid::Uuid::from_u128(id), "session_id": "s", "category": "fitness",
        "name": name, "user_id": user, "data": {"minute": minute},
        "timestamp": (DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(minute)).to_rfc3339(),
    }))
    .expect("a valid event")
}

#[test]
fn history_read_back_and_own_events_merge_in_event_time_order() {
    let row = |minute: i64, id: i64| RuleEventRow {
        cursor: at(minute, id),
        event_id: uuid::Uuid::from_u128(id as u128),
        category: "fitness".into(),
        name: "app_launch".into(),
        user_id: Some("u".into()),
        data: serde_json::Map::new(),
        received_at: DateTime::<Utc>::UNIX_EPOCH,
    };
    let history = [row(1, 1), row(4, 2)];
    let own_rows = [row(2, 9), row(4, 8), row(5, 7)];
    let own: Vec<Positioned<'_>> = own_rows.iter().map(Positioned::from).collect();
    let order: Vec<i64> = merged(&history, &own).iter().map(|e| e.cursor.id).collect();
    assert_eq!(order, [1, 9, 2, 8, 7], "by time, ties by row id");
}

#[test]
fn own_events_are_the_stored_copies_the_rules_name_per_user_in_event_time_order() {
    let rules = eye_rules::RuleSet::seed().expect("seed rules");
    let sent = [
        sent(1, Some("b"), "app_launch", 5),
        sent(2, Some("a"), "app_launch", 9),
        sent(3, Some("a"), "app_launch", 2),
        sent(3, Some("a"), "app_launch", 7), // the same id again: stored from its first copy
        sent(4, Some("a"), "not_a_rule_type", 3),
        sent(5, None, "app_launch", 1),
        sent(6, Some("a"), "app_launch", 4), // a duplicate of an event stored before
        sent(7, Some("a"), "not_a_rule_type", 6), // stored: this copy, of a type no rule names,
        sent(7, Some("a"), "app_launch", 8), // not this one
    ];
    let records: Vec<EventRecord<'_>> = sent.iter().map(EventRecord::unvalidated).collect();
    let stored_at = |record: usize, minute: i64, row: i64| InsertedEvent {
        event_id: sent[record].event_id,
        cursor: at(minute, row),
        record,
    };
    let inserted = [
        stored_at(0, 5, 10),
        stored_at(1, 9, 11),
        stored_at(2, 2, 12),
        stored_at(4, 3, 13),
        stored_at(5, 1, 14),
        stored_at(7, 6, 15),
    ];
    let received_at = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::nanoseconds(1_234_567_891);
    let batch = StoredBatch {
        application_id: ApplicationId::generate(),
        received_at,
        events: &records,
        refused: &[],
    };
    let own = own_events(&rules, batch, &inserted);
    let rows = |user: &str| -> Vec<(i64, i64)> {
        own[user]
            .iter()
            .map(|e| (e.cursor.id, e.event.data["minute"].as_i64().unwrap_or(-1)))
            .collect()
    };
    assert_eq!(own.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(
        rows("a"),
        [(12, 2), (11, 9)],
        "by stored position, the stored copies only"
    );
    assert_eq!(rows("b"), [(10, 5)]);
    let event = own["a"][0].event;
    assert_eq!(event.timestamp, at(2, 12).at, "the stored time");
    assert_eq!(
        event.received_at,
        stored_time(received_at),
        "microseconds, as stored"
    );
    assert_eq!(event.user_id, Some("a"));
}

#[test]
fn in_order_events_continue_from_the_cursor_and_late_ones_rebuild_from_the_latest_point_before_them()
 {
    let cases = [
        ("a new user", None, None, at(10, 1), Origin::Cursor, None),
        (
            "after the cursor",
            Some(at(10, 1)),
            Some(at(5, 1)),
            at(11, 2),
            Origin::Cursor,
            Some(at(10, 1)),
        ),
        (
            "between checkpoint and cursor",
            Some(at(10, 1)),
            Some(at(5, 1)),
            at(7, 3),
            Origin::Checkpoint,
            Some(at(5, 1)),
        ),
        (
            "before the checkpoint",
            Some(at(10, 1)),
            Some(at(5, 1)),
            at(4, 3),
            Origin::Scratch,
            None,
        ),
        (
            "before the cursor, no checkpoint",
            Some(at(10, 1)),
            None,
            at(9, 3),
            Origin::Scratch,
            None,
        ),
    ];
    for (case, cursor, checkpoint, first_new, origin, from) in cases {
        let start = starting_point(&key(), stored(cursor, checkpoint), first_new);
        assert_eq!((start.origin, start.cursor), (origin, from), "{case}");
    }
}

//! Evaluating newly stored events against the rules, per user, in event-time order, inside the unit of
//! work that stored them.
//!
//! # Protocol and why it is exactly once
//!
//! Per user, `rule_states` holds the state, a cursor (the last event evaluated into it, by `(timestamp,
//! id)`), and a checkpoint (the state after an event at least [`super::CHECKPOINT_LAG`] behind the newest).
//!
//! 1. **Every stored event is evaluated, once.** A job's events, their sessions and its users' rule
//!    outcomes commit in one transaction ([`eye_store::IngestTxn`]). An event is new exactly when this
//!    transaction inserted it; a redelivered job inserts nothing, and the evaluation of its events
//!    committed with them. A failing evaluation fails the transaction, so the job is retried (or
//!    dead-lettered whole): nothing is acknowledged with events stored but not evaluated.
//! 2. **One evaluation at a time per user.** The user's state row is locked before it is read
//!    (`FOR UPDATE` on PostgreSQL, the single writer lock on SQLite) and stays locked until commit. The
//!    events are read after the lock is held, so they include everything committed before.
//! 3. **Evaluation in event-time order.** If a new event sits after the cursor, the events after the
//!    cursor are evaluated from the stored state. If it sits before (parallel jobs committed a user's
//!    events out of order), the state is rebuilt: from the checkpoint when the event is newer than it,
//!    otherwise from the user's first event. In-order traffic never rebuilds.
//! 4. **Decisions never depend on commit order.** Absence timers fire only by the wall clock
//!    (the sweeper), once no event inside their window can still arrive; a later event arriving first
//!    cannot fire one. Rebuilds may decide an occasion again; the outbox keeps one notification per
//!    occasion key (a unique constraint), so none is sent twice.

use super::{Evaluated, RuleBook, evaluate_in_order};
use eye_domain::{ApplicationId, EventId, NewEvent};
use eye_rules::{RuleSet, UserRuleState};
use eye_store::{
    CheckpointWrite, EventCursor, IngestTxn, InsertedEvent, RuleWrite, StoreError, StoredRuleState,
    UserKey,
};
use std::collections::{BTreeMap, HashMap};

/// Feeds newly stored events to the rules (cheap to clone).
#[derive(Clone)]
pub struct RuleReactor {
    book: RuleBook,
}

impl RuleReactor {
    /// A reactor applying the published rules, at the revision each job's unit of work sees.
    pub fn new(book: RuleBook) -> Self {
        Self { book }
    }

    /// Evaluates the events of a batch that `txn` just stored (`inserted`: never duplicates), before the
    /// transaction commits. Only events with a user and of a type some rule names start an evaluation
    /// (which then covers that user's stored events of such types since the rule cursor: the others
    /// change nothing, so they are not read); a batch without any
    /// costs no query beyond reading the rules' revision, and a batch without any user, or that stored
    /// nothing new, not even that.
    #[tracing::instrument(skip_all, fields(application = %application, events = inserted.len()), err)]
    pub async fn react(
        &self,
        txn: &IngestTxn,
        application: ApplicationId,
        batch: &[NewEvent],
        inserted: &[InsertedEvent],
    ) -> Result<(), StoreError> {
        // Only events this unit stored can notify: a redelivered batch (all duplicates) costs nothing.
        if inserted.is_empty() || !batch.iter().any(|event| event.user_id.is_some()) {
            return Ok(());
        }
        let rules = self.book.rules_for(txn).await?;
        let pending = earliest_per_user(&rules, batch, inserted);
        if pending.is_empty() {
            return Ok(());
        }
        let users: Vec<String> = pending.keys().cloned().collect();
        let stored = txn.lock_rule_states(application, &users).await?;
        let starts = starting_points(application, &pending, stored);
        let from: Vec<(String, Option<EventCursor>)> = starts
            .iter()
            .map(|(key, start)| (key.user_id.clone(), start.cursor))
            .collect();
        let mut events = txn
            .rule_events_after(application, &from, &rules.event_types())
            .await?;
        let evaluated: Vec<Evaluated> = starts
            .iter()
            .map(|(key, start)| {
                let events = events.remove(&key.user_id).unwrap_or_default();
                let first_new = pending[&key.user_id];
                let from = (start.state.clone(), start.cursor);
                evaluate_in_order(&rules, from, first_new, &events)
            })
            .collect();
        let writes: Vec<RuleWrite<'_>> = starts
            .iter()
            .zip(&evaluated)
            .map(|((key, start), evaluated)| rule_write(key, start, evaluated))
            .collect();
        txn.write_rule_states(&writes).await
    }
}

/// Each user's earliest newly stored event of a type the rules concern.
fn earliest_per_user(
    rules: &RuleSet,
    batch: &[NewEvent],
    inserted: &[InsertedEvent],
) -> BTreeMap<String, EventCursor> {
    let concerned: Vec<(&str, EventId)> = batch
        .iter()
        .filter(|e| {
            let type_ = &e.event_type;
            rules.concerns(type_.category.as_str(), type_.name.as_str())
        })
        .filter_map(|e| Some((e.user_id.as_ref()?.as_str(), e.event_id)))
        .collect();
    let mut earliest: BTreeMap<String, EventCursor> = BTreeMap::new();
    // Most traffic concerns no rule: skip indexing the stored events then.
    if concerned.is_empty() {
        return earliest;
    }
    let cursors: HashMap<EventId, EventCursor> =
        inserted.iter().map(|e| (e.event_id, e.cursor)).collect();
    for (user, event_id) in concerned {
        let Some(cursor) = cursors.get(&event_id) else {
            continue;
        };
        earliest
            .entry(user.to_owned())
            .and_modify(|first| *first = (*first).min(*cursor))
            .or_insert(*cursor);
    }
    earliest
}

/// The write of one user's evaluation: its new state, and the checkpoint it passed (or the stored one, if
/// still true, or none).
fn rule_write<'a>(key: &'a UserKey, start: &Start, evaluated: &'a Evaluated) -> RuleWrite<'a> {
    let checkpoint = match (&evaluated.checkpoint, start.origin) {
        (Some(checkpoint), _) => CheckpointWrite::Set(checkpoint),
        (None, Origin::Scratch) => CheckpointWrite::Clear,
        (None, _) => CheckpointWrite::Keep,
    };
    RuleWrite {
        key,
        state: &evaluated.state,
        cursor: evaluated.cursor,
        checkpoint,
        notifications: &evaluated.outcome.notifications,
    }
}

/// Each pending user's key and starting point, in the map's (user) order.
fn starting_points(
    application: ApplicationId,
    pending: &BTreeMap<String, EventCursor>,
    mut stored: HashMap<String, StoredRuleState>,
) -> Vec<(UserKey, Start)> {
    pending
        .iter()
        .map(|(user, first_new)| {
            let key = UserKey {
                application_id: application,
                user_id: user.clone(),
            };
            let start = starting_point(&key, stored.remove(user).unwrap_or_default(), *first_new);
            (key, start)
        })
        .collect()
}

/// Where a user's evaluation starts.
#[derive(Debug, Clone, PartialEq)]
struct Start {
    state: UserRuleState,
    cursor: Option<EventCursor>,
    origin: Origin,
}

/// Which stored point an evaluation starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The state at the rule cursor: the new events all come after it.
    Cursor,
    /// The checkpoint: a new event sits between it and the cursor.
    Checkpoint,
    /// The user's first event: a new event is older than the checkpoint (or there is none).
    Scratch,
}

/// After the stored cursor when every new event is later; otherwise from the latest stored point before
/// the earliest new event (an equal position is the cursor itself, evaluated already).
fn starting_point(key: &UserKey, stored: StoredRuleState, first_new: EventCursor) -> Start {
    let Some(cursor) = stored.cursor.filter(|cursor| first_new < *cursor) else {
        return Start {
            state: stored.state,
            cursor: stored.cursor,
            origin: Origin::Cursor,
        };
    };
    match stored.checkpoint.filter(|c| c.cursor < first_new) {
        Some(checkpoint) => {
            tracing::info!(user = %key.user_id, ?cursor, "event older than the rule cursor; rebuilding from the checkpoint");
            Start {
                state: checkpoint.state,
                cursor: Some(checkpoint.cursor),
                origin: Origin::Checkpoint,
            }
        }
        None => {
            tracing::info!(user = %key.user_id, ?cursor, "event older than the rule checkpoint; rebuilding from the first event");
            Start {
                state: UserRuleState::default(),
                cursor: None,
                origin: Origin::Scratch,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeDelta, Utc};
    use eye_store::Checkpoint;

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
        }
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
}

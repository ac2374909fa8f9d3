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
//!    otherwise from the user's first event. In-order traffic never rebuilds, and reads nothing back
//!    while the rules stay those its state was evaluated with: by 1 and 2, the user's stored events after
//!    the cursor are then exactly the job's own (`Start::continues_in_memory`). A state never evaluated,
//!    or evaluated under other rules, reads the stored events after the cursor once, so a new rule sees
//!    the events after the cursor of a type only it names as history.
//! 4. **Decisions never depend on commit order.** Absence timers fire only by the wall clock
//!    (the sweeper), once no event inside their window can still arrive; a later event arriving first
//!    cannot fire one. Rebuilds may decide an occasion again; the outbox keeps one notification per
//!    occasion key (a unique constraint), so none is sent twice.

use super::{Evaluated, Positioned, PublishedRules, RuleBook, evaluate_in_order};
use eye_domain::ApplicationId;
use eye_rules::{RuleEvent, RuleSet, UserRuleState};
use eye_store::{
    CheckpointWrite, EventCursor, IngestTxn, InsertedEvent, ReadBack, RuleEventRow, RuleRevision,
    RuleWrite, StoreError, StoredBatch, StoredRuleState, UserKey, stored_time,
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

    /// Evaluates the events a unit of work just stored, before its transaction commits. Only events with
    /// a user and of a type some rule names start an evaluation; a batch without any costs no query
    /// beyond reading the rules' revision, and a batch without any user, or that stored nothing new, not
    /// even that. A user whose new events all come after the rule cursor, with a state evaluated at the
    /// current revision, is evaluated from the job's own events; the others read back their stored
    /// events but for the job's own (step 3 of the protocol).
    #[tracing::instrument(skip_all, fields(application = %batch.application_id, events = inserted.len()), err)]
    pub async fn react(
        &self,
        txn: &IngestTxn,
        batch: StoredBatch<'_>,
        inserted: &[InsertedEvent],
    ) -> Result<(), StoreError> {
        // Only events this unit stored can notify: a redelivered batch (all duplicates) costs nothing.
        if inserted.is_empty() || !batch.events.iter().any(|r| r.event.user_id.is_some()) {
            return Ok(());
        }
        let published = self.book.rules_for(txn).await?;
        let rules = published.rules.as_ref();
        let own = own_events(rules, batch, inserted);
        if own.is_empty() {
            return Ok(());
        }
        let application = batch.application_id;
        let users: Vec<String> = own.keys().cloned().collect();
        let states = txn.lock_rule_states(application, &users).await?;
        let pending = starting_points(application, &own, states);
        let mut read = read_back(txn, application, &published, &pending).await?;
        let evaluated: Vec<Evaluated> = pending
            .iter()
            .map(|user| {
                let from = (user.start.state.clone(), user.start.cursor);
                if user.start.continues_in_memory(published.revision) {
                    return evaluate_in_order(rules, from, user.first_new, user.own);
                }
                let history = read.remove(&user.key.user_id).unwrap_or_default();
                let events = merged(&history, user.own);
                evaluate_in_order(rules, from, user.first_new, &events)
            })
            .collect();
        let writes: Vec<RuleWrite<'_>> = pending
            .iter()
            .zip(&evaluated)
            .map(|(user, evaluated)| rule_write(user, evaluated, published.revision))
            .collect();
        txn.write_rule_states(&writes).await
    }
}

/// The stored events of the users that cannot continue from the job's own events, after their starting
/// point, but for the job's own (held already); no query when every user can continue.
async fn read_back(
    txn: &IngestTxn,
    application: ApplicationId,
    published: &PublishedRules,
    pending: &[Pending<'_, '_>],
) -> Result<HashMap<String, Vec<RuleEventRow>>, StoreError> {
    let from: Vec<ReadBack> = pending
        .iter()
        .filter(|user| !user.start.continues_in_memory(published.revision))
        .map(|user| ReadBack {
            user_id: user.key.user_id.clone(),
            after: user.start.cursor,
            known: user.own.iter().map(|e| e.cursor.id).collect(),
        })
        .collect();
    if from.is_empty() {
        return Ok(HashMap::new());
    }
    let types = published.rules.event_types();
    txn.rule_events_after(application, &from, &types).await
}

/// A user's stored history read back and the job's own events, in event-time order. The history holds
/// none of the job's own (they were left out of the read), and every one of those comes after the
/// starting point (the earliest of them decided it).
fn merged<'a>(history: &'a [RuleEventRow], own: &[Positioned<'a>]) -> Vec<Positioned<'a>> {
    let mut events: Vec<Positioned<'a>> = history.iter().map(Positioned::from).collect();
    events.extend_from_slice(own);
    events.sort_by_key(|event| event.cursor);
    events
}

/// Each user's newly stored events of the types the rules concern, in event-time order, as stored: the
/// copy the store kept (a batch may hold several of one id), the position it gave it, the times as the
/// database keeps them.
fn own_events<'a>(
    rules: &RuleSet,
    batch: StoredBatch<'a>,
    inserted: &[InsertedEvent],
) -> BTreeMap<String, Vec<Positioned<'a>>> {
    let mut own: BTreeMap<String, Vec<Positioned<'a>>> = BTreeMap::new();
    let received_at = stored_time(batch.received_at);
    for stored in inserted {
        let Some(event) = batch.events.get(stored.record).map(|record| record.event) else {
            continue;
        };
        let Some(user) = event.user_id.as_ref().map(|user| user.as_str()) else {
            continue;
        };
        let (category, name) = (&event.event_type.category, &event.event_type.name);
        if !rules.concerns(category.as_str(), name.as_str()) {
            continue;
        }
        let positioned = Positioned {
            cursor: stored.cursor,
            event: RuleEvent {
                event_id: event.event_id.as_uuid(),
                category: category.as_str(),
                name: name.as_str(),
                user_id: Some(user),
                data: event.data.fields(),
                timestamp: stored.cursor.at,
                received_at,
            },
        };
        own.entry(user.to_owned()).or_default().push(positioned);
    }
    for events in own.values_mut() {
        events.sort_by_key(|event| event.cursor);
    }
    own
}

/// The write of one user's evaluation: its new state, and the checkpoint it passed (or the stored one, if
/// still true, or none).
fn rule_write<'a>(
    user: &'a Pending<'_, '_>,
    evaluated: &'a Evaluated,
    revision: RuleRevision,
) -> RuleWrite<'a> {
    let checkpoint = match (&evaluated.checkpoint, user.start.origin) {
        (Some(checkpoint), _) => CheckpointWrite::Set(checkpoint),
        (None, Origin::Scratch) => CheckpointWrite::Clear,
        (None, _) => CheckpointWrite::Keep,
    };
    RuleWrite {
        key: &user.key,
        state: &evaluated.state,
        cursor: evaluated.cursor,
        checkpoint,
        notifications: &evaluated.outcome.notifications,
        revision,
    }
}

/// A user the job evaluates: where the evaluation starts, and the job's own events of theirs.
struct Pending<'o, 'e> {
    key: UserKey,
    start: Start,
    /// The job's own events of the user, in event-time order (never empty).
    own: &'o [Positioned<'e>],
    /// The earliest of them.
    first_new: EventCursor,
}

/// Each user with own events, with their starting point, in the map's (user) order.
fn starting_points<'o, 'e>(
    application: ApplicationId,
    own: &'o BTreeMap<String, Vec<Positioned<'e>>>,
    mut stored: HashMap<String, StoredRuleState>,
) -> Vec<Pending<'o, 'e>> {
    own.iter()
        .filter_map(|(user, events)| {
            let first_new = events.first()?.cursor;
            let key = UserKey {
                application_id: application,
                user_id: user.clone(),
            };
            let start = starting_point(&key, stored.remove(user).unwrap_or_default(), first_new);
            Some(Pending {
                key,
                start,
                own: events,
                first_new,
            })
        })
        .collect()
}

/// Where a user's evaluation starts.
#[derive(Debug, Clone, PartialEq)]
struct Start {
    state: UserRuleState,
    cursor: Option<EventCursor>,
    origin: Origin,
    /// The rules' revision the stored state was evaluated with.
    evaluated_with: Option<RuleRevision>,
}

impl Start {
    /// Whether the user's events after this start are exactly the job's own: the new events all come
    /// after the cursor, and the stored state was evaluated with the rules of `current`. Every job that
    /// stores a user's events of a type these rules name evaluates them under the user's lock before it
    /// commits (step 1), so a stored event after the cursor is one this job stored. Under other rules
    /// (a publish or delete since, or a state never evaluated), events of a type only the new rules name
    /// may lie after the cursor unevaluated, and a rebuild starts before the cursor: both read back.
    fn continues_in_memory(&self, current: RuleRevision) -> bool {
        self.origin == Origin::Cursor && self.evaluated_with == Some(current)
    }
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
    let evaluated_with = stored.revision;
    let Some(cursor) = stored.cursor.filter(|cursor| first_new < *cursor) else {
        return Start {
            state: stored.state,
            cursor: stored.cursor,
            origin: Origin::Cursor,
            evaluated_with,
        };
    };
    match stored.checkpoint.filter(|c| c.cursor < first_new) {
        Some(checkpoint) => {
            tracing::info!(user = %key.user_id, ?cursor, "event older than the rule cursor; rebuilding from the checkpoint");
            Start {
                state: checkpoint.state,
                cursor: Some(checkpoint.cursor),
                origin: Origin::Checkpoint,
                evaluated_with,
            }
        }
        None => {
            tracing::info!(user = %key.user_id, ?cursor, "event older than the rule checkpoint; rebuilding from the first event");
            Start {
                state: UserRuleState::default(),
                cursor: None,
                origin: Origin::Scratch,
                evaluated_with,
            }
        }
    }
}

#[cfg(test)]
mod tests;

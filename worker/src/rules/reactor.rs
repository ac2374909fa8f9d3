//! Evaluating newly stored events against the rules, per user, in event-time order.

use super::{Evaluated, evaluate_in_order};
use eye_domain::{ApplicationId, EventId, NewEvent};
use eye_rules::{RuleSet, UserRuleState};
use eye_store::{
    EventCursor, InsertedEvent, RuleUpdate, Store, StoreError, StoredRuleState, UserKey,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How often a user's state is re-read after losing a write race before giving up (the job is retried).
const MAX_RACES: usize = 16;

/// Feeds newly stored events to the rules (cheap to clone).
///
/// Per user, it evaluates every stored event after the state's cursor, in event-time order: the new ones
/// and any an interrupted worker stored without evaluating. Concurrent jobs can store a user's events out
/// of order; an event older than the cursor makes the reactor rebuild that user's state from their whole
/// history. Rebuilds cost one read of the history and are idempotent: the outbox keeps one notification
/// per occasion, so an occasion decided again is not sent again.
#[derive(Clone)]
pub struct RuleReactor {
    store: Store,
    rules: Arc<RuleSet>,
}

impl RuleReactor {
    /// A reactor applying `rules` to events in `store`.
    pub fn new(store: Store, rules: Arc<RuleSet>) -> Self {
        Self { store, rules }
    }

    /// Evaluates the events of a batch that were just stored (`inserted`: never duplicates). Only events
    /// with a user and of a type some rule names start an evaluation (which then covers every stored event
    /// of that user since the rule cursor); a batch without any costs no query.
    #[tracing::instrument(skip_all, fields(application = %application, events = inserted.len()), err)]
    pub async fn react(
        &self,
        application: ApplicationId,
        batch: &[NewEvent],
        inserted: &[InsertedEvent],
    ) -> Result<(), StoreError> {
        if self.rules.rules().is_empty() {
            return Ok(());
        }
        let mut pending = self.earliest_per_user(batch, inserted);
        if pending.is_empty() {
            return Ok(());
        }
        for _ in 0..MAX_RACES {
            pending = self.react_users(application, pending).await?;
            if pending.is_empty() {
                return Ok(());
            }
            tracing::debug!(
                users = pending.len(),
                "rule states changed meanwhile; evaluating again"
            );
        }
        Err(StoreError::Database(eye_store::DbErr::Custom(format!(
            "the rule states of {} users kept changing",
            pending.len()
        ))))
    }

    /// Evaluates the users' new events and writes their states: one read of the states, one of the events,
    /// one transaction for the writes. Answers the users whose state another worker wrote meanwhile. The
    /// writes follow the map's user order, so concurrent workers lock rows in one order: no deadlocks.
    async fn react_users(
        &self,
        application: ApplicationId,
        pending: BTreeMap<String, EventCursor>,
    ) -> Result<BTreeMap<String, EventCursor>, StoreError> {
        let users: Vec<String> = pending.keys().cloned().collect();
        let stored = self.store.rule_states(application, &users).await?;
        let starts = starting_points(application, &pending, stored);
        let from: Vec<(String, Option<EventCursor>)> = starts
            .iter()
            .map(|(key, start)| (key.user_id.clone(), start.cursor))
            .collect();
        let mut events = self.store.users_events_after(application, &from).await?;
        let evaluated: Vec<Evaluated> = starts
            .iter()
            .map(|(key, start)| {
                let events = events.remove(&key.user_id).unwrap_or_default();
                evaluate_in_order(&self.rules, start.state.clone(), start.cursor, &events)
            })
            .collect();
        let updates: Vec<RuleUpdate<'_>> = starts
            .iter()
            .zip(&evaluated)
            .map(|((key, start), evaluated)| RuleUpdate {
                key,
                expected: start.version,
                state: &evaluated.state,
                cursor: evaluated.cursor,
                notifications: &evaluated.outcome.notifications,
            })
            .collect();
        let written = self.store.save_rule_outcomes(&updates).await?;
        Ok(pending
            .into_iter()
            .zip(written)
            .filter_map(|(user, written)| (!written).then_some(user))
            .collect())
    }

    /// Each user's earliest newly stored event of a type the rules concern.
    fn earliest_per_user(
        &self,
        batch: &[NewEvent],
        inserted: &[InsertedEvent],
    ) -> BTreeMap<String, EventCursor> {
        let concerned: Vec<(&str, EventId)> = batch
            .iter()
            .filter(|e| {
                let type_ = &e.event_type;
                self.rules
                    .concerns(type_.category.as_str(), type_.name.as_str())
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

/// Where a user's evaluation starts: after the stored cursor, or from scratch; and the stored version the
/// write must still find.
struct Start {
    state: UserRuleState,
    cursor: Option<EventCursor>,
    version: Option<i64>,
}

/// From the stored state and cursor; from scratch when an event older than the cursor arrived (an equal
/// one is the cursor itself, evaluated already).
fn starting_point(key: &UserKey, stored: StoredRuleState, first_new: EventCursor) -> Start {
    match stored.cursor {
        Some(cursor) if first_new < cursor => {
            tracing::info!(user = %key.user_id, "event older than the rule cursor; rebuilding");
            Start {
                state: UserRuleState::default(),
                cursor: None,
                version: stored.version,
            }
        }
        cursor => Start {
            state: stored.state,
            cursor,
            version: stored.version,
        },
    }
}

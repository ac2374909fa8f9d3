//! Evaluating newly stored events against the rules, per user, in event-time order.

use super::{Evaluated, evaluate_in_order};
use eye_domain::{ApplicationId, EventId, NewEvent};
use eye_rules::RuleSet;
use eye_store::{EventCursor, RuleUpdate, Store, StoreError, StoredRuleState, UserKey};
use std::collections::{BTreeMap, HashSet};
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
        inserted: &[EventId],
    ) -> Result<(), StoreError> {
        let inserted: HashSet<&EventId> = inserted.iter().collect();
        let candidates: Vec<EventId> = batch
            .iter()
            .filter(|e| e.user_id.is_some() && inserted.contains(&e.event_id))
            .filter(|e| {
                self.rules
                    .concerns(e.event_type.category.as_str(), e.event_type.name.as_str())
            })
            .map(|e| e.event_id)
            .collect();
        if candidates.is_empty() || self.rules.rules().is_empty() {
            return Ok(());
        }
        let events = self
            .store
            .events_for_rules(application, &candidates)
            .await?;
        let mut earliest: BTreeMap<String, EventCursor> = BTreeMap::new();
        for event in events {
            let Some(user_id) = event.user_id else {
                continue;
            };
            let first = earliest.entry(user_id).or_insert(event.cursor);
            *first = (*first).min(event.cursor);
        }
        for (user_id, first_new) in earliest {
            let key = UserKey {
                application_id: application,
                user_id,
            };
            self.react_user(&key, first_new).await?;
        }
        Ok(())
    }

    async fn react_user(&self, key: &UserKey, first_new: EventCursor) -> Result<(), StoreError> {
        for _ in 0..MAX_RACES {
            let stored = self.store.rule_state(key).await?;
            let evaluated = self.catch_up(key, stored.clone(), first_new).await?;
            let update = RuleUpdate {
                key,
                expected: stored.version,
                state: &evaluated.state,
                cursor: evaluated.cursor,
                notifications: &evaluated.outcome.notifications,
            };
            if self.store.save_rule_outcome(update).await? {
                return Ok(());
            }
            tracing::debug!(user = %key.user_id, "rule state changed meanwhile; evaluating again");
        }
        Err(StoreError::Database(eye_store::DbErr::Custom(format!(
            "rule state of {} kept changing",
            key.user_id
        ))))
    }

    /// The state after every stored event of the user: from the cursor on, or rebuilt from the start when
    /// an event older than the cursor arrived.
    async fn catch_up(
        &self,
        key: &UserKey,
        stored: StoredRuleState,
        first_new: EventCursor,
    ) -> Result<Evaluated, StoreError> {
        let (state, cursor) = match stored.cursor {
            // Equal: that event is the cursor, evaluated already.
            Some(cursor) if first_new < cursor => {
                tracing::info!(user = %key.user_id, "event older than the rule cursor; rebuilding");
                (Default::default(), None)
            }
            cursor => (stored.state, cursor),
        };
        let events = self.store.user_events_after(key, cursor).await?;
        Ok(evaluate_in_order(&self.rules, state, cursor, &events))
    }
}

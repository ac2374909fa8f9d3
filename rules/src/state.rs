//! What the engine remembers between events, and what one evaluation asks the caller to change.
//!
//! # Contract for the persistence layer
//!
//! * **One user at a time.** Evaluate a user's events one by one, in timestamp order, each against the
//!   state left by the previous one. With several workers, hold a per-user lock (a row lock on the
//!   user's state, or a version column checked on write) from reading the state to committing the outcome.
//! * **Apply the whole [`Outcome`] atomically**: its [`StateChange`]s and the insertion of its
//!   [`Notification`]s in one transaction. No two changes of one outcome touch the same pair or timer,
//!   so their order does not matter; [`UserRuleState::apply`] shows the meaning of each.
//! * **Occasions are unique.** Store notifications with a UNIQUE constraint on [`OccasionKey`] and ignore
//!   conflicts: a duplicated or replayed event gives the same key, so a user is notified once per occasion.
//!   Dropping duplicate events (same event id) before evaluation is still recommended; it saves work.
//! * **Timers fire only by the wall clock.** No event fires a timer, not even one stamped past its
//!   deadline: with parallel workers a user's later events may be evaluated before an earlier one is
//!   stored, and a start stamped in time must still disarm the timer when it arrives. So an absence is
//!   decided only once no event that could fall inside the window can still arrive: at
//!   [`crate::due_at`], `max(deadline, trigger received_at) + lateness`. Index [`AbsenceTimer`]s by it;
//!   periodically, under the same per-user lock, re-read the due timers and apply
//!   [`crate::fire_due_timers`]'s outcome. Choose the lateness longer than an accepted event can take to
//!   be stored and evaluated.
//! * **Several timers of one rule may wait.** A trigger is covered by a timer of its rule only while
//!   that timer's window is still open at the trigger's timestamp; a later trigger arms its own, so a
//!   replay of old data nudges every occasion once.
//! * State is plain serde data (JSON works); it may be stored as one document per user or as rows keyed
//!   by [`PairKey`] and [`OccasionKey`].

use crate::names::{OccasionKey, RuleName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Everything the rules remember about one user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserRuleState {
    /// Duration rules' start events still waiting for their finish (or cancel).
    #[serde(default)]
    pub pairs: Vec<OpenPair>,
    /// Absence rules' triggers still waiting for an expected event or their deadline.
    #[serde(default)]
    pub timers: Vec<AbsenceTimer>,
    /// Count rules' events counted so far, one window per rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<CountWindow>,
}

/// A count rule's events within its window that have not notified yet, and those that last notified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountWindow {
    /// The count rule; at most one window per rule and user.
    pub rule: RuleName,
    /// The counted events, oldest first, all within the rule's window of the newest.
    pub counted: Vec<Counted>,
    /// The events of the last notification: spent, so a duplicate of one never counts again.
    #[serde(default)]
    pub spent: Vec<Uuid>,
}

/// One event a count rule counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counted {
    /// The event.
    pub event_id: Uuid,
    /// Its timestamp.
    pub at: DateTime<Utc>,
}

/// Identifies an open pair within one user's state: the rule and the value of its pairing data key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PairKey {
    /// The duration rule.
    pub rule: RuleName,
    /// The start event's value of the rule's pairing key (e.g. the `training_program_id`), as text.
    pub value: String,
}

/// A start event waiting for its finish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenPair {
    /// Rule and pairing value; at most one open pair per key and user.
    pub key: PairKey,
    /// The user.
    pub user_id: String,
    /// The start event.
    pub start_event_id: Uuid,
    /// The start event's timestamp.
    pub started_at: DateTime<Utc>,
    /// The start event's data fields that the rule's message reads (e.g. the program title).
    pub data: Map<String, Value>,
}

/// An absence rule waiting for one of its expected events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbsenceTimer {
    /// The occasion this timer notifies about; also the timer's identity.
    pub occasion: OccasionKey,
    /// The absence rule.
    pub rule: RuleName,
    /// The user.
    pub user_id: String,
    /// The trigger event.
    pub trigger_event_id: Uuid,
    /// Trigger timestamp plus the rule's window: an expected event stamped later no longer counts.
    pub deadline: DateTime<Utc>,
    /// When the trigger event was received (see [`crate::due_at`]).
    pub trigger_received_at: DateTime<Utc>,
    /// The notification text, rendered when the timer was armed.
    pub message: String,
}

/// One change to a user's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum StateChange {
    /// Insert the pair, replacing any with the same [`PairKey`].
    OpenPair(OpenPair),
    /// Delete the pair with this key (if any).
    ClosePair(PairKey),
    /// Insert the timer, replacing any with the same occasion.
    ArmTimer(AbsenceTimer),
    /// Delete the timer with this occasion (if any).
    DisarmTimer(OccasionKey),
    /// Replace the count rule's window.
    SetCount(CountWindow),
}

/// A message to send to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The rule that decided it.
    pub rule: RuleName,
    /// The recipient.
    pub user_id: String,
    /// Unique per occasion: store it under a UNIQUE constraint.
    pub occasion: OccasionKey,
    /// The rendered text.
    pub message: String,
    /// The event time at which the occasion arose (finish timestamp, or absence deadline).
    pub triggered_at: DateTime<Utc>,
}

/// What one evaluation decided: state changes to apply and notifications to send, together.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Changes to the user's state, to apply in the same transaction as the notifications.
    pub changes: Vec<StateChange>,
    /// Notifications to record (and then send).
    pub notifications: Vec<Notification>,
}

impl Outcome {
    /// Whether nothing changes and nothing is sent.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.notifications.is_empty()
    }
}

impl UserRuleState {
    /// Applies changes in memory, exactly as the persistence layer must apply them in storage.
    pub fn apply(&mut self, changes: &[StateChange]) {
        for change in changes {
            match change {
                StateChange::OpenPair(pair) => {
                    self.pairs.retain(|p| p.key != pair.key);
                    self.pairs.push(pair.clone());
                }
                StateChange::ClosePair(key) => self.pairs.retain(|p| &p.key != key),
                StateChange::ArmTimer(timer) => {
                    self.timers.retain(|t| t.occasion != timer.occasion);
                    self.timers.push(timer.clone());
                }
                StateChange::DisarmTimer(key) => self.timers.retain(|t| &t.occasion != key),
                StateChange::SetCount(window) => {
                    self.counts.retain(|w| w.rule != window.rule);
                    self.counts.push(window.clone());
                }
            }
        }
    }

    /// The count rule's window, if it counted anything.
    pub fn count(&self, rule: &RuleName) -> Option<&CountWindow> {
        self.counts.iter().find(|w| &w.rule == rule)
    }

    /// The open pair with this key, if any.
    pub fn pair(&self, key: &PairKey) -> Option<&OpenPair> {
        self.pairs.iter().find(|p| &p.key == key)
    }
}

//! Identifiers the engine hands out: rule names, event kinds and occasion keys.

use crate::event::RuleEvent;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Why a rule name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule name {0:?} must be 1 to 64 characters of a-z, 0-9 and _")]
pub struct RuleNameError(pub String);

/// A rule's name, e.g. `daily_training_dose`: 1 to 64 characters of `a-z`, `0-9` and `_`.
///
/// The restricted alphabet keeps [`OccasionKey`]s unambiguous (a name never contains `:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RuleName(String);

impl RuleName {
    /// Parses a rule name, refusing anything outside `[a-z0-9_]{1,64}`.
    pub fn parse(value: impl Into<String>) -> Result<Self, RuleNameError> {
        let value = value.into();
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        if value.is_empty() || value.len() > 64 || !value.chars().all(allowed) {
            return Err(RuleNameError(value));
        }
        Ok(Self(value))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RuleName {
    type Error = RuleNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<RuleName> for String {
    fn from(name: RuleName) -> Self {
        name.0
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event type a rule listens for: category and name, both non-empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKind {
    category: String,
    name: String,
}

impl EventKind {
    /// Builds a kind; `None` when either part is empty.
    pub fn new(category: &str, name: &str) -> Option<Self> {
        let non_empty = |s: &str| !s.trim().is_empty();
        (non_empty(category) && non_empty(name)).then(|| Self {
            category: category.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The category.
    pub fn category(&self) -> &str {
        &self.category
    }

    /// The name within the category.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the event is of this kind.
    pub fn matches(&self, event: &RuleEvent<'_>) -> bool {
        self.is(event.category, event.name)
    }

    /// Whether this kind is the type `category` / `name`.
    pub fn is(&self, category: &str, name: &str) -> bool {
        self.category == category && self.name == name
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}", self.category, self.name)
    }
}

/// The identity of one notification occasion: `rule:user_id:event_id`.
///
/// The event is the one that decides the occasion (a duration rule's finish event, an absence rule's
/// trigger event), so a duplicated or replayed event yields the same key. The persistence layer puts a
/// UNIQUE constraint on it and ignores conflicts, which makes sending at most once per occasion.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OccasionKey(String);

impl OccasionKey {
    /// The key for `rule` about `user_id`, decided by the event `event_id`.
    pub fn new(rule: &RuleName, user_id: &str, event_id: Uuid) -> Self {
        Self(format!("{rule}:{user_id}:{event_id}"))
    }

    /// The key as text (what the UNIQUE column stores).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OccasionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_accept_only_lowercase_digits_and_underscores() {
        let cases = [
            ("daily_training_dose", true),
            ("rule2", true),
            ("", false),
            ("Daily", false),
            ("a:b", false),
            ("with space", false),
            (&"x".repeat(65), false),
        ];
        for (input, ok) in cases {
            assert_eq!(RuleName::parse(input).is_ok(), ok, "{input:?}");
        }
    }

    #[test]
    fn an_occasion_key_names_rule_user_and_event() {
        let rule = RuleName::parse("nudge").expect("valid name");
        let key = OccasionKey::new(&rule, "foo2", Uuid::nil());
        assert_eq!(
            key.as_str(),
            "nudge:foo2:00000000-0000-0000-0000-000000000000"
        );
    }

    #[test]
    fn an_event_kind_needs_a_category_and_a_name() {
        assert!(EventKind::new("fitness", "app_launch").is_some());
        assert!(EventKind::new("", "app_launch").is_none());
        assert!(EventKind::new("fitness", " ").is_none());
    }
}

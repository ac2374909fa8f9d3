//! The identity of an event type: its category and name.

use std::fmt;

/// Identifies an event type, e.g. `page interaction` / `pageview`; schemas are registered per key.
///
/// Plain strings: the domain crate validates category and name before they reach this crate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventTypeKey {
    category: String,
    name: String,
}

impl EventTypeKey {
    /// The key of the event type `name` in `category`.
    pub fn new(category: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            category: category.into(),
            name: name.into(),
        }
    }

    /// The category, e.g. `page interaction`.
    pub fn category(&self) -> &str {
        &self.category
    }

    /// The name within the category, e.g. `pageview`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Shown as `category / name`, e.g. `page interaction / pageview`.
impl fmt::Display for EventTypeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}", self.category, self.name)
    }
}

//! The rules' wire types.

use crate::api::params::{Documentation, Documented, storable_object};
use chrono::{DateTime, Utc};
use eye_store::StoredRule;
use poem_openapi::Object;
use poem_openapi::registry::MetaSchema;
use serde_json::{Value, json};

/// A rule object: the fields of one `[[rule]]` table of `rules/rules.toml`, as JSON.
pub struct RuleObject;

impl Documentation for RuleObject {
    fn schema() -> MetaSchema {
        MetaSchema {
            description: Some(
                "A rule: `kind` (`duration`, `absence` or `count`) and that kind's fields, as in \
                 `rules/rules.toml`.",
            ),
            example: Some(count_rule_example()),
            ..MetaSchema::new("object")
        }
    }

    fn check(value: &Value) -> Result<(), String> {
        storable_object(value)
    }
}

/// The body of `PUT /v1/admin/rules/{name}`.
pub type RuleIn = Documented<RuleObject>;

/// "Five workouts in seven days": the `count` kind.
pub(crate) fn count_rule_example() -> Value {
    json!({
        "kind": "count",
        "category": "fitness",
        "event": "training_program_finished",
        "at_least": 5,
        "within": "7 days",
        "message": "{count} workouts this week, well done!"
    })
}

/// What a publish stored.
#[derive(Debug, Object)]
pub struct RulePublishedOut {
    /// The rule's name.
    pub name: String,
    /// The version now current.
    pub version: u32,
}

/// A rule at its current version.
#[derive(Debug, Object)]
pub struct RuleOut {
    /// The rule's name.
    pub name: String,
    /// The current version.
    pub version: u32,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// The rule object (the fields of a `[[rule]]` table, without `name`).
    pub rule: Value,
}

impl From<StoredRule> for RuleOut {
    fn from(stored: StoredRule) -> Self {
        Self {
            name: stored.name,
            version: stored.version,
            published_at: stored.published_at,
            rule: Value::Object(stored.definition),
        }
    }
}

/// The live rules.
#[derive(Debug, Object)]
pub struct RuleList {
    /// By name.
    pub rules: Vec<RuleOut>,
}

/// One version of a rule.
#[derive(Debug, Object)]
pub struct RuleVersionOut {
    /// The version.
    pub version: u32,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// When the rule was deleted, if it was.
    #[oai(nullable)]
    pub deleted_at: Option<DateTime<Utc>>,
    /// The rule object of this version.
    pub rule: Value,
}

/// A rule with all its versions.
#[derive(Debug, Object)]
pub struct RuleDetail {
    /// The rule's name.
    pub name: String,
    /// Whether it is live (published and not deleted since).
    pub live: bool,
    /// The newest version.
    pub version: u32,
    /// The newest version's rule object.
    pub rule: Value,
    /// Every version, newest first.
    pub versions: Vec<RuleVersionOut>,
}

impl RuleDetail {
    /// The detail of a rule's versions (newest first); `None` when there are none.
    pub fn from_versions(versions: Vec<StoredRule>) -> Option<Self> {
        let newest = versions.first()?;
        Some(Self {
            name: newest.name.clone(),
            live: newest.deleted_at.is_none(),
            version: newest.version,
            rule: Value::Object(newest.definition.clone()),
            versions: versions
                .into_iter()
                .map(|v| RuleVersionOut {
                    version: v.version,
                    published_at: v.published_at,
                    deleted_at: v.deleted_at,
                    rule: Value::Object(v.definition),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_body_is_an_object_without_nul_characters() {
        assert!(RuleObject::check(&count_rule_example()).is_ok());
        assert!(RuleObject::check(&json!({"kind": "count", "message": "a\u{0}b"})).is_err());
        assert!(RuleObject::check(&json!({"k\u{0}": 1})).is_err());
        assert!(RuleObject::check(&json!(["kind"])).is_err());
    }
}

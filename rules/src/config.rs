//! Loading rules from TOML: each `[[rule]]` table is a rule object ([`crate::parse_rule`]).
//!
//! The file format is documented in `rules.toml` beside this crate's `Cargo.toml`.

use crate::definition::{RuleError, parse_rule};
use crate::names::RuleName;
use crate::rule_set::{Rule, RuleSet};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The seed rules (`rules.toml`), embedded as the default configuration.
pub const DEFAULT_RULES_TOML: &str = include_str!("../rules.toml");

/// Why a rules file was refused; every variant names the rule and field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML.
    #[error("rules file: {0}")]
    Syntax(#[from] toml::de::Error),
    /// Something beside `[[rule]]` tables, or a `rule` that is not a table.
    #[error("rules file: {0}")]
    Shape(String),
    /// Two rules with one name.
    #[error("rule `{0}` is defined more than once")]
    DuplicateName(RuleName),
    /// A rule with a field at fault.
    #[error(transparent)]
    Rule(#[from] RuleError),
}

/// One rule of a file: its name, its object (as the API takes it), and its checked form.
#[derive(Debug, Clone)]
pub struct Definition {
    /// The rule's name.
    pub name: RuleName,
    /// The rule object, without its `name`.
    pub body: Map<String, Value>,
    /// The checked rule.
    pub rule: Rule,
}

/// Parses and checks a rules file's content into its rule objects, in file order.
pub fn definitions_from_toml(text: &str) -> Result<Vec<Definition>, ConfigError> {
    let mut file: toml::Table = toml::from_str(text)?;
    let tables = match file.remove("rule") {
        None => Vec::new(),
        Some(toml::Value::Array(tables)) => tables,
        Some(_) => return Err(ConfigError::Shape("`rule` must be [[rule]] tables".into())),
    };
    if let Some(other) = file.keys().next() {
        return Err(ConfigError::Shape(format!(
            "unknown key `{other}`: only [[rule]] tables"
        )));
    }
    let mut names = BTreeSet::new();
    let mut definitions = Vec::with_capacity(tables.len());
    for (index, table) in tables.into_iter().enumerate() {
        let Ok(Value::Object(mut body)) = serde_json::to_value(table) else {
            return Err(ConfigError::Shape(format!(
                "rule #{} is not a table",
                index + 1
            )));
        };
        let Some(Value::String(name)) = body.remove("name") else {
            let rule = format!("#{}", index + 1);
            let problem = crate::Problem::Missing;
            let field = "name".to_owned();
            return Err(RuleError {
                rule,
                field,
                problem,
            }
            .into());
        };
        let rule = parse_rule(&name, &body)?;
        if !names.insert(rule.name().clone()) {
            return Err(ConfigError::DuplicateName(rule.name().clone()));
        }
        definitions.push(Definition {
            name: rule.name().clone(),
            body,
            rule,
        });
    }
    Ok(definitions)
}

impl RuleSet {
    /// Parses and checks a rules file's content.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let rules = definitions_from_toml(text)?.into_iter().map(|d| d.rule);
        Ok(Self::new(rules.collect()))
    }

    /// The seed rules embedded from `rules.toml` ([`DEFAULT_RULES_TOML`]).
    pub fn seed() -> Result<Self, ConfigError> {
        Self::from_toml_str(DEFAULT_RULES_TOML)
    }

    /// A set of checked rules; refuses two with one name.
    pub fn from_rules(rules: Vec<Rule>) -> Result<Self, ConfigError> {
        let mut names = BTreeSet::new();
        if let Some(twice) = rules.iter().find(|rule| !names.insert(rule.name())) {
            return Err(ConfigError::DuplicateName(twice.name().clone()));
        }
        Ok(Self::new(rules))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DURATION: &str = r#"
        [[rule]]
        name = "long"
        kind = "duration"
        category = "fitness"
        start = "started"
        finish = "finished"
        pair_on = "id"
        longer_than = "30m"
        message = "{minutes} minutes"
    "#;

    const ABSENCE: &str = r#"
        [[rule]]
        name = "nudge"
        kind = "absence"
        category = "fitness"
        trigger = "launch"
        expected = ["started"]
        within = "10m"
        message = "go"
    "#;

    const COUNT: &str = r#"
        [[rule]]
        name = "five"
        kind = "count"
        category = "fitness"
        event = "workout"
        at_least = 5
        within = "7 days"
        message = "{count} workouts"
    "#;

    fn error(text: &str) -> String {
        RuleSet::from_toml_str(text)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn the_seed_rules_load() {
        let rules = RuleSet::seed().expect("seed rules are valid");
        let names: Vec<_> = rules.rules().iter().map(|r| r.name().as_str()).collect();
        assert_eq!(names, ["daily_training_dose", "start_training_nudge"]);
    }

    #[test]
    fn a_new_rule_of_any_kind_loads_without_code_changes() {
        let rules = RuleSet::from_toml_str(&format!("{DURATION}{ABSENCE}{COUNT}")).expect("valid");
        assert_eq!(rules.rules().len(), 3);
        assert!(
            RuleSet::from_toml_str("")
                .expect("no rules is valid")
                .rules()
                .is_empty()
        );
    }

    #[test]
    fn invalid_rules_are_refused_with_a_message_naming_the_rule_and_field() {
        let cases = [
            (
                DURATION.replace("\"duration\"", "\"streak\""),
                "rule `long`: `kind` must be \"duration\", \"absence\" or \"count\"",
            ),
            (
                DURATION.replace("\"30m\"", "\"half an hour\""),
                "rule `long`: `longer_than` = \"half an hour\" is not a duration",
            ),
            (
                DURATION.replace("\"30m\"", "\"0s\""),
                "`longer_than` must be more than zero",
            ),
            (
                DURATION.replace("{minutes}", "{hours}"),
                "rule `long`: `message` is not a valid template: unknown placeholder `{hours}`",
            ),
            (
                ABSENCE.replace("\"go\"", "\"{minutes}\""),
                "unknown placeholder `{minutes}`",
            ),
            (
                ABSENCE.replace("\"10m\"", "\"ten\""),
                "`within` = \"ten\" is not a duration",
            ),
            (
                ABSENCE.replace("[\"started\"]", "[]"),
                "rule `nudge`: `expected` must not be empty",
            ),
            (
                ABSENCE.replace("[\"started\"]", "[\"launch\"]"),
                "rule `nudge`: `expected` names event `launch`, which appears in more than one role",
            ),
            (
                DURATION.replace("\"finished\"", "\"started\""),
                "`finish` names event `started`",
            ),
            (
                DURATION.replace("\"fitness\"", "\"\""),
                "rule `long`: `category` must not be empty",
            ),
            (
                DURATION.replace("\"id\"", "\" \""),
                "`pair_on` must not be empty",
            ),
            (
                DURATION.replace("\"long\"", "\"Long Rule\""),
                "rule name \"Long Rule\"",
            ),
            (
                DURATION.replace("pair_on", "pair_by"),
                "rule `long`: `pair_by` is not a field of a `duration` rule",
            ),
            (DURATION.replace("message = ", "#"), "`message` is required"),
            (
                COUNT.replace("5", "0"),
                "`at_least` must be a whole number from 1 to 1000",
            ),
            (
                COUNT.replace("5", "\"5\""),
                "`at_least` must be a whole number",
            ),
            (
                COUNT.replace("event =", "events ="),
                "`events` is not a field of a `count` rule",
            ),
            (
                COUNT.replace("{count}", "{minutes}"),
                "unknown placeholder `{minutes}`",
            ),
            (
                format!("{DURATION}{DURATION}"),
                "rule `long` is defined more than once",
            ),
            ("title = \"x\"".into(), "unknown key `title`"),
        ];
        for (text, expected) in cases {
            let message = error(&text);
            assert!(
                message.contains(expected),
                "expected {expected:?} in {message:?}"
            );
        }
    }

    #[test]
    fn a_rule_object_is_checked_the_same_from_json_and_names_its_field() {
        let body = serde_json::json!({
            "kind": "count", "category": "billing", "event": "payment_failed",
            "data_equals": {"reason": "declined"}, "at_least": 3, "within": "1h",
            "message": "{count} failed payments"
        });
        let body = body.as_object().expect("an object");
        assert!(crate::parse_rule("failed_payments", body).is_ok());
        let cases = [
            ("within", serde_json::json!(3600), "within"),
            ("data_equals", serde_json::json!("declined"), "data_equals"),
            ("name", serde_json::json!("other"), "name"),
            ("kind", serde_json::json!(null), "kind"),
        ];
        for (field, value, named) in cases {
            let mut wrong = body.clone();
            wrong.insert(field.into(), value);
            let err = crate::parse_rule("failed_payments", &wrong).expect_err("refused");
            assert_eq!(err.field, named, "{err}");
        }
    }
}

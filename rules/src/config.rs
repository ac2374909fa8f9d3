//! Loading rules from TOML: parse the text, then check every rule into its typed form.
//!
//! The file format is documented in `rules.toml` beside this crate's `Cargo.toml`.

use crate::absence::{self, AbsenceRule};
use crate::duration::{self, DurationRule};
use crate::names::{EventKind, RuleName, RuleNameError};
use crate::rule_set::{Rule, RuleSet};
use crate::template::{Builtin, Template, TemplateError};
use chrono::TimeDelta;
use serde::Deserialize;
use std::collections::BTreeSet;

/// The seed rules (`rules.toml`), embedded as the default configuration.
pub const DEFAULT_RULES_TOML: &str = include_str!("../rules.toml");

/// Why a rules file was refused; every variant names the rule and field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML, or not the expected shape (unknown `kind`, missing or unknown field), with its position.
    #[error("rules file: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A rule name outside `[a-z0-9_]{{1,64}}`.
    #[error("rules file: {0}")]
    Name(#[from] RuleNameError),
    /// Two rules with one name.
    #[error("rule `{0}` is defined more than once")]
    DuplicateName(RuleName),
    /// A duration that humantime cannot read.
    #[error(
        "rule `{rule}`: `{field}` = {value:?} is not a duration (try \"30m\" or \"1h 30m\"): {source}"
    )]
    BadDuration {
        /// The rule.
        rule: RuleName,
        /// The field, e.g. `longer_than`.
        field: &'static str,
        /// The text as written.
        value: String,
        /// The parser's reason.
        source: humantime::DurationError,
    },
    /// A duration of zero or beyond what timestamps can hold.
    #[error("rule `{rule}`: `{field}` must be more than zero and less than a century")]
    DurationOutOfRange {
        /// The rule.
        rule: RuleName,
        /// The field.
        field: &'static str,
    },
    /// A required text or list that is empty (category, event name, `pair_on`, `expected`).
    #[error("rule `{rule}`: `{field}` must not be empty")]
    Empty {
        /// The rule.
        rule: RuleName,
        /// The field.
        field: &'static str,
    },
    /// One event type in two roles of a rule (e.g. both start and finish).
    #[error("rule `{rule}`: event `{event}` appears in more than one role")]
    OverlappingEvents {
        /// The rule.
        rule: RuleName,
        /// The event name.
        event: String,
    },
    /// A message template that does not parse, e.g. with an unknown placeholder.
    #[error("rule `{rule}`: `message`: {source}")]
    Message {
        /// The rule.
        rule: RuleName,
        /// What is wrong with it.
        source: TemplateError,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum RawRule {
    Duration(RawDuration),
    Absence(RawAbsence),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDuration {
    name: String,
    category: String,
    start: String,
    finish: String,
    #[serde(default)]
    cancel: Vec<String>,
    pair_on: String,
    longer_than: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAbsence {
    name: String,
    category: String,
    trigger: String,
    expected: Vec<String>,
    within: String,
    message: String,
}

impl RuleSet {
    /// Parses and checks a rules file's content.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let raw: RawFile = toml::from_str(text)?;
        let mut names = BTreeSet::new();
        let mut rules = Vec::with_capacity(raw.rule.len());
        for raw_rule in raw.rule {
            let rule = raw_rule.check()?;
            if !names.insert(rule.name().clone()) {
                return Err(ConfigError::DuplicateName(rule.name().clone()));
            }
            rules.push(rule);
        }
        Ok(Self::new(rules))
    }

    /// The seed rules embedded from `rules.toml` ([`DEFAULT_RULES_TOML`]).
    pub fn seed() -> Result<Self, ConfigError> {
        Self::from_toml_str(DEFAULT_RULES_TOML)
    }
}

impl RawRule {
    fn check(self) -> Result<Rule, ConfigError> {
        match self {
            Self::Duration(raw) => raw.check().map(Rule::Duration),
            Self::Absence(raw) => raw.check().map(Rule::Absence),
        }
    }
}

impl RawDuration {
    fn check(self) -> Result<DurationRule, ConfigError> {
        let name = RuleName::parse(self.name)?;
        let at = Checker {
            rule: &name,
            category: &self.category,
        };
        let roles = [&self.start, &self.finish].into_iter().chain(&self.cancel);
        at.distinct(roles)?;
        Ok(DurationRule {
            start: at.event("start", &self.start)?,
            finish: at.event("finish", &self.finish)?,
            cancel: at.events("cancel", &self.cancel)?,
            pair_on: at.non_empty("pair_on", self.pair_on)?,
            longer_than: at.duration("longer_than", &self.longer_than)?,
            message: at.message(&self.message, duration::OFFERED)?,
            name,
        })
    }
}

impl RawAbsence {
    fn check(self) -> Result<AbsenceRule, ConfigError> {
        let name = RuleName::parse(self.name)?;
        let at = Checker {
            rule: &name,
            category: &self.category,
        };
        if self.expected.is_empty() {
            return Err(at.empty("expected"));
        }
        at.distinct(std::iter::once(&self.trigger).chain(&self.expected))?;
        Ok(AbsenceRule {
            trigger: at.event("trigger", &self.trigger)?,
            expected: at.events("expected", &self.expected)?,
            within: at.duration("within", &self.within)?,
            message: at.message(&self.message, absence::OFFERED)?,
            name,
        })
    }
}

/// Checks the fields of one rule, naming it in every error.
struct Checker<'a> {
    rule: &'a RuleName,
    category: &'a str,
}

impl Checker<'_> {
    fn empty(&self, field: &'static str) -> ConfigError {
        ConfigError::Empty {
            rule: self.rule.clone(),
            field,
        }
    }

    fn event(&self, field: &'static str, name: &str) -> Result<EventKind, ConfigError> {
        let field = if self.category.trim().is_empty() {
            "category"
        } else {
            field
        };
        EventKind::new(self.category, name).ok_or_else(|| self.empty(field))
    }

    fn events(&self, field: &'static str, names: &[String]) -> Result<Vec<EventKind>, ConfigError> {
        names.iter().map(|name| self.event(field, name)).collect()
    }

    fn non_empty(&self, field: &'static str, value: String) -> Result<String, ConfigError> {
        if value.trim().is_empty() {
            Err(self.empty(field))
        } else {
            Ok(value)
        }
    }

    fn distinct<'s>(&self, names: impl Iterator<Item = &'s String>) -> Result<(), ConfigError> {
        let mut seen = BTreeSet::new();
        match names.into_iter().find(|name| !seen.insert(name.as_str())) {
            Some(event) => Err(ConfigError::OverlappingEvents {
                rule: self.rule.clone(),
                event: event.clone(),
            }),
            None => Ok(()),
        }
    }

    fn duration(&self, field: &'static str, value: &str) -> Result<TimeDelta, ConfigError> {
        let parsed =
            humantime::parse_duration(value).map_err(|source| ConfigError::BadDuration {
                rule: self.rule.clone(),
                field,
                value: value.to_owned(),
                source,
            })?;
        let century = TimeDelta::days(36_500);
        TimeDelta::from_std(parsed)
            .ok()
            .filter(|delta| *delta > TimeDelta::zero() && *delta < century)
            .ok_or_else(|| ConfigError::DurationOutOfRange {
                rule: self.rule.clone(),
                field,
            })
    }

    fn message(&self, text: &str, offered: &[Builtin]) -> Result<Template, ConfigError> {
        Template::parse(text, offered).map_err(|source| ConfigError::Message {
            rule: self.rule.clone(),
            source,
        })
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
    fn a_new_rule_of_either_kind_loads_without_code_changes() {
        let rules = RuleSet::from_toml_str(&format!("{DURATION}{ABSENCE}")).expect("valid");
        assert_eq!(rules.rules().len(), 2);
        assert!(
            RuleSet::from_toml_str("")
                .expect("no rules is valid")
                .rules()
                .is_empty()
        );
    }

    #[test]
    fn invalid_rules_are_refused_with_a_message_naming_the_fault() {
        let cases = [
            (
                DURATION.replace("\"duration\"", "\"streak\""),
                "unknown variant `streak`",
            ),
            (
                DURATION.replace("\"30m\"", "\"half an hour\""),
                "rule `long`: `longer_than` = \"half an hour\"",
            ),
            (
                DURATION.replace("\"30m\"", "\"0s\""),
                "`longer_than` must be more than zero",
            ),
            (
                DURATION.replace("{minutes}", "{hours}"),
                "rule `long`: `message`: unknown placeholder `{hours}`",
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
                "event `launch` appears in more than one role",
            ),
            (
                DURATION.replace("\"finished\"", "\"started\""),
                "event `started` appears in more than one role",
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
                "unknown field `pair_by`",
            ),
            (
                DURATION.replace("message = ", "#"),
                "missing field `message`",
            ),
            (
                format!("{DURATION}{DURATION}"),
                "rule `long` is defined more than once",
            ),
        ];
        for (text, expected) in cases {
            let message = error(&text);
            assert!(
                message.contains(expected),
                "expected {expected:?} in {message:?}"
            );
        }
    }
}

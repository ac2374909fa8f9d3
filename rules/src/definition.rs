//! A rule as data: a JSON object with the fields of a `[[rule]]` table of the rules file, checked field by
//! field into its typed form, so every refusal names the field at fault.

use crate::absence::{self, AbsenceRule};
use crate::count::{self, CountRule};
use crate::duration::{self, DurationRule};
use crate::names::{EventKind, RuleName, RuleNameError};
use crate::rule_set::Rule;
use crate::template::{Builtin, Template, TemplateError};
use chrono::TimeDelta;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The most events a count rule may ask for: its state keeps that many per user.
pub const MAX_COUNT: u64 = 1000;

/// A rule definition refused: which rule, which field, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rule `{rule}`: `{field}` {problem}")]
pub struct RuleError {
    /// The rule's name as given.
    pub rule: String,
    /// The field at fault, e.g. `longer_than`.
    pub field: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with one field of a rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// A required field is absent.
    #[error("is required")]
    Missing,
    /// A field this kind of rule does not have.
    #[error("is not a field of a `{0}` rule")]
    Unknown(&'static str),
    /// `kind` names no rule kind.
    #[error("must be \"duration\", \"absence\" or \"count\", not {0}")]
    UnknownKind(String),
    /// The JSON type is wrong.
    #[error("must be {0}")]
    WrongType(&'static str),
    /// A text or list that is empty.
    #[error("must not be empty")]
    Empty,
    /// A duration humantime cannot read.
    #[error("= {value:?} is not a duration (try \"30m\" or \"1h 30m\"): {reason}")]
    BadDuration {
        /// The text as written.
        value: String,
        /// The parser's reason.
        reason: String,
    },
    /// A number or duration outside its bounds.
    #[error("must be {0}")]
    OutOfRange(&'static str),
    /// One event type in two roles of a rule.
    #[error("names event `{0}`, which appears in more than one role")]
    Overlapping(String),
    /// A message template that does not parse.
    #[error("is not a valid template: {0}")]
    Message(TemplateError),
    /// A name outside `[a-z0-9_]{1,64}`, or one that differs from the name it is published under.
    #[error("{0}")]
    Name(String),
}

impl From<RuleNameError> for Problem {
    fn from(err: RuleNameError) -> Self {
        Self::Name(err.to_string())
    }
}

const DURATION: &[&str] = &[
    "name",
    "kind",
    "category",
    "start",
    "finish",
    "cancel",
    "pair_on",
    "longer_than",
    "message",
];
const ABSENCE: &[&str] = &[
    "name", "kind", "category", "trigger", "expected", "within", "message",
];
const COUNT: &[&str] = &[
    "name",
    "kind",
    "category",
    "event",
    "data_equals",
    "at_least",
    "within",
    "message",
];

/// Checks `body` (a rule object; a `name` in it must equal `name`) into a rule.
pub fn parse_rule(name: &str, body: &Map<String, Value>) -> Result<Rule, RuleError> {
    let at = |field: &str, problem: Problem| RuleError {
        rule: name.to_owned(),
        field: field.to_owned(),
        problem,
    };
    let parsed = RuleName::parse(name).map_err(|e| at("name", e.into()))?;
    if let Some(given) = body
        .get("name")
        .filter(|given| given.as_str() != Some(name))
    {
        let problem = Problem::Name(format!("{given} differs from the rule's name {name:?}"));
        return Err(at("name", problem));
    }
    let kind = match body.get("kind") {
        None => return Err(at("kind", Problem::Missing)),
        Some(Value::String(kind)) => kind.as_str(),
        Some(other) => return Err(at("kind", Problem::UnknownKind(other.to_string()))),
    };
    let (kind, allowed): (&'static str, _) = match kind {
        "duration" => ("duration", DURATION),
        "absence" => ("absence", ABSENCE),
        "count" => ("count", COUNT),
        other => return Err(at("kind", Problem::UnknownKind(format!("{other:?}")))),
    };
    let fields = Fields { name: parsed, body };
    if let Some(unknown) = body.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(fields.error(unknown, Problem::Unknown(kind)));
    }
    match kind {
        "duration" => fields.duration().map(Rule::Duration),
        "absence" => fields.absence().map(Rule::Absence),
        _ => fields.count().map(Rule::Count),
    }
}

/// Reads the fields of one rule object, naming the rule and field in every error.
struct Fields<'a> {
    name: RuleName,
    body: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn error(&self, field: &str, problem: Problem) -> RuleError {
        RuleError {
            rule: self.name.to_string(),
            field: field.to_owned(),
            problem,
        }
    }

    fn duration(self) -> Result<DurationRule, RuleError> {
        let (start, finish) = (self.text("start")?, self.text("finish")?);
        let cancel = self.texts("cancel", false)?;
        let roles = [("start", &start), ("finish", &finish)];
        self.distinct(
            roles
                .into_iter()
                .chain(cancel.iter().map(|c| ("cancel", c))),
        )?;
        Ok(DurationRule {
            start: self.event("start", &start)?,
            finish: self.event("finish", &finish)?,
            cancel: self.events("cancel", &cancel)?,
            pair_on: self.text("pair_on")?,
            longer_than: self.span("longer_than")?,
            message: self.message(duration::OFFERED)?,
            name: self.name,
        })
    }

    fn absence(self) -> Result<AbsenceRule, RuleError> {
        let trigger = self.text("trigger")?;
        let expected = self.texts("expected", true)?;
        let expecting = expected.iter().map(|e| ("expected", e));
        self.distinct(std::iter::once(("trigger", &trigger)).chain(expecting))?;
        Ok(AbsenceRule {
            trigger: self.event("trigger", &trigger)?,
            expected: self.events("expected", &expected)?,
            within: self.span("within")?,
            message: self.message(absence::OFFERED)?,
            name: self.name,
        })
    }

    fn count(self) -> Result<CountRule, RuleError> {
        let data_equals = match self.body.get("data_equals") {
            None => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(self.error("data_equals", Problem::WrongType("an object"))),
        };
        let at_least = self
            .body
            .get("at_least")
            .ok_or_else(|| self.error("at_least", Problem::Missing))?
            .as_u64()
            .filter(|n| (1..=MAX_COUNT).contains(n))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                self.error(
                    "at_least",
                    Problem::OutOfRange("a whole number from 1 to 1000"),
                )
            })?;
        Ok(CountRule {
            event: self.event("event", &self.text("event")?)?,
            data_equals,
            at_least,
            within: self.span("within")?,
            message: self.message(count::OFFERED)?,
            name: self.name,
        })
    }

    /// A required, non-blank text.
    fn text(&self, field: &str) -> Result<String, RuleError> {
        match self.body.get(field) {
            None => Err(self.error(field, Problem::Missing)),
            Some(Value::String(text)) if text.trim().is_empty() => {
                Err(self.error(field, Problem::Empty))
            }
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(self.error(field, Problem::WrongType("a string"))),
        }
    }

    /// A list of non-blank texts; `required` ones must have at least one.
    fn texts(&self, field: &str, required: bool) -> Result<Vec<String>, RuleError> {
        let list = match self.body.get(field) {
            None if required => return Err(self.error(field, Problem::Missing)),
            None => return Ok(Vec::new()),
            Some(Value::Array(list)) => list,
            Some(_) => return Err(self.error(field, Problem::WrongType("a list of strings"))),
        };
        if required && list.is_empty() {
            return Err(self.error(field, Problem::Empty));
        }
        list.iter()
            .map(|item| match item {
                Value::String(text) if !text.trim().is_empty() => Ok(text.clone()),
                Value::String(_) => Err(self.error(field, Problem::Empty)),
                _ => Err(self.error(field, Problem::WrongType("a list of strings"))),
            })
            .collect()
    }

    fn event(&self, field: &str, name: &str) -> Result<EventKind, RuleError> {
        let category = self.text("category")?;
        EventKind::new(&category, name).ok_or_else(|| self.error(field, Problem::Empty))
    }

    fn events(&self, field: &str, names: &[String]) -> Result<Vec<EventKind>, RuleError> {
        names.iter().map(|name| self.event(field, name)).collect()
    }

    /// Every role names a different event; the error names the field of the second one.
    fn distinct<'s>(
        &self,
        mut roles: impl Iterator<Item = (&'s str, &'s String)>,
    ) -> Result<(), RuleError> {
        let mut seen = BTreeSet::new();
        match roles.find(|(_, name)| !seen.insert(name.as_str())) {
            Some((field, event)) => Err(self.error(field, Problem::Overlapping(event.clone()))),
            None => Ok(()),
        }
    }

    fn span(&self, field: &str) -> Result<TimeDelta, RuleError> {
        let value = self.text(field)?;
        let parsed = humantime::parse_duration(&value).map_err(|err| {
            let reason = err.to_string();
            self.error(field, Problem::BadDuration { value, reason })
        })?;
        let century = TimeDelta::days(36_500);
        TimeDelta::from_std(parsed)
            .ok()
            .filter(|delta| *delta > TimeDelta::zero() && *delta < century)
            .ok_or_else(|| {
                self.error(
                    field,
                    Problem::OutOfRange("more than zero and less than a century"),
                )
            })
    }

    fn message(&self, offered: &[Builtin]) -> Result<Template, RuleError> {
        let text = match self.body.get("message") {
            None => return Err(self.error("message", Problem::Missing)),
            Some(Value::String(text)) => text,
            Some(_) => return Err(self.error("message", Problem::WrongType("a string"))),
        };
        Template::parse(text, offered).map_err(|err| self.error("message", Problem::Message(err)))
    }
}

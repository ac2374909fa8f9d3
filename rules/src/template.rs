//! Message templates: literal text with `{placeholder}` and `{placeholder|fallback}` slots.
//!
//! Placeholders are either built-ins ([`Builtin`], which a rule kind may or may not offer) or
//! `data.<key>`, a field of the events that decide the occasion. Unknown built-ins are refused when the
//! rules are loaded. A value that is missing, `null` or blank renders as the slot's fallback, or as
//! nothing when the slot has none. `{{` and `}}` stand for literal braces.

use crate::names::RuleName;
use serde_json::{Map, Value};
use std::fmt;

/// A placeholder the engine fills in itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `{rule}`: the rule's name.
    Rule,
    /// `{user_id}`: the user the notification is for.
    UserId,
    /// `{minutes}`: whole minutes between a duration rule's start and finish (rounded down).
    Minutes,
    /// `{window_minutes}`: an absence or count rule's window in whole minutes.
    WindowMinutes,
    /// `{count}`: how many events a count rule counted.
    Count,
}

impl Builtin {
    const ALL: [Builtin; 5] = [
        Self::Rule,
        Self::UserId,
        Self::Minutes,
        Self::WindowMinutes,
        Self::Count,
    ];

    /// The placeholder's name inside braces.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rule => "rule",
            Self::UserId => "user_id",
            Self::Minutes => "minutes",
            Self::WindowMinutes => "window_minutes",
            Self::Count => "count",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{` without its `}`.
    #[error("a `{{` is never closed")]
    Unclosed,
    /// A lone `}` (write `}}` for a literal brace).
    #[error("a `}}` has no matching `{{` (write `}}}}` for a literal brace)")]
    UnmatchedClose,
    /// A slot with no placeholder name, or `data.` with no key, or a `{` inside a slot.
    #[error("malformed placeholder `{{{0}}}`")]
    Malformed(String),
    /// A name that is neither `data.<key>` nor a built-in of this rule kind.
    #[error("unknown placeholder `{{{name}}}`; this rule kind offers {offered} and data.<key>")]
    Unknown {
        /// The name as written.
        name: String,
        /// The built-ins the rule kind offers, for the message.
        offered: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Builtin(Builtin),
    Data(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    source: Source,
    fallback: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Slot(Slot),
}

/// A parsed message template; see the module docs for the syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

/// The values a template is rendered with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Values<'a> {
    pub rule: &'a RuleName,
    pub user_id: &'a str,
    pub minutes: Option<i64>,
    pub window_minutes: Option<i64>,
    pub count: Option<usize>,
    /// Searched in order; the first map with a non-blank value wins.
    pub data: &'a [&'a Map<String, Value>],
}

impl Template {
    /// Parses `text`, accepting only the built-ins in `offered` besides `data.<key>`.
    pub fn parse(text: &str, offered: &[Builtin]) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let tail = &rest[at..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                literal.push_str(&tail[..1]);
                rest = &tail[2..];
            } else if tail.starts_with('}') {
                return Err(TemplateError::UnmatchedClose);
            } else {
                let end = tail.find('}').ok_or(TemplateError::Unclosed)?;
                push_text(&mut segments, &mut literal);
                segments.push(Segment::Slot(parse_slot(&tail[1..end], offered)?));
                rest = &tail[end + 1..];
            }
        }
        literal.push_str(rest);
        push_text(&mut segments, &mut literal);
        Ok(Self { segments })
    }

    /// The data keys the template reads, so a rule can keep them from an earlier event.
    pub fn data_keys(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Slot(Slot {
                source: Source::Data(key),
                ..
            }) => Some(key.as_str()),
            _ => None,
        })
    }

    pub(crate) fn render(&self, values: &Values<'_>) -> String {
        self.segments
            .iter()
            .map(|segment| match segment {
                Segment::Text(text) => text.clone(),
                Segment::Slot(slot) => render_slot(slot, values),
            })
            .collect()
    }
}

fn push_text(segments: &mut Vec<Segment>, literal: &mut String) {
    if !literal.is_empty() {
        segments.push(Segment::Text(std::mem::take(literal)));
    }
}

fn parse_slot(body: &str, offered: &[Builtin]) -> Result<Slot, TemplateError> {
    let (name, fallback) = match body.split_once('|') {
        Some((name, fallback)) => (name.trim(), Some(fallback.to_owned())),
        None => (body.trim(), None),
    };
    if name.is_empty() || body.contains('{') || name == "data." {
        return Err(TemplateError::Malformed(body.to_owned()));
    }
    let source = match name.strip_prefix("data.") {
        Some(key) => Source::Data(key.to_owned()),
        None => Source::Builtin(builtin(name, offered)?),
    };
    Ok(Slot { source, fallback })
}

fn builtin(name: &str, offered: &[Builtin]) -> Result<Builtin, TemplateError> {
    Builtin::from_name(name)
        .filter(|b| offered.contains(b))
        .ok_or_else(|| TemplateError::Unknown {
            name: name.to_owned(),
            offered: offered
                .iter()
                .map(|b| format!("{{{}}}", b.name()))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn render_slot(slot: &Slot, values: &Values<'_>) -> String {
    let value = match &slot.source {
        Source::Builtin(builtin) => builtin_value(*builtin, values),
        Source::Data(key) => data_value(key, values.data),
    };
    value.or_else(|| slot.fallback.clone()).unwrap_or_default()
}

fn builtin_value(builtin: Builtin, values: &Values<'_>) -> Option<String> {
    match builtin {
        Builtin::Rule => Some(values.rule.to_string()),
        Builtin::UserId => Some(values.user_id.to_owned()),
        Builtin::Minutes => values.minutes.map(|m| m.to_string()),
        Builtin::WindowMinutes => values.window_minutes.map(|m| m.to_string()),
        Builtin::Count => values.count.map(|c| c.to_string()),
    }
}

fn data_value(key: &str, maps: &[&Map<String, Value>]) -> Option<String> {
    maps.iter()
        .filter_map(|map| map.get(key))
        .find_map(|value| match value {
            Value::Null => None,
            Value::String(text) if text.trim().is_empty() => None,
            Value::String(text) => Some(text.clone()),
            other => Some(other.to_string()),
        })
}

impl fmt::Display for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALL: &[Builtin] = &Builtin::ALL;

    fn render(text: &str, data: &Value) -> String {
        let rule = RuleName::parse("r").expect("valid name");
        let empty = Map::new();
        let data = data.as_object().unwrap_or(&empty);
        let values = Values {
            rule: &rule,
            user_id: "foo1",
            minutes: Some(36),
            window_minutes: None,
            count: None,
            data: &[data],
        };
        Template::parse(text, ALL)
            .expect("valid template")
            .render(&values)
    }

    #[test]
    fn placeholders_render_builtins_data_and_fallbacks() {
        let data = json!({"title": "HIIT", "id": 2352, "blank": " ", "none": null});
        let cases = [
            ("plain text", "plain text"),
            (
                "{rule} for {user_id}: {minutes} minutes",
                "r for foo1: 36 minutes",
            ),
            ("{data.title}", "HIIT"),
            ("{data.id}", "2352"),
            ("[{data.missing}]", "[]"),
            ("{data.missing|your training}", "your training"),
            ("{data.blank|fallback}", "fallback"),
            ("{data.none|fallback}", "fallback"),
            ("{data.title|fallback}", "HIIT"),
            ("{window_minutes|ten}", "ten"),
            ("{{literal}} braces", "{literal} braces"),
        ];
        for (text, expected) in cases {
            assert_eq!(render(text, &data), expected, "{text}");
        }
    }

    #[test]
    fn malformed_templates_are_refused_with_the_reason() {
        let cases = [
            ("{unclosed", TemplateError::Unclosed),
            ("stray }", TemplateError::UnmatchedClose),
            ("{}", TemplateError::Malformed(String::new())),
            ("{data.}", TemplateError::Malformed("data.".into())),
            ("{a{b}", TemplateError::Malformed("a{b".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(Template::parse(text, ALL), Err(expected), "{text}");
        }
    }

    #[test]
    fn a_builtin_the_rule_kind_does_not_offer_is_an_unknown_placeholder() {
        let error =
            Template::parse("{minutes} {rule}", &[Builtin::Rule]).expect_err("minutes not offered");
        assert_eq!(
            error,
            TemplateError::Unknown {
                name: "minutes".into(),
                offered: "{rule}".into()
            }
        );
        assert!(Template::parse("{colour}", ALL).is_err());
    }

    #[test]
    fn data_keys_lists_the_fields_a_template_reads() {
        let template = Template::parse("{data.a} {rule} {data.b|x}", ALL).expect("valid template");
        assert_eq!(template.data_keys().collect::<Vec<_>>(), ["a", "b"]);
    }
}

//! Parameters and text fields as the spec documents them, so that generated clients type them and
//! conformance tools know the limits the server enforces.
//!
//! Two shapes: [`Param`] keeps a query parameter's text for the handler to parse (so one 400 names every
//! bad parameter) while documenting it with a typed schema; [`Text`] is bounded text that is checked where
//! it is extracted (a JSON string, or a query or path parameter), refusing blanks, control characters
//! (a NUL cannot be stored) and non-strings (poem-openapi's `String` would take `1.72e+156` as text).

use eye_domain::check_bounded;
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use serde_json::Value;
use std::borrow::Cow;
use std::marker::PhantomData;

/// Bounded text: at least one character that is not white space, and no control characters.
pub const TEXT_PATTERN: &str =
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// The timestamps events carry: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.fffffffff]` taken as UTC (the seeds'
/// form), written with a year from 1000 on. Only real calendar dates (leap days included), so every string
/// it matches is accepted.
pub const TIMESTAMP_PATTERN: &str = concat!(
    "^(?:[1-9][0-9]{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)",
    "|(?:0[13578]|1[02])-31)",
    "|(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)-02-29)",
    "(?:[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])",
    "| (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?)$"
);

/// The schema a [`Param`] is documented with.
pub trait ParamSchema: Send + Sync {
    /// Whether the spec declares the parameter required (the handler still names it when absent).
    const REQUIRED: bool = false;
    /// The documented schema.
    fn schema() -> MetaSchema;
}

/// A parameter's text, if sent, documented with the schema `S` and parsed by the handler.
pub struct Param<S>(Option<String>, PhantomData<S>);

impl<S> Param<S> {
    /// The text as sent.
    pub fn into_text(self) -> Option<String> {
        self.0
    }
}

impl<S: ParamSchema> Type for Param<S> {
    const IS_REQUIRED: bool = S::REQUIRED;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        S::schema().ty.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(S::schema()))
    }

    fn as_raw_value(&self) -> Option<&String> {
        self.0.as_ref()
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(self.0.iter())
    }
}

impl<S: ParamSchema> ParseFromParameter for Param<S> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(Some(value.to_owned()), PhantomData))
    }

    // Absent is not an error here: the handler names a missing required parameter with the others.
    fn parse_from_parameters<I: IntoIterator<Item = A>, A: AsRef<str>>(
        iter: I,
    ) -> ParseResult<Self> {
        let first = iter.into_iter().next().map(|v| v.as_ref().to_owned());
        Ok(Self(first, PhantomData))
    }
}

/// A page size: 1..=1000.
pub struct Limit;

impl ParamSchema for Limit {
    fn schema() -> MetaSchema {
        MetaSchema {
            minimum: Some(1.0),
            maximum: Some(1000.0),
            ..MetaSchema::new_with_format("integer", "uint64")
        }
    }
}

/// An optional RFC 3339 instant.
pub struct Instant;

impl ParamSchema for Instant {
    fn schema() -> MetaSchema {
        MetaSchema::new_with_format("string", "date-time")
    }
}

/// `S`, declared required (path parameters, or ones the handler cannot do without).
pub struct Required<S>(PhantomData<S>);

impl<S: ParamSchema> ParamSchema for Required<S> {
    const REQUIRED: bool = true;
    fn schema() -> MetaSchema {
        S::schema()
    }
}

/// A UUID.
pub struct Id;

impl ParamSchema for Id {
    fn schema() -> MetaSchema {
        MetaSchema::new_with_format("string", "uuid")
    }
}

/// A `next_cursor` from a previous page (opaque).
pub struct Cursor;

impl ParamSchema for Cursor {
    fn schema() -> MetaSchema {
        MetaSchema {
            min_length: Some(1),
            ..MetaSchema::new("string")
        }
    }
}

/// One of a closed set of words.
pub struct OneOf<W>(PhantomData<W>);

/// The words a [`OneOf`] parameter takes.
pub trait Words: Send + Sync {
    /// The words.
    const WORDS: &'static [&'static str];
}

impl<W: Words> ParamSchema for OneOf<W> {
    fn schema() -> MetaSchema {
        MetaSchema {
            enum_items: W::WORDS.iter().map(|w| Value::from(*w)).collect(),
            ..MetaSchema::new("string")
        }
    }
}

/// Bounded text of at most `MAX` characters (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    /// Checks `value` against the rules.
    pub fn parse(value: impl Into<String>) -> Result<Self, ParseError<Self>> {
        let value = value.into();
        check_bounded(&value, MAX).map_err(|err| ParseError::custom(err.to_string()))?;
        Ok(Self(value))
    }

    /// Constant text known to follow the rules (the spec's examples, which a test parses).
    pub(crate) fn trusted(value: &str) -> Self {
        Self(value.to_owned())
    }

    /// The text.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn text_schema(max: usize) -> MetaSchema {
    MetaSchema {
        min_length: Some(1),
        max_length: Some(max),
        pattern: Some(TEXT_PATTERN.to_owned()),
        ..MetaSchema::new("string")
    }
}

impl<const MAX: usize> ParamSchema for Text<MAX> {
    fn schema() -> MetaSchema {
        text_schema(MAX)
    }
}

impl<const MAX: usize> Type for Text<MAX> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(text_schema(MAX)))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl<const MAX: usize> ParseFromJSON for Text<MAX> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Self::parse(text),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<const MAX: usize> ParseFromParameter for Text<MAX> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Self::parse(value)
    }
}

impl<const MAX: usize> ToJSON for Text<MAX> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// What a [`Documented`] value is: its schema, and the check that parsing applies.
pub trait Documentation: Send + Sync {
    /// The documented schema.
    fn schema() -> MetaSchema;
    /// Why `value` is refused, if it is.
    fn check(value: &Value) -> Result<(), String>;
}

/// A JSON value documented (and checked) as `D` says: for bodies the handler reads as plain JSON.
#[derive(Debug, Clone)]
pub struct Documented<D>(Value, PhantomData<D>);

impl<D> Documented<D> {
    /// A value known to pass the check (the spec's examples, which a test parses).
    pub(crate) fn trusted(value: impl Into<Value>) -> Self {
        Self(value.into(), PhantomData)
    }

    /// The JSON value.
    pub fn into_value(self) -> Value {
        self.0
    }
}

impl<D: Documentation> Type for Documented<D> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        D::schema().ty.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(D::schema()))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl<D: Documentation> ParseFromJSON for Documented<D> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let value = value.unwrap_or_default();
        D::check(&value).map_err(ParseError::custom)?;
        Ok(Self(value, PhantomData))
    }
}

impl<D: Documentation> ToJSON for Documented<D> {
    fn to_json(&self) -> Option<Value> {
        Some(self.0.clone())
    }
}

/// An event timestamp as sent (its schema; events themselves are parsed by `wire`).
#[derive(Debug, Clone)]
pub struct TimestampText;

impl Documentation for TimestampText {
    fn schema() -> MetaSchema {
        MetaSchema {
            pattern: Some(TIMESTAMP_PATTERN.to_owned()),
            ..MetaSchema::new("string")
        }
    }

    fn check(value: &Value) -> Result<(), String> {
        match value {
            Value::String(_) => Ok(()),
            _ => Err("must be a string".to_owned()),
        }
    }
}

/// An event timestamp as sent.
pub type Timestamp = Documented<TimestampText>;

/// The check of a JSON object body that is stored as `jsonb`: an object, with no NUL anywhere (PostgreSQL's
/// jsonb cannot hold one, so it is refused here rather than failed in the store).
pub(crate) fn storable_object(value: &Value) -> Result<(), String> {
    match value {
        _ if has_nul(value) => Err("must not contain NUL characters (\\u0000)".to_owned()),
        Value::Object(_) => Ok(()),
        _ => Err("must be a JSON object".to_owned()),
    }
}

/// Whether any key or string in `value` holds a NUL character.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eye_domain::parse_timestamp;
    use regex::Regex;

    #[test]
    fn the_timestamp_pattern_matches_exactly_what_the_server_parses() {
        let pattern = Regex::new(TIMESTAMP_PATTERN).expect("valid regex");
        let accepted = [
            "2021-01-01 09:15:27.243860",
            "2021-02-28 16:22:52",
            "2021-01-01T09:15:27.243860Z",
            "2021-01-01T10:15:27+01:00",
            "2024-02-29T00:00:00z",
            "2000-02-29 23:59:59",
            "2021-12-31t23:59:59.123456789-23:59",
            "1000-01-01T00:30:00+01:00",
            "1600-02-29 00:00:00",
        ];
        for input in accepted {
            assert!(pattern.is_match(input), "pattern refuses {input}");
            assert!(parse_timestamp(input).is_ok(), "server refuses {input}");
        }
        let refused = [
            "",
            "2021-02-30 10:00:00",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2021-04-31T00:00:00Z",
            "2021-01-01",
            "2021-01-01T09:15:27",
            "2021-01-01T24:00:00Z",
            "1614529372",
            "0999-12-31T23:59:59Z",
            "0000-02-29 00:00:00",
            "0400-02-29T00:00:00Z",
        ];
        for input in refused {
            assert!(!pattern.is_match(input), "pattern accepts {input}");
            assert!(parse_timestamp(input).is_err(), "server accepts {input}");
        }
    }

    #[test]
    fn the_text_pattern_matches_exactly_what_the_server_accepts() {
        let pattern = Regex::new(TEXT_PATTERN).expect("valid regex");
        for input in ["a", " a ", "page interaction", "é", "\u{a0}x"] {
            assert!(pattern.is_match(input), "pattern refuses {input:?}");
            assert!(Text::<64>::parse(input).is_ok(), "server refuses {input:?}");
        }
        for input in ["", " ", "\u{a0}", "a\u{0}", "\n", "a\u{85}b", "\t x"] {
            assert!(!pattern.is_match(input), "pattern accepts {input:?}");
            assert!(
                Text::<64>::parse(input).is_err(),
                "server accepts {input:?}"
            );
        }
    }

    #[test]
    fn text_must_be_a_json_string() {
        for value in [
            serde_json::json!(1.72e156),
            serde_json::json!(true),
            Value::Null,
        ] {
            assert!(
                Text::<128>::parse_from_json(Some(value.clone())).is_err(),
                "{value}"
            );
        }
        let parsed = Text::<128>::parse_from_json(Some("web".into())).map(Text::into_string);
        assert_eq!(parsed.ok().as_deref(), Some("web"));
    }
}

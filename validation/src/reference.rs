//! Locating the `$ref` behind a reference error, so an invalid schema is reported where it is wrong.

use jsonschema::{ReferencingError, ValidationError};
use serde_json::Value;

/// Keywords whose string value is a reference to another schema.
const REFERENCE_KEYWORDS: [&str; 2] = ["$ref", "$dynamicRef"];

/// Where in `schema` the reference that `error` complains about sits, and a message for it.
///
/// `None` when `error` is not a reference error or its reference cannot be found.
pub(crate) fn describe(error: &ValidationError<'_>, schema: &Value) -> Option<(String, String)> {
    let jsonschema::error::ValidationErrorKind::Referencing(cause) = error.kind() else {
        return None;
    };
    match cause {
        ReferencingError::Unretrievable { uri, .. } => {
            let pointer = locate(schema, &|reference| names_document(reference, uri))?;
            let message = format!(
                "reference {uri:?} points outside this schema; only references within it \
                 (such as \"#/$defs/name\") are supported"
            );
            Some((pointer, message))
        }
        ReferencingError::PointerToNowhere { pointer } => {
            let fragment = format!("#{pointer}");
            let at = locate(schema, &|reference| reference.ends_with(&fragment))?;
            Some((
                at,
                format!("reference target {fragment:?} does not exist in this schema"),
            ))
        }
        _ => None,
    }
}

// `uri` may be resolved against a base and may carry the fragment; compare documents only.
fn names_document(reference: &str, uri: &str) -> bool {
    let document = without_fragment(reference);
    !document.is_empty() && without_fragment(uri).ends_with(document)
}

fn without_fragment(reference: &str) -> &str {
    reference.split('#').next().unwrap_or_default()
}

/// JSON pointer of the first reference keyword in `value` whose target `is_culprit` accepts.
fn locate(value: &Value, is_culprit: &dyn Fn(&str) -> bool) -> Option<String> {
    walk(value, "", is_culprit)
}

// Recursion depth is bounded: serde_json refuses to parse documents nested over 128 levels.
fn walk(value: &Value, at: &str, is_culprit: &dyn Fn(&str) -> bool) -> Option<String> {
    match value {
        Value::Object(members) => members.iter().find_map(|(key, child)| {
            let here = format!("{at}/{}", escape(key));
            let is_reference = REFERENCE_KEYWORDS.contains(&key.as_str())
                && child.as_str().is_some_and(is_culprit);
            if is_reference {
                Some(here)
            } else {
                walk(child, &here, is_culprit)
            }
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, child)| walk(child, &format!("{at}/{index}"), is_culprit)),
        _ => None,
    }
}

/// Escapes a member name as a JSON pointer token (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

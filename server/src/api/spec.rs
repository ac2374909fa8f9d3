//! The published OpenAPI document: poem-openapi's, completed where its derive macros cannot say what the
//! server does. One document is printed (`eye openapi`), served at `/openapi.json` and shown at `/docs`.

/// Objects the server parses itself and that it refuses extra properties on (`wire::parse_event`).
/// poem-openapi has no attribute for `additionalProperties: false` (`deny_unknown_fields` does not
/// document it).
const CLOSED_OBJECTS: [&str; 1] = ["EventIn"];

/// The spec as JSON text.
pub fn spec() -> String {
    let mut document = super::openapi().spec();
    for name in CLOSED_OBJECTS {
        document = close_object(&document, name);
    }
    document
}

/// Adds `additionalProperties: false` to the named schema. Edited as text, not as a `serde_json::Value`,
/// which would sort every key of the document.
fn close_object(document: &str, name: &str) -> String {
    let title = format!("\"title\": \"{name}\",");
    let Some(at) = document.find(&title) else {
        return document.to_owned();
    };
    let line_start = document[..at].rfind('\n').map_or(0, |i| i + 1);
    let indent = &document[line_start..at];
    let insert_at = at + title.len();
    format!(
        "{}\n{indent}\"additionalProperties\": false,{}",
        &document[..insert_at],
        &document[insert_at..]
    )
}

/// Swagger UI showing `document` (poem-openapi's page embeds the document it was built from).
pub fn swagger_ui_html(document: &str) -> String {
    let api = super::openapi();
    api.swagger_ui_html().replacen(&api.spec(), document, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn document() -> Value {
        serde_json::from_str(&spec()).unwrap_or_default()
    }

    #[test]
    fn every_response_has_a_description() {
        let document = document();
        for (path, operations) in document["paths"].as_object().into_iter().flatten() {
            for (method, op) in operations.as_object().into_iter().flatten() {
                for (status, response) in op["responses"].as_object().into_iter().flatten() {
                    let description = response["description"].as_str().unwrap_or_default();
                    assert!(!description.is_empty(), "{method} {path} {status}");
                }
            }
        }
    }

    #[test]
    fn events_refuse_extra_properties_as_the_server_does() {
        let event = &document()["components"]["schemas"]["EventIn"];
        assert_eq!(event["additionalProperties"], Value::Bool(false));
        assert_eq!(event["title"], "EventIn");
    }

    #[test]
    fn the_docs_page_embeds_the_published_spec() {
        assert!(swagger_ui_html(&spec()).contains(r#""additionalProperties": false"#));
    }
}

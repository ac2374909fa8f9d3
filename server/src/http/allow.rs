//! `405 Method Not Allowed` answers say which methods the resource does take (RFC 9110 §15.5.6 requires
//! an `Allow` header), which poem's router leaves out. The methods come from the spec's paths.

use poem::http::header::ALLOW;
use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use serde_json::Value;
use std::sync::Arc;

/// The methods of each documented path template (`/v1/admin/read-keys/{id}`).
#[derive(Debug, Clone, Default)]
pub struct AllowedMethods {
    paths: Arc<Vec<(Vec<String>, String)>>,
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_matches('/').split('/')
}

impl AllowedMethods {
    /// Reads the paths of an OpenAPI document.
    pub fn from_spec(spec: &str) -> Self {
        let document: Value = serde_json::from_str(spec).unwrap_or_default();
        let paths = document["paths"].as_object().into_iter().flatten();
        let paths = paths
            .map(|(template, operations)| {
                let mut methods: Vec<String> = operations
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(method, _)| method.to_uppercase())
                    .collect();
                // poem answers HEAD with the GET handler.
                if methods.iter().any(|m| m == Method::GET.as_str()) {
                    methods.push(Method::HEAD.to_string());
                }
                let template = segments(template).map(str::to_owned).collect();
                (template, methods.join(", "))
            })
            .collect();
        Self {
            paths: Arc::new(paths),
        }
    }

    /// The `Allow` value for a request path, if a documented path matches it.
    pub fn allow(&self, path: &str) -> Option<&str> {
        let requested: Vec<&str> = segments(path).collect();
        self.paths
            .iter()
            .find(|(template, _)| matches(template, &requested))
            .map(|(_, methods)| methods.as_str())
    }
}

fn matches(template: &[String], requested: &[&str]) -> bool {
    template.len() == requested.len()
        && template
            .iter()
            .zip(requested)
            .all(|(t, r)| t == r || (t.starts_with('{') && t.ends_with('}') && !r.is_empty()))
}

/// Adds `Allow` to the 405 answers of `endpoint`.
pub fn with_allow_header<E: Endpoint + 'static>(
    endpoint: E,
    allowed: AllowedMethods,
) -> impl Endpoint<Output = Response> {
    poem::EndpointExt::around(endpoint, move |inner, request: Request| {
        let allowed = allowed.clone();
        async move {
            let path = request.uri().path().to_owned();
            let mut response = match inner.call(request).await {
                Ok(response) => response.into_response(),
                Err(err) => err.into_response(),
            };
            if response.status() == StatusCode::METHOD_NOT_ALLOWED
                && let Some(methods) = allowed.allow(&path)
                && let Ok(value) = HeaderValue::from_str(methods)
            {
                response.headers_mut().insert(ALLOW, value);
            }
            Ok(response)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> AllowedMethods {
        AllowedMethods::from_spec(
            r#"{"paths": {
                "/v1/events": {"post": {}, "get": {}},
                "/v1/admin/read-keys/{id}": {"delete": {}}
            }}"#,
        )
    }

    #[test]
    fn the_documented_methods_of_the_matching_path_are_allowed() {
        let allowed = allowed();
        assert_eq!(allowed.allow("/v1/events"), Some("GET, POST, HEAD"));
        assert_eq!(allowed.allow("/v1/admin/read-keys/42"), Some("DELETE"));
        assert_eq!(allowed.allow("/v1/admin/read-keys"), None);
        assert_eq!(allowed.allow("/v1/nothing"), None);
    }
}

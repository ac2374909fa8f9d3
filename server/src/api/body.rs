//! A JSON request body that the spec documents as `T` but that handlers parse themselves, so that every
//! bad field can be reported at once (serde stops at the first).

use crate::api::problem::ApiError;
use crate::state::AppState;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde_json::Value;
use std::marker::PhantomData;
use std::time::Duration;

/// The parsed JSON of a request body documented as `T`.
pub struct JsonBody<T> {
    /// The body.
    pub value: Value,
    documented_as: PhantomData<T>,
}

fn is_json(content_type: &str) -> bool {
    content_type
        .parse::<mime::Mime>()
        .is_ok_and(|mime| mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
}

/// Reads and parses a JSON body within the body limit and the body timeout.
async fn read_json(request: &Request, body: &mut RequestBody) -> Result<Value, ApiError> {
    if let Some(content_type) = request.content_type().filter(|ct| !is_json(ct)) {
        return Err(ApiError::UnsupportedMediaType(content_type.to_owned()));
    }
    let state = request.data::<AppState>();
    let limit = state.map_or(1024 * 1024, AppState::max_body_bytes);
    let timeout = state.map_or(Duration::from_secs(30), AppState::body_timeout);
    let reading = body
        .take()
        .map_err(|err| ApiError::MalformedJson(err.to_string()))?
        .into_bytes_limit(limit);
    // A client that stops sending mid-body would otherwise hold its connection (and its admission) for
    // as long as it likes.
    let bytes = tokio::time::timeout(timeout, reading)
        .await
        .map_err(|_| ApiError::BodyTimeout(timeout))?
        .map_err(|err| match err {
            poem::error::ReadBodyError::PayloadTooLarge => ApiError::PayloadTooLarge(limit),
            other => ApiError::MalformedJson(other.to_string()),
        })?;
    serde_json::from_slice(&bytes).map_err(|err| ApiError::MalformedJson(err.to_string()))
}

impl<'a, T: Type> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: T::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let value = read_json(request, body).await?;
        Ok(Self {
            value,
            documented_as: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_json_suffixed_media_types_are_accepted() {
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "application/vnd.eye+json",
        ] {
            assert!(is_json(ct), "{ct}");
        }
        for ct in ["text/plain", "application/x-www-form-urlencoded", "garbage"] {
            assert!(!is_json(ct), "{ct}");
        }
    }
}

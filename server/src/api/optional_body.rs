//! A JSON request body that may be left out entirely (an operation whose body only narrows what it does).

use crate::api::problem::{ApiError, FieldError};
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::ParseFromJSON;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde_json::Value;

/// Such bodies are small (a list of ids, some options): anything much larger is not one.
const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body that may be left out entirely (no body, or an empty one, is `None`).
pub struct OptionalJson<T>(pub Option<T>);

async fn read_optional<T: ParseFromJSON>(body: &mut RequestBody) -> Result<Option<T>, ApiError> {
    let bytes = body
        .take()
        .map_err(|err| ApiError::MalformedJson(err.to_string()))?
        .into_bytes_limit(BODY_LIMIT)
        .await
        .map_err(|err| match err {
            poem::error::ReadBodyError::PayloadTooLarge => ApiError::PayloadTooLarge(BODY_LIMIT),
            other => ApiError::MalformedJson(other.to_string()),
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|err| ApiError::MalformedJson(err.to_string()))?;
    T::parse_from_json(Some(value))
        .map(Some)
        .map_err(|err| ApiError::Invalid(vec![FieldError::new("body", err.into_message())]))
}

impl<'a, T: ParseFromJSON> ApiExtractor<'a> for OptionalJson<T> {
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
            required: false,
        })
    }

    async fn from_request(
        _request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(read_optional(body).await?))
    }
}

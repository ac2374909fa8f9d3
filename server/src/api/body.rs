//! A JSON request body that the spec documents as `T` but that handlers parse themselves, so that every
//! bad field can be reported at once (serde stops at the first).

use crate::api::problem::ApiError;
use crate::state::AppState;
use async_compression::tokio::bufread::GzipDecoder;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde_json::Value;
use std::marker::PhantomData;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

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

/// How a request body is encoded on the wire (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// As is.
    Identity,
    /// gzip (several analytics SDKs compress by default).
    Gzip,
}

impl BodyEncoding {
    /// The encoding a request declares; an encoding we cannot decode is a 415.
    pub fn of(request: &Request) -> Result<Self, ApiError> {
        let Some(declared) = request.header(poem::http::header::CONTENT_ENCODING) else {
            return Ok(Self::Identity);
        };
        match declared.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(Self::Identity),
            "gzip" | "x-gzip" => Ok(Self::Gzip),
            other => Err(ApiError::UnsupportedEncoding(other.to_owned())),
        }
    }
}

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    /// The body (decompressed, for a compressed one) is longer than the limit.
    #[error("the body exceeds {0} bytes")]
    TooLarge(usize),
    /// The connection failed, or the compressed stream is corrupt.
    #[error("the body could not be read: {0}")]
    Unreadable(#[source] std::io::Error),
}

/// Reads a body, decoding it, and stops once it grows past `limit` bytes: the limit applies to the
/// decoded stream as it streams, so a small compressed body that inflates without bound costs at most
/// `limit` bytes of memory.
pub async fn read_limited<R>(
    body: R,
    encoding: BodyEncoding,
    limit: usize,
) -> Result<Vec<u8>, BodyReadError>
where
    R: AsyncRead + Unpin,
{
    match encoding {
        BodyEncoding::Identity => read_at_most(body, limit).await,
        BodyEncoding::Gzip => {
            let mut decoder = GzipDecoder::new(BufReader::new(body));
            // Concatenated gzip members are one body (RFC 1952 allows them; `gzip -c a b` makes them).
            decoder.multiple_members(true);
            read_at_most(decoder, limit).await
        }
    }
}

async fn read_at_most<R: AsyncRead + Unpin>(
    reader: R,
    limit: usize,
) -> Result<Vec<u8>, BodyReadError> {
    let mut bytes = Vec::new();
    // One byte past the limit tells "exactly the limit" from "over it" without reading further.
    let allowed = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(allowed)
        .read_to_end(&mut bytes)
        .await
        .map_err(BodyReadError::Unreadable)?;
    if bytes.len() > limit {
        return Err(BodyReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// Reads a JSON body (decompressed) within the body limit and the body timeout, unparsed.
pub(crate) async fn read_json_bytes(
    request: &Request,
    body: &mut RequestBody,
) -> Result<Vec<u8>, ApiError> {
    if let Some(content_type) = request.content_type().filter(|ct| !is_json(ct)) {
        return Err(ApiError::UnsupportedMediaType(content_type.to_owned()));
    }
    let encoding = BodyEncoding::of(request)?;
    let state = request.data::<AppState>();
    let limit = state.map_or(1024 * 1024, AppState::max_body_bytes);
    let timeout = state.map_or(Duration::from_secs(30), AppState::body_timeout);
    let stream = body
        .take()
        .map_err(|err| ApiError::MalformedJson(err.to_string()))?
        .into_async_read();
    // A client that stops sending mid-body would otherwise hold its connection (and its admission) for
    // as long as it likes.
    let bytes = tokio::time::timeout(timeout, read_limited(stream, encoding, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout(timeout))?
        .map_err(|err| match err {
            BodyReadError::TooLarge(limit) => ApiError::PayloadTooLarge(limit),
            BodyReadError::Unreadable(err) => ApiError::MalformedJson(err.to_string()),
        })?;
    Ok(bytes)
}

/// Parses a body read by [`read_json_bytes`].
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|err| ApiError::MalformedJson(err.to_string()))
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
        let value = parse_json(&read_json_bytes(request, body).await?)?;
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

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).expect("in memory");
        encoder.finish().expect("in memory")
    }

    async fn read(body: &[u8], encoding: BodyEncoding, limit: usize) -> Result<Vec<u8>, String> {
        read_limited(body, encoding, limit)
            .await
            .map_err(|err| err.to_string())
    }

    #[tokio::test]
    async fn a_body_up_to_the_limit_is_read_whole_plain_or_compressed() {
        let json = br#"{"batch": []}"#;
        assert_eq!(
            read(json, BodyEncoding::Identity, json.len()).await,
            Ok(json.to_vec())
        );
        assert_eq!(
            read(&gzip(json), BodyEncoding::Gzip, json.len()).await,
            Ok(json.to_vec())
        );
    }

    #[tokio::test]
    async fn the_limit_applies_to_the_decompressed_stream() {
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(
            bomb.len() < 20 * 1024,
            "10 MiB of spaces compress to {} bytes",
            bomb.len()
        );
        let refused = read(&bomb, BodyEncoding::Gzip, 1024 * 1024).await;
        assert_eq!(refused, Err("the body exceeds 1048576 bytes".to_owned()));
        let plain = read(&[b' '; 11], BodyEncoding::Identity, 10).await;
        assert_eq!(plain, Err("the body exceeds 10 bytes".to_owned()));
    }

    #[tokio::test]
    async fn a_corrupt_or_truncated_gzip_stream_is_unreadable() {
        let whole = gzip(b"{}");
        for broken in [&b"not gzip at all"[..], &whole[..whole.len() - 4]] {
            let err = read(broken, BodyEncoding::Gzip, 100)
                .await
                .expect_err("corrupt");
            assert!(err.starts_with("the body could not be read"), "{err}");
        }
    }

    #[tokio::test]
    async fn concatenated_gzip_members_are_one_body() {
        let mut two = gzip(b"{\"a\":");
        two.extend(gzip(b"1}"));
        assert_eq!(
            read(&two, BodyEncoding::Gzip, 100).await,
            Ok(b"{\"a\":1}".to_vec())
        );
    }
}

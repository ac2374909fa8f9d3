//! Every error the API answers, mapped once to an RFC 9457 problem response.

use eye_worker::QueueError;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::error::ParseParamError;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, Registry};
use poem_openapi::types::{ToJSON, Type};
use poem_openapi::{ApiResponse, Object};

/// Seconds a client should wait before retrying after a 503 (queue, capacity or key verification).
const QUEUE_RETRY_AFTER_SECONDS: u32 = 2;

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct FieldError {
    /// Where the problem is, e.g. `events[3].timestamp`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A problem with the field at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Problem {
    /// A URI reference identifying the problem type.
    #[oai(rename = "type")]
    pub problem_type: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened in this occurrence.
    pub detail: String,
    /// The fields at fault, for validation problems.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldError>>,
}

/// What went wrong, as the API tells its clients.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No, unknown or revoked credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that do not grant this (an ingest key reading, a read key sending, a read key
    /// naming an application outside its scope).
    #[error("{0}")]
    Forbidden(String),
    /// The request had fields that are missing or wrong.
    #[error("the request has {} invalid field(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// The body was not JSON.
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body exceeded the limit.
    #[error("the body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    /// The body was not sent as JSON.
    #[error("expected a JSON body (Content-Type: application/json), got {0}")]
    UnsupportedMediaType(String),
    /// The body was sent in a `Content-Encoding` the API cannot decode.
    #[error("unsupported Content-Encoding {0}: send gzip or identity")]
    UnsupportedEncoding(String),
    /// The resource exists already.
    #[error("{0}")]
    Conflict(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The body did not arrive in time (`EYE_HTTP_BODY_TIMEOUT`).
    #[error("the body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// The API is at its admission bounds and no room came free before the request's deadline: nothing
    /// was accepted.
    #[error("the service is at capacity ({0}); nothing was accepted, retry later")]
    Busy(&'static str),
    /// The ingest key could not be verified (the database is unreachable and the key is not known from
    /// before): nothing was accepted.
    #[error("the ingest key cannot be verified now; nothing was accepted, retry later")]
    KeyUnverifiable,
    /// The queue could not take the events: nothing was accepted.
    #[error("the queue is unavailable; nothing was accepted, retry later")]
    QueueUnavailable(#[source] QueueError),
    /// The database did not answer in time; nothing changed, retry later.
    #[error("the database is unavailable; retry later")]
    StorageUnavailable(String),
    /// A failure the client cannot act on (logged with its cause, answered opaquely).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Invalid(_) | Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) | Self::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::QueueUnavailable(_)
            | Self::StorageUnavailable(_)
            | Self::Busy(_)
            | Self::KeyUnverifiable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem(&self) -> Problem {
        let errors = match self {
            Self::Invalid(errors) => Some(errors.clone()),
            _ => None,
        };
        Problem {
            errors,
            ..problem_for(self.status(), self.to_string())
        }
    }

    /// Wraps any internal failure.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }
}

/// A problem document for a status, with the status' reason as its title.
pub fn problem_for(status: StatusCode, detail: String) -> Problem {
    let title = status.canonical_reason().unwrap_or("Error").to_owned();
    let slug = title.to_lowercase().replace(' ', "-");
    Problem {
        problem_type: format!("https://the-eye.dev/problems/{slug}"),
        title,
        status: status.as_u16(),
        detail,
        errors: None,
    }
}

/// The HTTP response carrying a problem.
pub fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Response::builder()
        .status(status)
        .content_type("application/problem+json")
        .body(problem.to_json_string())
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn as_response(&self) -> Response {
        match self {
            Self::Internal(err) => tracing::error!(error = ?err, "request failed"),
            Self::QueueUnavailable(err) => tracing::warn!(error = %err, "queue unavailable"),
            Self::StorageUnavailable(err) => tracing::warn!(error = %err, "database unavailable"),
            _ => {}
        }
        let mut response = problem_response(&self.problem());
        if ApiError::status(self) == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                poem::http::header::RETRY_AFTER,
                poem::http::HeaderValue::from(QUEUE_RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        poem::error::ResponseError::as_response(&self)
    }
}

/// Every operation may answer a problem; the spec documents it once, as the default response.
impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "An RFC 9457 problem: 400 invalid fields (listed in `errors`), 401 bad credentials, 403 credentials that do not grant this, \
                    408 body not sent in time, 409 conflict, 413 body too large, 503 queue unavailable, service at capacity \
                    or ingest key not verifiable while the database is away (with `Retry-After`; nothing was accepted).",
                status: None,
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: "application/problem+json",
                    schema: Problem::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

/// Turns errors raised outside our handlers (routing, query parsing, auth extraction) into problems.
pub async fn catch_all(err: poem::Error) -> Response {
    if err.is::<ApiError>() {
        return err.into_response();
    }
    // A parameter poem-openapi could not parse is named like any other bad field.
    if let Some(param) = err.downcast_ref::<ParseParamError>() {
        let field = FieldError::new(param.name, param.reason.clone());
        return ApiError::Invalid(vec![field]).into_response();
    }
    let status = err.status();
    if status.is_server_error() {
        tracing::error!(error = %err, "request failed");
    }
    let detail = if status.is_server_error() {
        "internal error".to_owned()
    } else {
        err.to_string()
    };
    problem_response(&problem_for(status, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problems_list_every_bad_field() {
        let err = ApiError::Invalid(vec![
            FieldError::new("events[0].timestamp", "required"),
            FieldError::new("events[1].data", "must be a JSON object"),
        ]);
        let problem = err.problem();
        assert_eq!(problem.status, 400);
        assert_eq!(problem.title, "Bad Request");
        assert_eq!(problem.errors.map(|e| e.len()), Some(2));
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = ApiError::internal(anyhow::anyhow!("password=hunter2"));
        assert_eq!(err.problem().detail, "internal error");
    }

    #[test]
    fn every_503_tells_the_client_when_to_retry() {
        for err in [ApiError::Busy("requests"), ApiError::KeyUnverifiable] {
            let response = err.into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()["retry-after"], "2");
        }
    }

    #[test]
    fn queue_unavailable_tells_the_client_when_to_retry() {
        let response =
            ApiError::QueueUnavailable(QueueError::Unavailable("down".into())).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "2");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
}

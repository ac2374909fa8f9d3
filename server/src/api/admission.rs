//! Admission control for ingest: how many requests, and how many body bytes, an API process holds between
//! accepting a request and the queue taking its events. Without it a stalled queue made every request wait
//! and the process grew without limit (46 MB to 597 MB under 200 requests of 1,000 events). A request that
//! finds no room waits at most its deadline, then gets 503 with nothing queued.

use crate::api::body::{JsonBody, parse_json, read_json_bytes};
use crate::api::problem::ApiError;
use crate::metrics::Refusal;
use poem::{Request, RequestBody};
use poem_openapi::registry::{MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The bounds (from `EYE_INGEST_*`).
#[derive(Debug, Clone, Copy)]
pub struct AdmissionSettings {
    /// Ingest requests handled at once.
    pub max_concurrent: u32,
    /// Body bytes held at once.
    pub max_inflight_bytes: usize,
    /// The longest a request waits for admission and for the queue.
    pub deadline: Duration,
}

/// The shared bounds (cheap to clone).
#[derive(Clone)]
pub struct Admission {
    requests: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    max_weight: u32,
    deadline: Duration,
}

/// A request's room in the bounds, held until its answer; and when it must give up.
pub struct Admitted {
    _request: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
    /// After this, a request whose events are not yet being pushed is answered 503.
    pub deadline: Instant,
}

impl Admission {
    /// Bounds as configured.
    pub fn new(settings: AdmissionSettings) -> Self {
        let max_weight = u32::try_from(settings.max_inflight_bytes.max(1)).unwrap_or(u32::MAX);
        Self {
            requests: Arc::new(Semaphore::new(settings.max_concurrent.max(1) as usize)),
            bytes: Arc::new(Semaphore::new(max_weight as usize)),
            max_weight,
            deadline: settings.deadline,
        }
    }

    /// Waits, up to the deadline, for room for one request of `body_bytes` (declared, or the body limit
    /// when unknown). A body larger than the whole budget is admitted alone.
    pub async fn admit(&self, body_bytes: usize) -> Result<Admitted, ApiError> {
        let deadline = Instant::now() + self.deadline;
        let request = tokio::time::timeout_at(deadline, self.requests.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::Busy("concurrent ingest requests"))?
            .map_err(ApiError::internal)?;
        let weight = u32::try_from(body_bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.max_weight);
        let bytes =
            tokio::time::timeout_at(deadline, self.bytes.clone().acquire_many_owned(weight))
                .await
                .map_err(|_| ApiError::Busy("ingest bytes in flight"))?
                .map_err(ApiError::internal)?;
        Ok(Admitted {
            _request: request,
            _bytes: bytes,
            deadline,
        })
    }
}

/// An ingest body documented as `T`, read once its request is admitted and left for the handler to
/// parse (a batch of events parses it into events directly, see `wire::parse_batch_body`).
pub struct AdmittedBody<T> {
    /// The JSON body as read (decompressed).
    pub bytes: Vec<u8>,
    /// The request's room and deadline; dropping it frees the room.
    pub admitted: Admitted,
    documented_as: std::marker::PhantomData<T>,
}

impl<T> AdmittedBody<T> {
    /// The body parsed as JSON, and the request's admission; the bytes are dropped once parsed.
    pub fn into_json(self) -> Result<(Value, Admitted), ApiError> {
        Ok((parse_json(&self.bytes)?, self.admitted))
    }
}

/// The body bytes a request will hold once read: its declared length, unless it is compressed (a
/// compressed body may inflate up to the limit).
fn declared_length(request: &Request) -> Option<usize> {
    if request
        .header(poem::http::header::CONTENT_ENCODING)
        .is_some()
    {
        return None;
    }
    request
        .header(poem::http::header::CONTENT_LENGTH)
        .and_then(|length| length.parse().ok())
}

impl<'a, T: Type> ApiExtractor<'a> for AdmittedBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        JsonBody::<T>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        JsonBody::<T>::request_meta()
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = crate::api::auth::state(request)?;
        let limit = state.max_body_bytes();
        let weight = declared_length(request).map_or(limit, |length| length.min(limit));
        let mut admitted = state.admission().admit(weight).await.inspect_err(|err| {
            if matches!(err, ApiError::Busy(_)) {
                state.metrics().record_refused(Refusal::Capacity);
            }
        })?;
        let reading = Instant::now();
        let bytes = read_json_bytes(request, body).await?;
        // The deadline bounds waiting for the service, not the client's upload.
        admitted.deadline += reading.elapsed();
        Ok(Self {
            bytes,
            admitted,
            documented_as: std::marker::PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_concurrent: u32, max_inflight_bytes: usize) -> Admission {
        Admission::new(AdmissionSettings {
            max_concurrent,
            max_inflight_bytes,
            deadline: Duration::from_secs(5),
        })
    }

    #[test]
    fn a_compressed_body_weighs_the_limit_whatever_its_declared_length() {
        let request = |encoding: Option<&str>| {
            let builder = Request::builder().header("content-length", "1000");
            match encoding {
                Some(encoding) => builder.header("content-encoding", encoding),
                None => builder,
            }
            .finish()
        };
        assert_eq!(declared_length(&request(None)), Some(1000));
        assert_eq!(declared_length(&request(Some("gzip"))), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_over_the_concurrency_bound_waits_its_deadline_then_is_refused() {
        let admission = admission(1, 1000);
        let first = admission.admit(10).await.expect("room");
        let second = admission.admit(10).await;
        assert!(matches!(second, Err(ApiError::Busy(_))));
        drop(first);
        assert!(
            admission.admit(10).await.is_ok(),
            "room again once answered"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_in_flight_are_bounded_and_an_oversized_body_is_admitted_alone() {
        let admission = admission(10, 1000);
        let held = admission.admit(600).await.expect("room");
        assert!(matches!(admission.admit(600).await, Err(ApiError::Busy(_))));
        assert!(admission.admit(400).await.is_ok(), "what fits is admitted");
        drop(held);
        assert!(admission.admit(5000).await.is_ok(), "alone, at the budget");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_request_is_admitted_when_room_comes_free_before_its_deadline() {
        let admission = admission(1, 1000);
        let first = admission.admit(10).await.expect("room");
        let waiting = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit(10).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(first);
        assert!(waiting.await.expect("no panic").is_ok());
    }
}

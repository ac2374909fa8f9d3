//! One delivery attempt to `POST {EYE_NOTIFY_URL}/v1/notify`, and the classification of its result.

use chrono::{DateTime, Utc};
use eye_store::NotificationRecord;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::json;
use std::time::Duration;

/// What one attempt ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// 2xx.
    Delivered,
    /// Worth retrying: connection error, timeout, 408, 429, 5xx.
    Transient {
        /// What happened.
        error: String,
        /// The service's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// Retrying gives the same answer: any other 4xx (or 3xx).
    Permanent {
        /// What happened.
        error: String,
    },
}

/// Sends one notification; the `Idempotency-Key` lets the service drop an attempt it already handled.
pub(crate) async fn send(
    client: &reqwest::Client,
    base_url: &str,
    record: &NotificationRecord,
) -> Attempt {
    let body = json!({
        "notification_id": record.id,
        "user_id": record.user_id,
        "rule": record.rule,
        "message": record.message,
        "occasion": record.occasion,
        "triggered_at": record.triggered_at,
    });
    let url = format!("{}/v1/notify", base_url.trim_end_matches('/'));
    let response = client
        .post(url)
        .header("Idempotency-Key", record.id.to_string())
        .json(&body)
        .send()
        .await;
    match response {
        Ok(response) => classify(response.status(), response.headers(), Utc::now()),
        Err(err) => Attempt::Transient {
            error: format!("request failed: {err}"),
            retry_after: None,
        },
    }
}

/// Sorts an answer into delivered, transient or permanent.
pub(crate) fn classify(status: StatusCode, headers: &HeaderMap, now: DateTime<Utc>) -> Attempt {
    let error = format!("notify service answered {status}");
    if status.is_success() {
        Attempt::Delivered
    } else if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        Attempt::Transient {
            error,
            retry_after: retry_after(headers, now),
        }
    } else {
        Attempt::Permanent { error }
    }
}

/// `Retry-After` as delay-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn transient(retry_after: Option<u64>) -> bool {
        matches!(classify_with(503, retry_after), Attempt::Transient { .. })
    }

    fn classify_with(status: u16, retry_after: Option<u64>) -> Attempt {
        let mut headers = HeaderMap::new();
        if let Some(seconds) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        let status = StatusCode::from_u16(status).expect("valid status");
        classify(status, &headers, Utc::now())
    }

    #[test]
    fn statuses_are_classified_as_delivered_transient_or_permanent() {
        let cases = [
            (200, "delivered"),
            (202, "delivered"),
            (408, "transient"),
            (429, "transient"),
            (500, "transient"),
            (503, "transient"),
            (400, "permanent"),
            (401, "permanent"),
            (404, "permanent"),
            (422, "permanent"),
        ];
        for (status, expected) in cases {
            let kind = match classify_with(status, None) {
                Attempt::Delivered => "delivered",
                Attempt::Transient { .. } => "transient",
                Attempt::Permanent { .. } => "permanent",
            };
            assert_eq!(kind, expected, "{status}");
        }
        assert!(transient(Some(3)));
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        let cases = [
            ("7", Some(7)),
            ("Thu, 01 Jan 2026 00:00:30 GMT", Some(30)),
            ("Wed, 31 Dec 2025 23:00:00 GMT", Some(0)),
            ("soon", None),
        ];
        for (value, expected) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_static(value));
            let got = retry_after(&headers, now).map(|d| d.as_secs());
            assert_eq!(got, expected, "{value}");
        }
    }
}

//! `POST /v1/events` and `/v1/event` bodies: any bytes that are JSON go through the batch and event parsers.
#![no_main]

use eye_server::api::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = wire::parse_batch(&body);
        let _ = wire::parse_one(&body);
    }
});

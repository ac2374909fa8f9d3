//! The fitness app's shape on `POST /v1/event`.
#![no_main]

use eye_server::api::legacy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) {
        if legacy::is_legacy(&body) {
            let _ = legacy::parse(&body);
        }
    }
});

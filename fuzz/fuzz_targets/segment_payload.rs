//! Segment tracking API bodies: `/v1/batch` and the single calls.
#![no_main]

use eye_domain::ApplicationId;
use eye_server::api::segment;
use eye_server::api::segment_map::{self, Call, Envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let application = ApplicationId::generate();
    let envelope = Envelope {
        application_id: application,
        call: Some(Call::Track),
        context: None,
        sent_at: None,
        received_at: chrono::Utc::now(),
    };
    let _ = segment_map::parse_message(body.clone(), &envelope, "");
    let _ = segment::parse_batch(body, application);
});

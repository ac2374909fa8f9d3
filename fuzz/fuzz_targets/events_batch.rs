//! `POST /v1/events` and `/v1/event` bodies: any bytes go through the batch parsers, and the JSON ones
//! through the event parser. Differential: a body the direct pass accepts must be accepted alike by the
//! field-by-field pass, with the same events (ids aside: each pass generates the ones a body leaves out).
#![no_main]

use eye_domain::NewEvent;
use eye_server::api::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let direct = wire::parse_batch_directly(data);
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        assert!(
            direct.is_none(),
            "the direct pass accepted a body that is not JSON"
        );
        return;
    };
    let thorough = wire::parse_batch(body.clone());
    if let Some(direct) = direct {
        let thorough = thorough.expect("the direct pass accepted a body the thorough pass refuses");
        assert_eq!(direct.len(), thorough.len());
        let thorough: Vec<NewEvent> = thorough
            .into_iter()
            .zip(&direct)
            .map(|(event, direct)| NewEvent {
                event_id: direct.event_id,
                ..event
            })
            .collect();
        assert_eq!(direct, thorough);
    }
    let _ = wire::parse_one(body);
});

//! The request body reader: any bytes as a gzip body (and as a plain one) within a small limit.
#![no_main]

use eye_server::api::body::{BodyEncoding, BodyReadError, read_limited};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    runtime.block_on(async {
        for encoding in [BodyEncoding::Gzip, BodyEncoding::Identity] {
            match read_limited(data, encoding, LIMIT).await {
                Ok(bytes) => assert!(bytes.len() <= LIMIT),
                Err(BodyReadError::TooLarge(limit)) => assert_eq!(limit, LIMIT),
                Err(BodyReadError::Unreadable(_)) => {}
            }
        }
    });
});

//! OTLP/protobuf trace requests: llmhub's borrowing decoder, then normalization, deduplication,
//! pricing and metrics, as the receivers run them. Any input must come back as a value or an
//! error, never a panic.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(views) = llmhub::receivers::otlp::wire::decode_request(data) {
        let _ = common::processor().process_views(&views, llmhub::metrics::Transport::Grpc);
    }
});

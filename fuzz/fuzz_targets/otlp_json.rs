//! OTLP/JSON trace and logs requests: the JSON decoders, then the same processing as the receivers.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = llmhub::receivers::otlp::json::decode_traces(data) {
        let _ = common::processor().process(&req, llmhub::metrics::Transport::HttpJson);
    }
    if let Ok(req) = llmhub::receivers::otlp::json_logs::decode_logs(data) {
        let _ = common::processor().process_logs(&req, llmhub::metrics::Transport::HttpJson);
    }
});

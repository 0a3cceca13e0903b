//! The quantile summary's on-disk format (what the SQL extension deserializes): decoding, and
//! merging the bytes into a summary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmhub_sketch::QuantileSketch;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = QuantileSketch::from_bytes(data) {
        let _ = s.quantile(0.5);
    }
    let mut acc = QuantileSketch::default();
    let _ = acc.merge_bytes(data, &mut Vec::new());
});

//! The quantile summary's on-disk format (what the SQL extension deserializes): decoding, and
//! merging the bytes into a summary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmhub_sketch::{Mapping, QuantileSketch, DEFAULT_ALPHA, DEFAULT_MAX_BUCKETS};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = QuantileSketch::from_bytes(data) {
        for q in [0.0, 0.5, 0.99, 1.0] {
            let _ = s.quantile(q);
        }
        let _ = s.error_bound();
        // Whatever decodes re-encodes to a summary that decodes to itself (either format).
        let again = QuantileSketch::from_bytes(&s.to_bytes());
        assert_eq!(again.as_ref(), Ok(&s));
    }
    // Merged into a new (format 2) summary and into a format-1 one.
    let mut acc = QuantileSketch::default();
    let _ = acc.merge_bytes(data, &mut Vec::new());
    if let Ok(mut old) = QuantileSketch::with_mapping(Mapping::Logarithmic, DEFAULT_ALPHA, DEFAULT_MAX_BUCKETS) {
        let _ = old.merge_bytes(data, &mut Vec::new());
    }
});

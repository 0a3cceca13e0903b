//! Trace and span ids for events that carry none, derived from what identifies the event, so the
//! same event sent twice is the same call (deduplicated, and one row in the database).

use sha2::{Digest, Sha256};

/// A derived trace and span id.
pub(super) struct Ids {
    pub trace: [u8; 16],
    pub span: [u8; 8],
}

/// SHA-256 of the parts, each prefixed by its length (so `("ab", "c")` and `("a", "bc")` differ).
fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

impl Ids {
    /// The trace from `trace_parts` (what groups the event's calls), the span from `span_parts`
    /// (what identifies this one event). Never all zero.
    pub fn derive(trace_parts: &[&[u8]], span_parts: &[&[u8]]) -> Ids {
        let t = digest(trace_parts);
        let s = digest(span_parts);
        let mut trace: [u8; 16] = t[..16].try_into().unwrap_or([1; 16]);
        let mut span: [u8; 8] = s[..8].try_into().unwrap_or([1; 8]);
        if trace == [0; 16] {
            trace[15] = 1;
        }
        if span == [0; 8] {
            span[7] = 1;
        }
        Ids { trace, span }
    }
}

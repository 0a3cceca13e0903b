//! Duplicate emission: one model call reported twice (a wrapper instrumentation and the provider
//! SDK's own spans, often in two traces, or a client retrying an export) counts once.
//!
//! A call is a duplicate of one seen before when, in order:
//! 1. it has the same trace id and span id (a retried export) — checked for every role, so a retried
//!    agent or tool span is not observed twice either; or, for model calls only,
//! 2. it has the same provider response id (`chatcmpl-…`, `msg_…`) under the same service and
//!    provider, and the two overlap in time (mock servers that answer every call with one fixed id
//!    make sequential calls, which never overlap), or
//! 3. at least one of the two has no response id, and they share the service, normalized model and
//!    identical token usage, their time ranges overlap, and they come from different
//!    instrumentation scopes (two instrumentations of one call; two identical calls made by one
//!    instrumentation are both kept). A remembered call absorbs one copy only.
//!
//! Memory and time are bounded: at most `max_entries` keys are remembered, oldest forgotten first,
//! and at most the 64 most recent calls of one fingerprint are compared.
//!
//! Response keys and fingerprints are remembered as 128-bit keyed digests of their strings, not
//! the strings: checking a call then allocates nothing. Two different keys share a digest with
//! probability about 2^-128 per pair (the digest is keyed per process, so a client cannot aim
//! for it); scopes, which only ever tell two instrumentations apart, are 64-bit digests.
//!
//! Layout: every remembered key takes one 64-byte slot of a ring, in arrival order, and one entry
//! in a single table from its digest (span, response and fingerprint digests are kept apart by a
//! leading tag) to the sequence number of its newest slot. A fingerprint's slot links to the
//! previous slot of the same fingerprint, so its recent calls are found without a list of their
//! own. Writing a new slot forgets the oldest one in its place, and its table entry unless a newer
//! slot took it over. Nothing is allocated once the ring is full.

use crate::record::{LlmCall, SpanRole};
use std::collections::hash_map::{Entry, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// Why a call was found to be a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateReason {
    /// Same trace id and span id.
    SpanId,
    /// Same provider response id.
    ResponseId,
    /// Same service, model and usage, overlapping in time, from another instrumentation.
    Fingerprint,
}

impl DuplicateReason {
    /// Stable name for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicateReason::SpanId => "span_id",
            DuplicateReason::ResponseId => "response_id",
            DuplicateReason::Fingerprint => "fingerprint",
        }
    }
}

/// Most recent calls compared per fingerprint: bounds the scan of each check (identical calls,
/// e.g. fixed-size embedding chunks, are common).
const MAX_PER_FINGERPRINT: usize = 64;

/// Resident memory one remembered key takes, about: its 64-byte slot, its table entry (32 bytes and
/// a control byte, at most half the buckets full after a doubling) and what the ring's growth left
/// with the allocator. Measured: 152 bytes per key (15.3 MB more resident memory after 100,000
/// keys of realistic model calls); rounded up for allocator slack.
pub const APPROX_BYTES_PER_KEY: u64 = 192;

/// The leading tag of each digest kind.
const SPAN: u8 = 0;
const RESPONSE: u8 = 1;
const PRINT: u8 = 2;

/// Slot flags.
const HAS_RESPONSE_ID: u8 = 1;
/// A fingerprint slot that already absorbed its one copy.
const CONSUMED: u8 = 2;

/// One remembered key.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    digest: u128,
    start: u64,
    end: u64,
    /// Digest of the instrumentation scope's name (fingerprints only).
    scope: u64,
    /// Sequence number of the previous slot of the same fingerprint when it was written, 0 for none.
    prev: u64,
    flags: u8,
}

/// The table's keys are already keyed random digests: their low 64 bits are the hash.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u128` keys are hashed; fold anything else in rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// Remembers recent calls and answers whether a new one was already counted.
#[derive(Debug)]
pub struct Deduplicator {
    max_entries: usize,
    /// Sequence number of the next slot; slot `seq` lives at `ring[(seq - 1) % max_entries]`.
    next: u64,
    ring: Vec<Slot>,
    /// Digest → sequence number of its newest slot. Every entry points at a slot still in the ring.
    newest: HashMap<u128, u64, BuildHasherDefault<DigestHasher>>,
    /// Two independently keyed hashers: one digest's halves.
    hashers: (ahash::RandomState, ahash::RandomState),
}

impl Deduplicator {
    /// A deduplicator remembering at most `max_entries` keys (at least 1).
    pub fn new(max_entries: usize) -> Self {
        Deduplicator {
            max_entries: max_entries.max(1),
            next: 1,
            ring: Vec::new(),
            newest: HashMap::default(),
            hashers: (ahash::RandomState::new(), ahash::RandomState::new()),
        }
    }

    fn digest<T: std::hash::Hash>(&self, value: &T) -> u128 {
        (u128::from(self.hashers.0.hash_one(value)) << 64) | u128::from(self.hashers.1.hash_one(value))
    }

    /// Number of remembered keys (for self-monitoring).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The slot of sequence number `seq`, if it is still remembered.
    fn slot(&self, seq: u64) -> Option<&Slot> {
        let oldest = self.next - self.ring.len() as u64;
        (seq >= oldest && seq < self.next).then(|| &self.ring[self.index(seq)])
    }

    fn index(&self, seq: u64) -> usize {
        ((seq - 1) % self.max_entries as u64) as usize
    }

    /// Writes `slot` as the newest of its digest, forgetting the oldest slot when the ring is full
    /// (and its table entry, unless a newer slot of the same digest took it over).
    fn remember(&mut self, slot: Slot) {
        let seq = self.next;
        self.next += 1;
        let digest = slot.digest;
        if self.ring.len() < self.max_entries {
            self.ring.push(slot);
        } else {
            let i = self.index(seq);
            let old = std::mem::replace(&mut self.ring[i], slot);
            if let Entry::Occupied(e) = self.newest.entry(old.digest) {
                if *e.get() == seq - self.max_entries as u64 {
                    e.remove();
                }
            }
        }
        self.newest.insert(digest, seq);
    }

    /// Checks a call and remembers it. Returns the reason when it duplicates one seen before.
    /// Every role is checked for a retried export (same span id); only model calls are matched by
    /// response id and fingerprint.
    pub fn check(&mut self, call: &LlmCall) -> Option<DuplicateReason> {
        // (Each lookup into the table is a cache miss at its size; a lookup followed by an insert
        // of the same key finds its line in the cache.)
        let span = self.digest(&(SPAN, call.trace_id, call.span_id));
        if self.newest.contains_key(&span) {
            return Some(DuplicateReason::SpanId);
        }
        self.remember(Slot {
            digest: span,
            ..Slot::default()
        });
        if call.role != SpanRole::ModelCall {
            return None;
        }
        let (start, end) = (call.start_unix_nano, call.end_unix_nano);
        let response = call.response_id.as_deref().map(|id| {
            self.digest(&(
                RESPONSE,
                call.service_name.as_str(),
                call.provider.as_deref().unwrap_or_default(),
                id,
            ))
        });
        if let Some(r) = response {
            let seen = self.newest.get(&r).and_then(|&seq| self.slot(seq));
            if seen.is_some_and(|s| s.start <= end && start <= s.end) {
                return Some(DuplicateReason::ResponseId);
            }
        }
        let print = match (&call.usage, &call.normalized_model) {
            (Some(usage), Some(model)) if usage.total() > 0 => {
                Some(self.digest(&(PRINT, call.service_name.as_str(), model.as_str(), usage)))
            }
            _ => None,
        };
        let remember_response = |d: &mut Self| {
            if let Some(r) = response {
                d.remember(Slot {
                    digest: r,
                    start,
                    end,
                    ..Slot::default()
                });
            }
        };
        let Some(print) = print else {
            remember_response(self);
            return None;
        };
        let scope = self.hashers.0.hash_one(call.scope_name.as_str());
        let latest = self.newest.get(&print).copied().unwrap_or(0);
        if let Some(seq) = self.match_print(latest, scope, response.is_some(), start, end) {
            // One copy matches one other copy only: a third identical call is a real call.
            let i = self.index(seq);
            self.ring[i].flags |= CONSUMED;
            remember_response(self);
            return Some(DuplicateReason::Fingerprint);
        }
        remember_response(self);
        self.remember(Slot {
            digest: print,
            start,
            end,
            scope,
            // (Once forgotten, it stays so: a walk stops there.)
            prev: latest,
            flags: if response.is_some() { HAS_RESPONSE_ID } else { 0 },
        });
        None
    }

    /// The newest remembered call of a fingerprint chain, starting at `seq`, that a call from
    /// `scope` over `start..=end` duplicates.
    fn match_print(&self, mut seq: u64, scope: u64, has_response_id: bool, start: u64, end: u64) -> Option<u64> {
        for _ in 0..MAX_PER_FINGERPRINT {
            let s = self.slot(seq)?;
            if s.flags & CONSUMED == 0
                && s.scope != scope
                && !(s.flags & HAS_RESPONSE_ID != 0 && has_response_id)
                && s.start <= end
                && start <= s.end
            {
                return Some(seq);
            }
            seq = s.prev;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;
    use crate::record::{AgentContext, CallStatus, Timings, Usage};
    use std::collections::VecDeque;

    fn call(span: u8, scope: &str, response_id: Option<&str>, start: u64, end: u64) -> LlmCall {
        LlmCall {
            trace_id: [span; 16],
            span_id: [span; 8],
            parent_span_id: None,
            start_unix_nano: start,
            end_unix_nano: end,
            tenant: None,
            service_name: "svc".into(),
            environment: None,
            dialect: Dialect::OtelGenAi,
            scope_name: scope.into(),
            role: SpanRole::ModelCall,
            operation: "chat".into(),
            provider: Some("openai".into()),
            request_model: Some("gpt-4o".into()),
            response_model: None,
            normalized_model: Some("gpt-4o".into()),
            response_id: response_id.map(Into::into),
            streaming: None,
            finish_reasons: vec![],
            status: CallStatus::Ok,
            error_class: None,
            error_type: None,
            server_address: None,
            server_port: None,
            usage: Some(Usage {
                input_uncached: 10,
                output: 5,
                ..Default::default()
            }),
            counts_usage: true,
            timings: Timings::default(),
            sdk_reported_cost_usd: None,
            service_tier: None,
            cost: None,
            price_status: crate::record::PriceStatus::NotPriced,
            agent: AgentContext::default(),
        }
    }

    #[test]
    fn retried_export_is_a_duplicate() {
        let mut d = Deduplicator::new(100);
        assert_eq!(d.check(&call(1, "a", None, 0, 10)), None);
        assert_eq!(d.check(&call(1, "a", None, 0, 10)), Some(DuplicateReason::SpanId));
    }

    #[test]
    fn wrapper_and_sdk_share_a_response_id() {
        let mut d = Deduplicator::new(100);
        assert_eq!(d.check(&call(1, "wrapper", Some("chatcmpl-1"), 0, 100)), None);
        assert_eq!(
            d.check(&call(2, "openai-sdk", Some("chatcmpl-1"), 5, 95)),
            Some(DuplicateReason::ResponseId)
        );
    }

    #[test]
    fn a_mock_server_fixed_id_on_sequential_calls_is_not_a_duplicate() {
        let mut d = Deduplicator::new(100);
        assert_eq!(d.check(&call(1, "a", Some("chatcmpl-123"), 0, 100)), None);
        assert_eq!(d.check(&call(2, "a", Some("chatcmpl-123"), 200, 300)), None);
    }

    #[test]
    fn fingerprint_needs_another_scope_and_overlap() {
        let mut d = Deduplicator::new(100);
        assert_eq!(d.check(&call(1, "wrapper", None, 0, 100)), None);
        // Same instrumentation, identical usage, overlapping: two real parallel calls.
        assert_eq!(d.check(&call(2, "wrapper", None, 10, 90)), None);
        // Another instrumentation, overlapping: the same call seen twice.
        assert_eq!(
            d.check(&call(3, "sdk", None, 10, 90)),
            Some(DuplicateReason::Fingerprint)
        );
        // Another instrumentation, later in time: a new call.
        assert_eq!(d.check(&call(4, "sdk", None, 500, 600)), None);
    }

    #[test]
    fn a_retried_agent_span_is_a_duplicate_too() {
        let mut d = Deduplicator::new(100);
        let mut agent = call(9, "a", None, 0, 10);
        agent.role = SpanRole::Agent;
        assert_eq!(d.check(&agent), None);
        assert_eq!(d.check(&agent), Some(DuplicateReason::SpanId));
    }

    #[test]
    fn a_remembered_call_absorbs_one_copy_only() {
        let mut d = Deduplicator::new(100);
        assert_eq!(d.check(&call(1, "wrapper", None, 0, 100)), None);
        assert_eq!(
            d.check(&call(2, "sdk", None, 10, 90)),
            Some(DuplicateReason::Fingerprint)
        );
        // A second, genuinely parallel identical call seen by the SDK only is counted.
        assert_eq!(d.check(&call(3, "sdk", None, 20, 80)), None);
    }

    #[test]
    fn many_identical_calls_stay_cheap_to_check() {
        let mut d = Deduplicator::new(1_000_000);
        for i in 0..50_000u64 {
            let mut c = call(0, "embedder", None, i * 10, i * 10 + 5);
            c.trace_id[..8].copy_from_slice(&i.to_be_bytes());
            assert_eq!(d.check(&c), None);
        }
        assert_eq!(d.len(), 100_000);
        // The chain of one fingerprint is walked 64 slots deep at most: a copy of the oldest of
        // these calls from another instrumentation is not found any more, one of a recent is.
        let mut old = call(0, "sdk", None, 0, 5);
        old.trace_id = [0xee; 16];
        assert_eq!(d.check(&old), None);
        let mut recent = call(0, "sdk", None, 499_990, 499_995);
        recent.trace_id = [0xef; 16];
        assert_eq!(d.check(&recent), Some(DuplicateReason::Fingerprint));
    }

    #[test]
    fn two_different_response_ids_are_never_merged() {
        let mut d = Deduplicator::new(100);
        assert_eq!(d.check(&call(1, "wrapper", Some("a"), 0, 100)), None);
        assert_eq!(d.check(&call(2, "sdk", Some("b"), 0, 100)), None);
    }

    #[test]
    fn memory_is_bounded() {
        let mut d = Deduplicator::new(50);
        for i in 0..=255u8 {
            d.check(&call(
                i,
                "a",
                Some(&format!("id-{i}")),
                u64::from(i) * 1000,
                u64::from(i) * 1000 + 10,
            ));
        }
        assert!(d.len() <= 50, "remembered {}", d.len());
        assert!(d.newest.len() <= 50, "table holds {}", d.newest.len());
        // Every table entry points at a slot still remembered, of the same digest.
        for (digest, &seq) in &d.newest {
            assert_eq!(d.slot(seq).map(|s| s.digest), Some(*digest));
        }
    }

    /// The rules of the module doc, written plainly: every remembered key in one list, oldest
    /// first, searched from the newest.
    struct Plain {
        max: usize,
        keys: VecDeque<PlainKey>,
    }

    #[derive(Clone, PartialEq)]
    enum PlainKey {
        Span([u8; 16], [u8; 8]),
        Response {
            key: (String, String, String),
            start: u64,
            end: u64,
        },
        Print {
            key: (String, String, Usage),
            scope: String,
            has_id: bool,
            start: u64,
            end: u64,
            used: bool,
        },
    }

    impl Plain {
        fn add(&mut self, k: PlainKey) {
            self.keys.push_back(k);
            if self.keys.len() > self.max {
                self.keys.pop_front();
            }
        }

        fn check(&mut self, c: &LlmCall) -> Option<DuplicateReason> {
            let span = PlainKey::Span(c.trace_id, c.span_id);
            if self.keys.contains(&span) {
                return Some(DuplicateReason::SpanId);
            }
            self.add(span);
            if c.role != SpanRole::ModelCall {
                return None;
            }
            let (start, end) = (c.start_unix_nano, c.end_unix_nano);
            let rkey = c
                .response_id
                .clone()
                .map(|id| (c.service_name.clone(), c.provider.clone().unwrap_or_default(), id));
            if let Some(k) = &rkey {
                let newest = self.keys.iter().rev().find_map(|e| match e {
                    PlainKey::Response { key, start, end } if key == k => Some((*start, *end)),
                    _ => None,
                });
                if newest.is_some_and(|(s, e)| s <= end && start <= e) {
                    return Some(DuplicateReason::ResponseId);
                }
            }
            let remember_response = |p: &mut Plain| {
                if let Some(key) = rkey.clone() {
                    p.add(PlainKey::Response { key, start, end });
                }
            };
            let pkey = match (&c.usage, &c.normalized_model) {
                (Some(u), Some(m)) if u.total() > 0 => (c.service_name.clone(), m.clone(), *u),
                _ => {
                    remember_response(self);
                    return None;
                }
            };
            let has_id = rkey.is_some();
            let hit = self
                .keys
                .iter_mut()
                .rev()
                .filter(|e| matches!(e, PlainKey::Print { key, .. } if *key == pkey))
                .take(MAX_PER_FINGERPRINT)
                .find(|e| match e {
                    PlainKey::Print {
                        scope,
                        has_id: h,
                        start: s,
                        end: e,
                        used,
                        ..
                    } => !*used && *scope != c.scope_name && !(*h && has_id) && *s <= end && start <= *e,
                    _ => false,
                });
            if let Some(PlainKey::Print { used, .. }) = hit {
                *used = true;
                remember_response(self);
                return Some(DuplicateReason::Fingerprint);
            }
            remember_response(self);
            self.add(PlainKey::Print {
                key: pkey,
                scope: c.scope_name.clone(),
                has_id,
                start,
                end,
                used: false,
            });
            None
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
        /// Over small universes (few ids, scopes, usages and times, so that every rule and the
        /// forgetting of old keys fire often), the ring answers as the plain list does.
        #[test]
        fn answers_as_the_plain_rules_do(
            max in 1usize..40,
            calls in proptest::collection::vec(
                (0u8..24, 0u8..3, 0u8..4, 0u64..3, 0u64..60, 0u64..15, proptest::bool::weighted(0.85)),
                1..200,
            ),
        ) {
            let mut ring = Deduplicator::new(max);
            let mut plain = Plain { max, keys: VecDeque::new() };
            for (i, &(span, scope, id, tokens, start, len, model)) in calls.iter().enumerate() {
                let id = ["", "a", "b", "c"][usize::from(id)];
                let mut c = call(span, ["x", "y", "z"][usize::from(scope)], (!id.is_empty()).then_some(id), start, start + len);
                c.usage = Some(Usage { input_uncached: tokens * 7, output: tokens, ..Default::default() });
                if !model {
                    c.role = SpanRole::Tool;
                }
                proptest::prop_assert_eq!(ring.check(&c), plain.check(&c), "call {} of {:?}", i, calls);
                proptest::prop_assert!(ring.len() <= max);
            }
        }
    }
}

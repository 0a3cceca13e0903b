//! Duplicate emission: one model call reported twice (a wrapper instrumentation and the provider
//! SDK's own spans, often in two traces, or a client retrying an export) counts once.
//!
//! A call is a duplicate of one seen before when, in order:
//! 1. it has the same trace id and span id (a retried export) — checked for every role, so a retried
//!    agent or tool span is not observed twice either; or, for model calls only,
//! 2. it has the same provider response id (`chatcmpl-…`, `msg_…`) under the same service and
//!    provider, and the two overlap in time (mock servers that answer every call with one fixed id
//!    make sequential calls, which never overlap), or
//! 3. it is nested with a model call of the same trace — its parent span is one, or it is the
//!    parent span of one — from a different instrumentation scope (or from the same one when the
//!    copy seen first reported usage and this one none: a span that only wraps the call), of the same model
//!    (snapshot dates aside; a side that names no model matches), overlapping in time: a wrapper's
//!    span around the SDK's own span of the same call, whichever arrives first, in one request or
//!    two; or
//! 4. at least one of the two has no response id, and they share the service, normalized model and
//!    identical token usage — or both failed without usage, with the same error class — their time
//!    ranges overlap, and they come from different instrumentation scopes (two instrumentations of
//!    one call, in separate traces; two identical calls made by one instrumentation are both kept).
//!
//! A remembered call absorbs one copy only, under rules 3 and 4 (a wrapper around a retry that
//! made two provider calls absorbs one of them; the other is a call). The first copy to arrive is
//! the one counted: metrics only ever go up, so a later, more detailed copy cannot replace it.
//! Instrumentations export a span when it ends, so the SDK's own inner span, which ends first and
//! carries the provider's usage (cache buckets, reasoning, the response id), normally arrives
//! first.
//!
//! Memory and time are bounded: at most `max_entries` keys are remembered, oldest forgotten first,
//! and at most the 64 most recent calls of one fingerprint are compared.
//!
//! Response keys and fingerprints are remembered as 128-bit keyed digests of their strings, not
//! the strings: checking a call then allocates nothing. Two different keys share a digest with
//! probability about 2^-128 per pair (the digest is keyed per process, so a client cannot aim
//! for it); scopes, which only ever tell two instrumentations apart, are 64-bit digests.
//!
//! Two-phase use: a request whose records must first be accepted by an exporter (the database
//! sink's queue) checks its calls under a [`Journal`] ([`Deduplicator::begin`],
//! [`Deduplicator::check_in`]). What they add to the window is pending until the request is
//! settled: [`Deduplicator::settle`] once every exporter took the records, [`Deduplicator::forget`]
//! when one refused them, which takes back every key they added and every copy they absorbed, so
//! the client's retry of a refused request is not taken for a duplicate. A call found to duplicate
//! a pending one names that request ([`Journal::waits`]); its own request must not be acknowledged
//! before that one is settled, and must be refused if that one was forgotten.
//!
//! Layout: every remembered key takes one 64-byte slot of a ring, in arrival order, and one entry
//! in a single table from its digest (span, response and fingerprint digests are kept apart by a
//! leading tag) to the sequence number of its newest slot. A fingerprint's slot links to the
//! previous slot of the same fingerprint, so its recent calls are found without a list of their
//! own. Writing a new slot forgets the oldest one in its place, and its table entry unless a newer
//! slot took it over. Nothing is allocated once the ring is full.

use crate::record::{CallStatus, LlmCall, SpanRole, Usage};
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
    /// Nested with a model call of the same trace (its parent or child span), from another
    /// instrumentation: a wrapper's span around the SDK's own.
    Nested,
}

impl DuplicateReason {
    /// Stable name for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicateReason::SpanId => "span_id",
            DuplicateReason::ResponseId => "response_id",
            DuplicateReason::Fingerprint => "fingerprint",
            DuplicateReason::Nested => "nested",
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

/// What a window of `max_entries` keys may take at most, in bytes (about; see
/// [`APPROX_BYTES_PER_KEY`]): the memory budget holds it back for the window.
pub fn max_bytes(max_entries: usize) -> u64 {
    max_entries as u64 * APPROX_BYTES_PER_KEY
}

/// The leading tag of each digest kind.
const SPAN: u8 = 0;
const RESPONSE: u8 = 1;
const PRINT: u8 = 2;
/// The failure part of a fingerprint of a call with usage.
const FAILED_NONE: &str = "";
/// A model call's parent span: (trace id, parent span id) → the child, for a parent that arrives
/// after it.
const PARENT: u8 = 3;

/// Slot flags.
const HAS_RESPONSE_ID: u8 = 1;
/// A fingerprint slot that already absorbed its one copy.
const CONSUMED: u8 = 2;
/// A slot taken back by [`Deduplicator::forget`]: it matches nothing, but still links to older
/// slots of its digest and holds its place in the ring until overwritten.
const DEAD: u8 = 4;
/// A span or parent slot of a model call (its times, scope and model are set).
const MODEL_CALL: u8 = 8;
/// A model call's span or parent slot whose call reported usage.
const HAS_USAGE: u8 = 16;

/// One remembered key.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    digest: u128,
    start: u64,
    end: u64,
    /// Digest of the instrumentation scope's name (fingerprints and model calls).
    scope: u64,
    /// Digest of the call's model without its date (`model_base`), with the low bit set; 0 when
    /// unknown (model-call span and parent slots).
    model: u64,
    /// Sequence number of the previous slot of the same digest when it was written, 0 for none.
    prev: u64,
    /// The journal of the request that wrote it while that request is pending; 0 once settled.
    owner: u32,
    flags: u8,
}

/// What one request's calls did to the window, until the request is settled or forgotten.
#[derive(Debug, Default)]
pub struct Journal {
    owner: u32,
    /// Sequence numbers of the slots written.
    written: Vec<u64>,
    /// Sequence numbers of the fingerprint slots whose one copy this request absorbed.
    consumed: Vec<u64>,
    /// Pending requests that hold a call one of this request's calls duplicated.
    waits: Vec<u32>,
}

impl Journal {
    /// This journal's id, as other journals' [`Journal::waits`] name it (never 0).
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// The pending requests (journal ids) holding the calls that this request's duplicates were
    /// dropped for, each once. Acknowledge this request only after they are settled.
    pub fn waits(&self) -> &[u32] {
        &self.waits
    }

    fn wait_for(&mut self, owner: u32) {
        if owner != 0 && owner != self.owner && !self.waits.contains(&owner) {
            self.waits.push(owner);
        }
    }
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

/// A model name without a trailing snapshot date (`-2024-08-06`, `-20250514`, `@20241022`), so
/// that a wrapper naming the alias and the SDK naming the snapshot agree.
pub fn model_base(model: &str) -> &str {
    let b = model.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    let n = b.len();
    if n > 11 && b[n - 11] == b'-' && b[n - 6] == b'-' && b[n - 3] == b'-' {
        let (y, m, d) = (&b[n - 10..n - 6], &b[n - 5..n - 3], &b[n - 2..]);
        if digits(y) && digits(m) && digits(d) {
            return &model[..n - 11];
        }
    }
    if n > 9 && (b[n - 9] == b'-' || b[n - 9] == b'@') && digits(&b[n - 8..]) {
        return &model[..n - 9];
    }
    model
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
    /// Id of the last journal begun.
    last_owner: u32,
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
            last_owner: 0,
        }
    }

    /// Starts the journal of one request (see the module's two-phase use).
    pub fn begin(&mut self) -> Journal {
        self.last_owner = self.last_owner.wrapping_add(1).max(1);
        Journal {
            owner: self.last_owner,
            ..Journal::default()
        }
    }

    /// Makes what `journal`'s calls added permanent: its request was accepted.
    pub fn settle(&mut self, journal: Journal) {
        for &seq in &journal.written {
            if let Some(i) = self.live_index(seq) {
                if self.ring[i].owner == journal.owner {
                    self.ring[i].owner = 0;
                }
            }
        }
    }

    /// Takes back what `journal`'s calls added and absorbed: its request was refused, and its
    /// retry must find the window as if it had never come.
    pub fn forget(&mut self, journal: Journal) {
        for &seq in &journal.consumed {
            if let Some(i) = self.live_index(seq) {
                self.ring[i].flags &= !CONSUMED;
            }
        }
        for &seq in journal.written.iter().rev() {
            let Some(i) = self.live_index(seq) else { continue };
            if self.ring[i].owner != journal.owner {
                continue;
            }
            let slot = &mut self.ring[i];
            slot.flags |= DEAD;
            slot.owner = 0;
            let (digest, prev) = (slot.digest, slot.prev);
            if self.newest.get(&digest) == Some(&seq) {
                match self.newest_live(prev) {
                    Some(older) => {
                        self.newest.insert(digest, older);
                    }
                    None => {
                        self.newest.remove(&digest);
                    }
                }
            }
        }
    }

    /// The first slot at or before `seq` along its digest's links that is still in the ring and
    /// not taken back.
    fn newest_live(&self, mut seq: u64) -> Option<u64> {
        loop {
            let s = self.slot(seq)?;
            if s.flags & DEAD == 0 {
                return Some(seq);
            }
            seq = s.prev;
        }
    }

    /// The ring index of slot `seq`, if it is still remembered.
    fn live_index(&self, seq: u64) -> Option<usize> {
        self.slot(seq).map(|_| self.index(seq))
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
    /// (and its table entry, unless a newer slot of the same digest took it over); notes it in
    /// `journal`, whose request it then belongs to until settled.
    fn remember(&mut self, mut slot: Slot, journal: &mut Option<&mut Journal>) {
        let seq = self.next;
        if let Some(j) = journal {
            slot.owner = j.owner;
            j.written.push(seq);
        }
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

    /// Checks a call and remembers it for good. Returns the reason when it duplicates one seen
    /// before. Every role is checked for a retried export (same span id); only model calls are
    /// matched by response id and fingerprint.
    pub fn check(&mut self, call: &LlmCall) -> Option<DuplicateReason> {
        self.check_with(call, None)
    }

    /// [`Deduplicator::check`] for a request that is settled later: what the call adds is
    /// pending, noted in `journal`.
    pub fn check_in(&mut self, call: &LlmCall, journal: &mut Journal) -> Option<DuplicateReason> {
        self.check_with(call, Some(journal))
    }

    fn check_with(&mut self, call: &LlmCall, mut journal: Option<&mut Journal>) -> Option<DuplicateReason> {
        // (Each lookup into the table is a cache miss at its size; a lookup followed by an insert
        // of the same key finds its line in the cache.)
        let span = self.digest(&(SPAN, call.trace_id, call.span_id));
        if let Some(&seq) = self.newest.get(&span) {
            if let (Some(j), Some(s)) = (journal, self.slot(seq)) {
                j.wait_for(s.owner);
            }
            return Some(DuplicateReason::SpanId);
        }
        let (start, end) = (call.start_unix_nano, call.end_unix_nano);
        if call.role != SpanRole::ModelCall {
            self.remember(
                Slot {
                    digest: span,
                    ..Slot::default()
                },
                &mut journal,
            );
            return None;
        }
        let scope = self.hashers.0.hash_one(call.scope_name.as_str());
        let usage_flag = if call.usage.is_some_and(|u| u.total() > 0) {
            HAS_USAGE
        } else {
            0
        };
        let model = call
            .normalized_model
            .as_deref()
            .map_or(0, |m| self.hashers.1.hash_one(model_base(m)) | 1);
        // A model call's span slot also describes the call, for the nesting rule.
        self.remember(
            Slot {
                digest: span,
                start,
                end,
                scope,
                model,
                flags: MODEL_CALL | usage_flag,
                ..Slot::default()
            },
            &mut journal,
        );
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
            if let Some(s) = seen.filter(|s| s.start <= end && start <= s.end) {
                if let Some(j) = journal {
                    j.wait_for(s.owner);
                }
                return Some(DuplicateReason::ResponseId);
            }
        }
        let remember_response = |d: &mut Self, journal: &mut Option<&mut Journal>| {
            if let Some(r) = response {
                let prev = d.newest.get(&r).copied().unwrap_or(0);
                d.remember(
                    Slot {
                        digest: r,
                        start,
                        end,
                        prev,
                        ..Slot::default()
                    },
                    journal,
                );
            }
        };
        // Nesting: its parent span is a remembered model call, or a remembered model call's
        // parent span is this one.
        let parent = call.parent_span_id.map(|p| self.digest(&(SPAN, call.trace_id, p)));
        let child = self.digest(&(PARENT, call.trace_id, call.span_id));
        let nested = [parent, Some(child)]
            .into_iter()
            .flatten()
            .find_map(|d| self.match_nested(d, scope, usage_flag, model, start, end));
        if let Some(seq) = nested {
            self.consume(seq, &mut journal);
            remember_response(self, &mut journal);
            return Some(DuplicateReason::Nested);
        }
        if let Some(p) = call.parent_span_id {
            let digest = self.digest(&(PARENT, call.trace_id, p));
            let prev = self.newest.get(&digest).copied().unwrap_or(0);
            self.remember(
                Slot {
                    digest,
                    start,
                    end,
                    scope,
                    model,
                    prev,
                    flags: MODEL_CALL | usage_flag,
                    ..Slot::default()
                },
                &mut journal,
            );
        }
        let print = match (&call.usage, &call.normalized_model) {
            (Some(usage), Some(model)) if usage.total() > 0 => {
                Some(self.digest(&(PRINT, call.service_name.as_str(), model.as_str(), usage, FAILED_NONE)))
            }
            // A failed call without usage: its error class stands in for the usage.
            (None, Some(model)) if call.status == CallStatus::Error => Some(self.digest(&(
                PRINT,
                call.service_name.as_str(),
                model.as_str(),
                Usage::default(),
                call.error_class.map_or("other", |c| c.as_str()),
            ))),
            _ => None,
        };
        let Some(print) = print else {
            remember_response(self, &mut journal);
            return None;
        };
        let latest = self.newest.get(&print).copied().unwrap_or(0);
        if let Some(seq) = self.match_print(latest, scope, response.is_some(), start, end) {
            // One copy matches one other copy only: a third identical call is a real call.
            self.consume(seq, &mut journal);
            remember_response(self, &mut journal);
            return Some(DuplicateReason::Fingerprint);
        }
        remember_response(self, &mut journal);
        self.remember(
            Slot {
                digest: print,
                start,
                end,
                scope,
                // (Once forgotten, it stays so: a walk stops there.)
                prev: latest,
                flags: if response.is_some() { HAS_RESPONSE_ID } else { 0 },
                ..Slot::default()
            },
            &mut journal,
        );
        None
    }

    /// Marks slot `seq` as having absorbed its one copy (noted in `journal`, whose request then
    /// waits for the slot's own request if that one is pending).
    fn consume(&mut self, seq: u64, journal: &mut Option<&mut Journal>) {
        let i = self.index(seq);
        self.ring[i].flags |= CONSUMED;
        if let Some(j) = journal.as_deref_mut() {
            j.wait_for(self.ring[i].owner);
            j.consumed.push(seq);
        }
    }

    /// The remembered model call behind `digest` (a span slot, or a parent slot of a child) that a
    /// call nested with it is a copy of: a model call not yet paired, from another instrumentation
    /// scope — or from the same one when the remembered call reported usage and this one did not
    /// (a span that only wraps the call: dropping it loses nothing) — of the same model (dated
    /// snapshots and aliases alike; a side without a model matches), overlapping in time.
    fn match_nested(&self, digest: u128, scope: u64, usage_flag: u8, model: u64, start: u64, end: u64) -> Option<u64> {
        let seq = *self.newest.get(&digest)?;
        let s = self.slot(seq)?;
        (s.flags & MODEL_CALL != 0
            && s.flags & (CONSUMED | DEAD) == 0
            && (s.scope != scope || (s.flags & HAS_USAGE != 0 && usage_flag == 0))
            && (s.model == 0 || model == 0 || s.model == model)
            && s.start <= end
            && start <= s.end)
            .then_some(seq)
    }

    /// The newest remembered call of a fingerprint chain, starting at `seq`, that a call from
    /// `scope` over `start..=end` duplicates.
    /// Slots taken back are passed over and not counted.
    fn match_print(&self, mut seq: u64, scope: u64, has_response_id: bool, start: u64, end: u64) -> Option<u64> {
        let mut compared = 0;
        while compared < MAX_PER_FINGERPRINT {
            let s = self.slot(seq)?;
            if s.flags & DEAD != 0 {
                seq = s.prev;
                continue;
            }
            compared += 1;
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
    use crate::record::{AgentContext, CallStatus, ErrorClass, Timings, Usage};
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
    /// first, searched from the newest; a key taken back stays in the list (holding its place)
    /// but matches nothing.
    struct Plain {
        max: usize,
        keys: VecDeque<Held>,
        next: u64,
    }

    struct Held {
        key: PlainKey,
        id: u64,
        owner: u32,
        dead: bool,
    }

    #[derive(Default)]
    struct PlainJournal {
        owner: u32,
        written: Vec<u64>,
        consumed: Vec<u64>,
        waits: Vec<u32>,
    }

    /// What a model call's span and parent keys remember of it, for the nesting rule.
    #[derive(Clone, PartialEq)]
    struct CallInfo {
        scope: String,
        has_usage: bool,
        model: Option<String>,
        start: u64,
        end: u64,
        used: bool,
    }

    impl CallInfo {
        fn nests(&self, c: &LlmCall) -> bool {
            let model = c.normalized_model.as_deref().map(model_base);
            let has_usage = c.usage.is_some_and(|u| u.total() > 0);
            !self.used
                && (self.scope != c.scope_name || (self.has_usage && !has_usage))
                && (self.model.is_none() || model.is_none() || self.model.as_deref() == model)
                && self.start <= c.end_unix_nano
                && c.start_unix_nano <= self.end
        }
    }

    #[derive(Clone, PartialEq)]
    enum PlainKey {
        Span([u8; 16], [u8; 8], Option<CallInfo>),
        Parent([u8; 16], [u8; 8], CallInfo),
        Response {
            key: (String, String, String),
            start: u64,
            end: u64,
        },
        Print {
            key: (String, String, Usage, String),
            scope: String,
            has_id: bool,
            start: u64,
            end: u64,
            used: bool,
        },
    }

    impl Plain {
        fn new(max: usize) -> Plain {
            Plain {
                max,
                keys: VecDeque::new(),
                next: 0,
            }
        }

        fn add(&mut self, key: PlainKey, j: &mut Option<&mut PlainJournal>) {
            self.next += 1;
            let owner = j.as_ref().map_or(0, |j| j.owner);
            if let Some(j) = j {
                j.written.push(self.next);
            }
            self.keys.push_back(Held {
                key,
                id: self.next,
                owner,
                dead: false,
            });
            if self.keys.len() > self.max {
                self.keys.pop_front();
            }
        }

        fn live(&self) -> impl DoubleEndedIterator<Item = &Held> {
            self.keys.iter().filter(|h| !h.dead)
        }

        fn wait(j: &mut Option<&mut PlainJournal>, owner: u32) {
            if let Some(j) = j {
                if owner != 0 && owner != j.owner && !j.waits.contains(&owner) {
                    j.waits.push(owner);
                }
            }
        }

        fn check(&mut self, c: &LlmCall, mut j: Option<&mut PlainJournal>) -> Option<DuplicateReason> {
            let same_span = |k: &PlainKey| matches!(k, PlainKey::Span(t, s, _) if *t == c.trace_id && *s == c.span_id);
            if let Some(owner) = self.live().find(|h| same_span(&h.key)).map(|h| h.owner) {
                Self::wait(&mut j, owner);
                return Some(DuplicateReason::SpanId);
            }
            let (start, end) = (c.start_unix_nano, c.end_unix_nano);
            if c.role != SpanRole::ModelCall {
                self.add(PlainKey::Span(c.trace_id, c.span_id, None), &mut j);
                return None;
            }
            let info = CallInfo {
                scope: c.scope_name.clone(),
                has_usage: c.usage.is_some_and(|u| u.total() > 0),
                model: c.normalized_model.as_deref().map(|m| model_base(m).to_owned()),
                start,
                end,
                used: false,
            };
            self.add(PlainKey::Span(c.trace_id, c.span_id, Some(info.clone())), &mut j);
            let rkey = c
                .response_id
                .clone()
                .map(|id| (c.service_name.clone(), c.provider.clone().unwrap_or_default(), id));
            if let Some(k) = &rkey {
                let newest = self.live().rev().find_map(|h| match &h.key {
                    PlainKey::Response { key, start, end } if key == k => Some((*start, *end, h.owner)),
                    _ => None,
                });
                if let Some((_, _, owner)) = newest.filter(|&(s, e, _)| s <= end && start <= e) {
                    Self::wait(&mut j, owner);
                    return Some(DuplicateReason::ResponseId);
                }
            }
            let remember_response = |p: &mut Plain, j: &mut Option<&mut PlainJournal>| {
                if let Some(key) = rkey.clone() {
                    p.add(PlainKey::Response { key, start, end }, j);
                }
            };
            // Nesting: the newest live key of the parent's span, then of this span as a parent.
            let parent_key = c.parent_span_id.and_then(|p| {
                self.keys
                    .iter()
                    .rposition(|h| !h.dead && matches!(&h.key, PlainKey::Span(t, s, _) if *t == c.trace_id && *s == p))
            });
            let child_key = self.keys.iter().rposition(|h| {
                !h.dead && matches!(&h.key, PlainKey::Parent(t, p, _) if *t == c.trace_id && *p == c.span_id)
            });
            let hit = [parent_key, child_key]
                .into_iter()
                .flatten()
                .find(|&i| match &self.keys[i].key {
                    PlainKey::Span(_, _, Some(info)) | PlainKey::Parent(_, _, info) => info.nests(c),
                    _ => false,
                });
            if let Some(i) = hit {
                let h = &mut self.keys[i];
                if let PlainKey::Span(_, _, Some(info)) | PlainKey::Parent(_, _, info) = &mut h.key {
                    info.used = true;
                }
                let (id, owner) = (h.id, h.owner);
                Self::wait(&mut j, owner);
                if let Some(j) = j.as_deref_mut() {
                    j.consumed.push(id);
                }
                remember_response(self, &mut j);
                return Some(DuplicateReason::Nested);
            }
            if let Some(p) = c.parent_span_id {
                self.add(PlainKey::Parent(c.trace_id, p, info), &mut j);
            }
            let pkey = match (&c.usage, &c.normalized_model) {
                (Some(u), Some(m)) if u.total() > 0 => (c.service_name.clone(), m.clone(), *u, String::new()),
                (None, Some(m)) if c.status == CallStatus::Error => (
                    c.service_name.clone(),
                    m.clone(),
                    Usage::default(),
                    c.error_class.map_or("other", |e| e.as_str()).to_owned(),
                ),
                _ => {
                    remember_response(self, &mut j);
                    return None;
                }
            };
            let has_id = rkey.is_some();
            let hit = self
                .keys
                .iter_mut()
                .rev()
                .filter(|h| !h.dead && matches!(&h.key, PlainKey::Print { key, .. } if *key == pkey))
                .take(MAX_PER_FINGERPRINT)
                .find(|h| match &h.key {
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
            if let Some(h) = hit {
                if let PlainKey::Print { used, .. } = &mut h.key {
                    *used = true;
                }
                let (id, owner) = (h.id, h.owner);
                Self::wait(&mut j, owner);
                if let Some(j) = j.as_deref_mut() {
                    j.consumed.push(id);
                }
                remember_response(self, &mut j);
                return Some(DuplicateReason::Fingerprint);
            }
            remember_response(self, &mut j);
            self.add(
                PlainKey::Print {
                    key: pkey,
                    scope: c.scope_name.clone(),
                    has_id,
                    start,
                    end,
                    used: false,
                },
                &mut j,
            );
            None
        }

        fn settle(&mut self, j: &PlainJournal) {
            for h in self
                .keys
                .iter_mut()
                .filter(|h| j.written.contains(&h.id) && h.owner == j.owner)
            {
                h.owner = 0;
            }
        }

        fn forget(&mut self, j: &PlainJournal) {
            for h in self.keys.iter_mut() {
                if j.consumed.contains(&h.id) {
                    match &mut h.key {
                        PlainKey::Print { used, .. } => *used = false,
                        PlainKey::Span(_, _, Some(info)) | PlainKey::Parent(_, _, info) => info.used = false,
                        _ => {}
                    }
                }
                if j.written.contains(&h.id) && h.owner == j.owner {
                    h.dead = true;
                    h.owner = 0;
                }
            }
        }
    }

    /// A small universe of calls (few ids, scopes, usages and times, so that every rule and the
    /// forgetting of old keys fire often).
    /// One generated call: (span, scope, response id, tokens, start, length, model call?) and
    /// (trace, parent span, model name).
    type Gen = ((u8, u8, u8, u64, u64, u64, bool), (u8, Option<u8>, u8, u8));

    fn gen_call() -> impl proptest::strategy::Strategy<Value = Gen> {
        (
            (
                0u8..24,
                0u8..3,
                0u8..4,
                0u64..3,
                0u64..60,
                0u64..15,
                proptest::bool::weighted(0.85),
            ),
            (0u8..2, proptest::option::weighted(0.5, 0u8..24), 0u8..4, 0u8..6),
        )
    }

    /// A small universe of calls (few ids, scopes, usages, times, traces and models, so that every
    /// rule and the forgetting of old keys fire often).
    fn small_call(g: &Gen) -> LlmCall {
        let &((span, scope, id, tokens, start, len, model_call), (trace, parent, model, failure)) = g;
        let id = ["", "a", "b", "c"][usize::from(id)];
        let mut c = call(
            span,
            ["x", "y", "z"][usize::from(scope)],
            (!id.is_empty()).then_some(id),
            start,
            start + len,
        );
        c.trace_id = [trace; 16];
        c.parent_span_id = parent.map(|p| [p; 8]);
        c.normalized_model =
            [Some("gpt-4o"), Some("gpt-4o-2024-08-06"), Some("o3"), None][usize::from(model)].map(Into::into);
        c.usage = Some(Usage {
            input_uncached: tokens * 7,
            output: tokens,
            ..Default::default()
        });
        // A failed call without usage, of one of two error classes.
        if failure < 2 {
            c.usage = None;
            c.status = CallStatus::Error;
            c.error_class = Some([ErrorClass::RateLimited, ErrorClass::Timeout][usize::from(failure)]);
        }
        if !model_call {
            c.role = SpanRole::Tool;
        }
        c
    }

    #[test]
    fn two_instrumentations_of_one_failed_call_count_it_once() {
        let failed = |span: u8, scope: &str, class: ErrorClass| {
            let mut c = call(span, scope, None, 0, 100);
            c.usage = None;
            c.status = CallStatus::Error;
            c.error_class = Some(class);
            c
        };
        let mut d = Deduplicator::new(100);
        assert_eq!(d.check(&failed(1, "anthropic", ErrorClass::RateLimited)), None);
        assert_eq!(
            d.check(&failed(
                2,
                "opentelemetry.instrumentation.anthropic",
                ErrorClass::RateLimited
            )),
            Some(DuplicateReason::Fingerprint)
        );
        assert_eq!(
            d.check(&failed(3, "other", ErrorClass::Timeout)),
            None,
            "another error class"
        );
        assert_eq!(
            d.check(&failed(4, "anthropic", ErrorClass::RateLimited)),
            None,
            "one scope: two calls"
        );
    }

    #[test]
    fn a_wrapper_span_around_the_sdks_own_is_one_call_whichever_comes_first() {
        // The SDK's span (child, full usage, response id) and the wrapper's (parent, other usage,
        // no id): same trace, other scopes.
        let sdk = |d: &mut Deduplicator| {
            let mut c = call(2, "anthropic", Some("msg_1"), 10, 90);
            c.trace_id = [7; 16];
            c.parent_span_id = Some([1; 8]);
            c.normalized_model = Some("claude-sonnet-4-20250514".into());
            d.check(&c)
        };
        let wrapper = |d: &mut Deduplicator| {
            let mut c = call(1, "openinference.instrumentation.anthropic", None, 0, 100);
            c.trace_id = [7; 16];
            c.normalized_model = Some("claude-sonnet-4".into());
            c.usage = Some(Usage {
                input_uncached: 3000,
                output: 5,
                ..Default::default()
            });
            d.check(&c)
        };
        let mut d = Deduplicator::new(100);
        assert_eq!(sdk(&mut d), None);
        assert_eq!(wrapper(&mut d), Some(DuplicateReason::Nested));
        let mut d = Deduplicator::new(100);
        assert_eq!(wrapper(&mut d), None);
        assert_eq!(sdk(&mut d), Some(DuplicateReason::Nested));
        // A wrapper around two provider calls (a retry) absorbs one of them only.
        let mut d = Deduplicator::new(100);
        assert_eq!(sdk(&mut d), None);
        let mut retry = call(3, "anthropic", Some("msg_2"), 50, 95);
        retry.trace_id = [7; 16];
        retry.parent_span_id = Some([1; 8]);
        retry.normalized_model = Some("claude-sonnet-4-20250514".into());
        assert_eq!(d.check(&retry), None);
        assert_eq!(wrapper(&mut d), Some(DuplicateReason::Nested));
    }

    #[test]
    fn nested_model_calls_of_one_instrumentation_or_another_model_are_two_calls() {
        let mut d = Deduplicator::new(100);
        let mut outer = call(1, "same", None, 0, 100);
        outer.trace_id = [7; 16];
        let mut inner = call(2, "same", None, 10, 90);
        inner.trace_id = [7; 16];
        inner.parent_span_id = Some([1; 8]);
        inner.usage = Some(Usage {
            input_uncached: 1,
            output: 1,
            ..Default::default()
        });
        assert_eq!(d.check(&outer), None);
        assert_eq!(
            d.check(&inner),
            None,
            "one scope, both with usage: a call that makes another"
        );
        // One scope, a span without usage around one with it (AI SDK 7's embeddings): the inner
        // one, ending first, counts; the wrapper after it is a copy. In the other order both
        // count (the wrapper would otherwise take the call's place without its usage).
        let mut wrapper = call(4, "same", None, 200, 300);
        wrapper.trace_id = [7; 16];
        wrapper.usage = None;
        let mut embed = call(5, "same", None, 210, 290);
        embed.trace_id = [7; 16];
        embed.parent_span_id = Some([4; 8]);
        assert_eq!(d.check(&embed), None);
        assert_eq!(d.check(&wrapper), Some(DuplicateReason::Nested));
        let mut d = Deduplicator::new(100);
        assert_eq!(d.check(&wrapper), None);
        assert_eq!(d.check(&embed), None);
        let mut other = call(3, "other", None, 10, 90);
        other.trace_id = [7; 16];
        other.parent_span_id = Some([1; 8]);
        other.normalized_model = Some("text-embedding-3-small".into());
        assert_eq!(d.check(&other), None, "another model");
        assert_eq!(model_base("claude-3-5-sonnet@20241022"), "claude-3-5-sonnet");
        assert_eq!(model_base("gpt-4o-2024-08-06"), "gpt-4o");
        assert_eq!(model_base("claude-sonnet-4-20250514"), "claude-sonnet-4");
        assert_eq!(model_base("gpt-4o"), "gpt-4o");
        assert_eq!(model_base("o3-mini"), "o3-mini");
    }

    #[test]
    fn a_forgotten_request_leaves_no_trace() {
        let mut d = Deduplicator::new(100);
        let mut j = d.begin();
        assert_eq!(
            d.check_in(&call(1, "wrapper", Some("chatcmpl-1"), 0, 100), &mut j),
            None
        );
        assert_eq!(
            d.check_in(&call(2, "sdk", None, 0, 100), &mut j),
            Some(DuplicateReason::Fingerprint)
        );
        d.forget(j);
        // The retry: the same two spans, found new again, and the second still a copy of the first.
        let mut retry = d.begin();
        assert_eq!(
            d.check_in(&call(1, "wrapper", Some("chatcmpl-1"), 0, 100), &mut retry),
            None
        );
        assert_eq!(
            d.check_in(&call(2, "sdk", None, 0, 100), &mut retry),
            Some(DuplicateReason::Fingerprint)
        );
        assert!(retry.waits().is_empty());
        d.settle(retry);
        assert_eq!(
            d.check(&call(1, "wrapper", None, 0, 100)),
            Some(DuplicateReason::SpanId)
        );
    }

    #[test]
    fn a_copy_of_a_pending_call_waits_for_its_request() {
        let mut d = Deduplicator::new(100);
        let mut first = d.begin();
        assert_eq!(d.check_in(&call(1, "a", Some("r"), 0, 10), &mut first), None);
        let mut second = d.begin();
        assert_eq!(
            d.check_in(&call(1, "a", Some("r"), 0, 10), &mut second),
            Some(DuplicateReason::SpanId)
        );
        assert_eq!(
            d.check_in(&call(2, "b", Some("r"), 0, 10), &mut second),
            Some(DuplicateReason::ResponseId)
        );
        assert_eq!(second.waits(), &[first.owner()]);
        d.settle(first);
        // Settled: a later copy waits for nobody.
        let mut third = d.begin();
        assert_eq!(
            d.check_in(&call(1, "a", Some("r"), 0, 10), &mut third),
            Some(DuplicateReason::SpanId)
        );
        assert!(third.waits().is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
        /// Over small universes the ring answers as the plain list does.
        #[test]
        fn answers_as_the_plain_rules_do(
            max in 1usize..40,
            calls in proptest::collection::vec(gen_call(), 1..200),
        ) {
            let mut ring = Deduplicator::new(max);
            let mut plain = Plain::new(max);
            for (i, g) in calls.iter().enumerate() {
                let c = small_call(g);
                proptest::prop_assert_eq!(ring.check(&c), plain.check(&c, None), "call {} of {:?}", i, calls);
                proptest::prop_assert!(ring.len() <= max);
            }
        }

        /// Requests of a few calls each, checked under journals, left pending for a while and then
        /// settled or forgotten in any order: the ring answers as the plain list does, names the
        /// same pending requests to wait for, and every table entry points at a live slot.
        #[test]
        fn journals_answer_as_the_plain_rules_do(
            max in 1usize..40,
            requests in proptest::collection::vec(
                (
                    proptest::collection::vec(gen_call(), 1..6),
                    proptest::bool::weighted(0.6),
                    0usize..4,
                ),
                1..60,
            ),
        ) {
            let mut ring = Deduplicator::new(max);
            let mut plain = Plain::new(max);
            // (ring journal, plain journal, settle?, requests to wait before settling)
            let mut open: Vec<(Journal, PlainJournal, bool, usize)> = Vec::new();
            for (r, (calls, keep, delay)) in requests.iter().enumerate() {
                let mut j = ring.begin();
                let mut pj = PlainJournal { owner: j.owner(), ..PlainJournal::default() };
                for g in calls {
                    let c = small_call(g);
                    proptest::prop_assert_eq!(ring.check_in(&c, &mut j), plain.check(&c, Some(&mut pj)), "request {}", r);
                }
                proptest::prop_assert_eq!(j.waits(), pj.waits.as_slice(), "request {}", r);
                open.push((j, pj, *keep, *delay));
                // Settle or forget the requests whose delay ran out, oldest first.
                let mut still = Vec::new();
                for (j, pj, keep, delay) in open.drain(..) {
                    if delay == 0 {
                        if keep {
                            plain.settle(&pj);
                            ring.settle(j);
                        } else {
                            plain.forget(&pj);
                            ring.forget(j);
                        }
                    } else {
                        still.push((j, pj, keep, delay - 1));
                    }
                }
                open = still;
                for (digest, &seq) in &ring.newest {
                    let slot = ring.slot(seq);
                    proptest::prop_assert!(slot.is_some_and(|s| s.digest == *digest && s.flags & DEAD == 0));
                }
            }
        }
    }
}

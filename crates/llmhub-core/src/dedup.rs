//! Duplicate emission: one model call reported twice (a wrapper instrumentation and the provider
//! SDK's own spans, often in two traces, or a client retrying an export) counts once.
//!
//! A call is a duplicate of one seen before when, in order:
//! 1. it has the same trace id and span id (a retried export), or
//! 2. it has the same provider response id (`chatcmpl-…`, `msg_…`) under the same service and
//!    provider, and the two overlap in time (mock servers that answer every call with one fixed id
//!    make sequential calls, which never overlap), or
//! 3. at least one of the two has no response id, and they share
//!    the service, normalized model and identical token usage, their time ranges overlap, and they
//!    come from different instrumentation scopes (two instrumentations of one call; two identical
//!    calls made by one instrumentation are both kept).
//!
//! Memory is bounded: at most `max_entries` calls are remembered, oldest forgotten first.

use crate::record::{LlmCall, SpanRole, Usage};
use std::collections::{HashMap, VecDeque};

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

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Fingerprint {
    service: String,
    model: String,
    usage: Usage,
}

#[derive(Debug, Clone)]
struct Seen {
    start: u64,
    end: u64,
    scope: String,
    has_response_id: bool,
}

/// Remembers recent model calls and answers whether a new one was already counted.
#[derive(Debug)]
pub struct Deduplicator {
    max_entries: usize,
    spans: HashMap<([u8; 16], [u8; 8]), ()>,
    responses: HashMap<ResponseKey, (u64, u64)>,
    fingerprints: HashMap<Fingerprint, Vec<Seen>>,
    order: VecDeque<Key>,
}

/// Service, provider and response id.
type ResponseKey = (String, String, String);

#[derive(Debug)]
enum Key {
    Span([u8; 16], [u8; 8]),
    Response(ResponseKey, (u64, u64)),
    Print(Fingerprint),
}

impl Deduplicator {
    /// A deduplicator remembering at most `max_entries` calls (at least 1).
    pub fn new(max_entries: usize) -> Self {
        Deduplicator {
            max_entries: max_entries.max(1),
            spans: HashMap::new(),
            responses: HashMap::new(),
            fingerprints: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Number of remembered keys (for self-monitoring).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Checks a call and remembers it. Returns the reason when it duplicates one seen before.
    /// Only model calls are checked; other roles are never duplicates.
    pub fn check(&mut self, call: &LlmCall) -> Option<DuplicateReason> {
        if call.role != SpanRole::ModelCall {
            return None;
        }
        let span_key = (call.trace_id, call.span_id);
        if self.spans.contains_key(&span_key) {
            return Some(DuplicateReason::SpanId);
        }
        let span = (call.start_unix_nano, call.end_unix_nano);
        let response_key = call.response_id.as_ref().map(|id| {
            (
                call.service_name.clone(),
                call.provider.clone().unwrap_or_default(),
                id.clone(),
            )
        });
        if let Some(k) = &response_key {
            if let Some(&(start, end)) = self.responses.get(k) {
                if start <= span.1 && span.0 <= end {
                    self.remember(Key::Span(call.trace_id, call.span_id));
                    return Some(DuplicateReason::ResponseId);
                }
            }
        }
        let print = match (&call.usage, &call.normalized_model) {
            (Some(usage), Some(model)) if usage.total() > 0 => Some(Fingerprint {
                service: call.service_name.clone(),
                model: model.clone(),
                usage: *usage,
            }),
            _ => None,
        };
        if let Some(p) = &print {
            if let Some(seen) = self.fingerprints.get(p) {
                let dup = seen.iter().any(|s| {
                    s.scope != call.scope_name
                        && !(s.has_response_id && response_key.is_some())
                        && s.start <= call.end_unix_nano
                        && call.start_unix_nano <= s.end
                });
                if dup {
                    self.remember(Key::Span(call.trace_id, call.span_id));
                    if let Some(k) = response_key {
                        self.remember(Key::Response(k, span));
                    }
                    return Some(DuplicateReason::Fingerprint);
                }
            }
        }
        self.remember(Key::Span(call.trace_id, call.span_id));
        if let Some(k) = response_key {
            self.remember(Key::Response(k, span));
        }
        if let Some(p) = print {
            self.fingerprints.entry(p.clone()).or_default().push(Seen {
                start: call.start_unix_nano,
                end: call.end_unix_nano,
                scope: call.scope_name.clone(),
                has_response_id: call.response_id.is_some(),
            });
            self.order.push_back(Key::Print(p));
            self.evict();
        }
        None
    }

    fn remember(&mut self, key: Key) {
        match &key {
            Key::Span(t, s) => {
                if self.spans.insert((*t, *s), ()).is_some() {
                    return;
                }
            }
            Key::Response(k, span) => {
                if self.responses.insert(k.clone(), *span).is_some() {
                    return;
                }
            }
            Key::Print(_) => {}
        }
        self.order.push_back(key);
        self.evict();
    }

    fn evict(&mut self) {
        while self.order.len() > self.max_entries {
            match self.order.pop_front() {
                Some(Key::Span(t, s)) => {
                    self.spans.remove(&(t, s));
                }
                Some(Key::Response(k, _)) => {
                    self.responses.remove(&k);
                }
                Some(Key::Print(p)) => {
                    if let Some(v) = self.fingerprints.get_mut(&p) {
                        if !v.is_empty() {
                            v.remove(0);
                        }
                        if v.is_empty() {
                            self.fingerprints.remove(&p);
                        }
                    }
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;
    use crate::record::{AgentContext, CallStatus, Timings};

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
        assert!(d.spans.len() + d.responses.len() + d.fingerprints.values().map(Vec::len).sum::<usize>() <= 50);
    }
}

//! Enrichment of forwarded spans: each span that became a record gets llmhub's findings as
//! attributes under the `llmhub.` prefix; nothing else of the span changes.
//!
//! | attribute | type | when |
//! |---|---|---|
//! | `llmhub.span.role` | string | always (`model_call`, `agent`, `tool`, `workflow`) |
//! | `llmhub.dialect` | string | always |
//! | `llmhub.model` | string | a model name is known (normalized: lower-case, no provider prefix) |
//! | `llmhub.provider` | string | a provider is known |
//! | `llmhub.error.class` | string | the call failed |
//! | `llmhub.usage.reported` | bool | model calls |
//! | `llmhub.usage.input_uncached`, `.cache_read`, `.cache_write`, `.cache_write_1h`, `.output`, `.reasoning` | int | usage was reported |
//! | `llmhub.price.status` | string | model calls (`priced`, `no_usage`, `unknown_model`, ...) |
//! | `llmhub.cost.usd` | double | priced |
//! | `llmhub.cost.decimal` | string | priced: the exact decimal |
//! | `llmhub.cost.catalog_version`, `llmhub.price.rule` | string | priced |
//!
//! A span already carrying an `llmhub.*` attribute (an upstream llmhub enriched it) keeps it and
//! gets no second copy.

use llmhub_core::{LlmCall, PriceStatus, SpanRole};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use rust_decimal::prelude::ToPrimitive;
use std::collections::HashMap;

pub(crate) fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub(crate) fn string(key: &str, v: &str) -> KeyValue {
    kv(key, Value::StringValue(v.to_owned()))
}

/// The enrichment attributes of one record.
pub fn attributes(c: &LlmCall) -> Vec<KeyValue> {
    let mut out = vec![
        string("llmhub.span.role", c.role.as_str()),
        string("llmhub.dialect", c.dialect.as_str()),
    ];
    if let Some(m) = &c.normalized_model {
        out.push(string("llmhub.model", m));
    }
    if let Some(p) = &c.provider {
        out.push(string("llmhub.provider", p));
    }
    if let Some(e) = c.error_class {
        out.push(string("llmhub.error.class", e.as_str()));
    }
    if c.role == SpanRole::ModelCall {
        out.push(kv("llmhub.usage.reported", Value::BoolValue(c.usage.is_some())));
        if let Some(u) = c.usage {
            for (k, n) in [
                ("llmhub.usage.input_uncached", u.input_uncached),
                ("llmhub.usage.cache_read", u.cache_read),
                ("llmhub.usage.cache_write", u.cache_write),
                ("llmhub.usage.cache_write_1h", u.cache_write_1h),
                ("llmhub.usage.output", u.output),
                ("llmhub.usage.reasoning", u.reasoning),
            ] {
                out.push(kv(k, Value::IntValue(i64::try_from(n).unwrap_or(i64::MAX))));
            }
        }
        out.push(string("llmhub.price.status", c.price_status.as_str()));
    }
    if let (PriceStatus::Priced, Some(cost)) = (c.price_status, &c.cost) {
        out.push(kv(
            "llmhub.cost.usd",
            Value::DoubleValue(cost.total.to_f64().unwrap_or(f64::NAN)),
        ));
        out.push(string("llmhub.cost.decimal", &cost.total.normalize().to_string()));
        out.push(string("llmhub.cost.catalog_version", &cost.catalog_version));
        out.push(string("llmhub.price.rule", &cost.rule));
    }
    out
}

/// Adds each record's attributes to its span (found by trace and span id). Returns how many spans
/// were enriched.
pub fn enrich(req: &mut ExportTraceServiceRequest, records: &[LlmCall]) -> usize {
    if records.is_empty() {
        return 0;
    }
    let by_id: HashMap<(&[u8], &[u8]), &LlmCall> =
        records.iter().map(|r| ((&r.trace_id[..], &r.span_id[..]), r)).collect();
    let mut n = 0;
    for rs in &mut req.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                let Some(rec) = by_id.get(&(&span.trace_id[..], &span.span_id[..])) else {
                    continue;
                };
                if span.attributes.iter().any(|a| a.key.starts_with("llmhub.")) {
                    continue;
                }
                span.attributes.extend(attributes(rec));
                n += 1;
            }
        }
    }
    n
}

/// The tenant an authenticated client's API key names, and the attribute keys that name a tenant
/// (`processors.genai.tenant_attributes`).
#[derive(Debug, Clone, Copy)]
pub struct TenantStamp<'a> {
    /// The key's tenant.
    pub tenant: &'a str,
    /// Attribute keys naming the tenant.
    pub keys: &'a [String],
}

/// Writes the key's tenant over every tenant attribute of the request: set on every span (span
/// attributes come first when a tenant is read), replaced on every resource that names one. So
/// downstream, as in llmhub's own records, a span or resource cannot claim another tenant than
/// its client's key.
pub fn stamp_tenant(req: &mut ExportTraceServiceRequest, stamp: TenantStamp<'_>) {
    let set = |attrs: &mut Vec<KeyValue>, always: bool| {
        for key in stamp.keys {
            let had = attrs.len();
            attrs.retain(|a| &a.key != key);
            if always || attrs.len() != had {
                attrs.push(string(key, stamp.tenant));
            }
        }
    };
    for rs in &mut req.resource_spans {
        if let Some(r) = rs.resource.as_mut() {
            set(&mut r.attributes, false);
        }
        for span in rs.scope_spans.iter_mut().flat_map(|ss| &mut ss.spans) {
            set(&mut span.attributes, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmhub_core::{CallCost, Decimal, ErrorClass, Usage};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn span(id: u8) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![id; 8],
            name: format!("span {id}"),
            attributes: vec![string("gen_ai.request.model", "gpt-4o")],
            ..Default::default()
        }
    }

    #[test]
    fn matched_spans_gain_llmhub_attributes_and_nothing_else_changes() {
        let mut req = request(vec![span(1), span(2)]);
        let original = req.clone();
        let rec = LlmCall {
            trace_id: [1; 16],
            span_id: [2; 8],
            normalized_model: Some("gpt-4o".into()),
            provider: Some("openai".into()),
            error_class: Some(ErrorClass::RateLimited),
            usage: Some(Usage {
                input_uncached: 100,
                output: 7,
                ..Usage::default()
            }),
            price_status: PriceStatus::Priced,
            cost: Some(CallCost {
                total: Decimal::new(3200, 7),
                input_uncached: Decimal::new(2500, 7),
                cache_read: Decimal::ZERO,
                cache_write: Decimal::ZERO,
                cache_write_1h: Decimal::ZERO,
                output: Decimal::new(700, 7),
                reasoning: Decimal::ZERO,
                request: Decimal::ZERO,
                catalog_version: "2026-11-24.1".into(),
                rule: "exact openai/gpt-4o".into(),
            }),
            ..LlmCall::default()
        };
        assert_eq!(enrich(&mut req, std::slice::from_ref(&rec)), 1);
        let spans = &req.resource_spans[0].scope_spans[0].spans;
        assert_eq!(
            spans[0], original.resource_spans[0].scope_spans[0].spans[0],
            "unmatched span unchanged"
        );
        let added = &spans[1].attributes[1..];
        let get = |k: &str| {
            added
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| a.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(get("llmhub.model"), Some(Value::StringValue("gpt-4o".into())));
        assert_eq!(
            get("llmhub.error.class"),
            Some(Value::StringValue("rate_limited".into()))
        );
        assert_eq!(get("llmhub.usage.input_uncached"), Some(Value::IntValue(100)));
        assert_eq!(get("llmhub.cost.decimal"), Some(Value::StringValue("0.00032".into())));
        assert_eq!(get("llmhub.cost.usd"), Some(Value::DoubleValue(0.00032)));
        assert_eq!(get("llmhub.price.status"), Some(Value::StringValue("priced".into())));
        // The original attribute is first and untouched; every added key is under llmhub.
        assert_eq!(
            spans[1].attributes[0],
            original.resource_spans[0].scope_spans[0].spans[1].attributes[0]
        );
        assert!(added.iter().all(|a| a.key.starts_with("llmhub.")));
        // Enriching again (a second llmhub in the pipeline) adds nothing.
        let again = req.clone();
        assert_eq!(enrich(&mut req, &[rec]), 0);
        assert_eq!(req, again);
    }
}

//! Borrowed views of decoded OTLP protobuf messages, the input of normalization.

use llmhub_core::log::LogView;
use llmhub_core::span::{Attribute, EventView, SpanView, StatusCode, Value};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;

/// One instrumentation scope's spans.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScopeView<'a> {
    /// Scope name.
    pub scope_name: &'a str,
    /// Spans.
    pub spans: Vec<SpanView<'a>>,
}

/// One resource's attributes and scopes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceView<'a> {
    /// Resource attributes.
    pub attributes: Vec<Attribute<'a>>,
    /// Scopes.
    pub scopes: Vec<ScopeView<'a>>,
}

/// One instrumentation scope's log records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogScopeView<'a> {
    /// Scope name.
    pub scope_name: &'a str,
    /// Log records.
    pub records: Vec<LogView<'a>>,
}

/// One resource's attributes and log scopes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogResourceView<'a> {
    /// Resource attributes.
    pub attributes: Vec<Attribute<'a>>,
    /// Scopes.
    pub scopes: Vec<LogScopeView<'a>>,
}

/// Views a decoded logs request.
pub fn logs_request(req: &ExportLogsServiceRequest) -> Vec<LogResourceView<'_>> {
    req.resource_logs
        .iter()
        .map(|rl| LogResourceView {
            attributes: attributes(rl.resource.as_ref().map_or(&[][..], |r| &r.attributes[..])),
            scopes: rl
                .scope_logs
                .iter()
                .map(|sl| LogScopeView {
                    scope_name: sl.scope.as_ref().map_or("", |s| s.name.as_str()),
                    records: sl
                        .log_records
                        .iter()
                        .map(|r| LogView {
                            time_unix_nano: r.time_unix_nano,
                            observed_time_unix_nano: r.observed_time_unix_nano,
                            event_name: &r.event_name,
                            body: match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                                Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
                                _ => None,
                            },
                            trace_id: &r.trace_id,
                            span_id: &r.span_id,
                            attributes: attributes(&r.attributes),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// Views a decoded request.
pub fn request(req: &ExportTraceServiceRequest) -> Vec<ResourceView<'_>> {
    req.resource_spans
        .iter()
        .map(|rs| ResourceView {
            attributes: attributes(rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..])),
            scopes: rs
                .scope_spans
                .iter()
                .map(|ss| ScopeView {
                    scope_name: ss.scope.as_ref().map_or("", |s| s.name.as_str()),
                    spans: ss.spans.iter().map(span).collect(),
                })
                .collect(),
        })
        .collect()
}

/// Deepest array nesting read; deeper values read as [`Value::Other`] (the same bound as the
/// borrowing decoder in `wire.rs`).
const MAX_DEPTH: usize = 8;

/// Views one attribute value.
pub fn value(v: Option<&AnyValue>) -> Value<'_> {
    value_at(v, 0)
}

fn value_at(v: Option<&AnyValue>, depth: usize) -> Value<'_> {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Value::Str(s),
        Some(any_value::Value::IntValue(i)) => Value::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::Double(*d),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::ArrayValue(a)) if depth < MAX_DEPTH => {
            Value::Array(a.values.iter().map(|x| value_at(Some(x), depth + 1)).collect())
        }
        _ => Value::Other,
    }
}

/// Views a list of attributes.
pub fn attributes(kvs: &[KeyValue]) -> Vec<Attribute<'_>> {
    kvs.iter()
        .map(|kv| (kv.key.as_str(), value(kv.value.as_ref())))
        .collect()
}

/// Views one span.
pub fn span(s: &Span) -> SpanView<'_> {
    SpanView {
        trace_id: &s.trace_id,
        span_id: &s.span_id,
        parent_span_id: &s.parent_span_id,
        name: &s.name,
        start_unix_nano: s.start_time_unix_nano,
        end_unix_nano: s.end_time_unix_nano,
        attributes: attributes(&s.attributes),
        events: s
            .events
            .iter()
            .map(|e| EventView {
                name: &e.name,
                time_unix_nano: e.time_unix_nano,
                attributes: attributes(&e.attributes),
            })
            .collect(),
        status_code: StatusCode::from_i32(s.status.as_ref().map_or(0, |st| st.code)),
        status_message: s.status.as_ref().map_or("", |st| st.message.as_str()),
    }
}

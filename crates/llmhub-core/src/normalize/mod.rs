//! Normalization: one span of any dialect in, one canonical [`LlmCall`] out.
//!
//! Steps: validate ids; recognise the dialect; read every key of the attribute table
//! ([`crate::keys::KEY_RULES`]) plus the structured keys and span events, keeping per field the
//! candidate of lowest rank; decide the span's role; bucket tokens; derive timings and the error
//! class; sanitize strings. Nothing here allocates per attribute beyond what the record keeps.

use crate::dialect;
use crate::error_class::{self, ErrorSignals};
use crate::keys::{self, rules_by_key, Field, Unit, FIELD_COUNT};
use crate::provider::{canonical_provider, lower_trimmed, normalize_model, provider_from_model};
use crate::record::{AgentContext, CallStatus, LlmCall, PriceStatus, SpanRole, Timings};
use crate::span::{find, Attribute, ContextView, SpanView, StatusCode, Value};
use crate::timefmt::rfc3339_to_unix_nanos;
use crate::usage::{input_convention, to_buckets, InputConvention, RawUsage, MAX_TOKENS};
use std::borrow::Cow;

/// Options of normalization.
#[derive(Debug, Clone)]
pub struct NormalizeOptions {
    /// Longest string kept in a record field, in bytes; longer values are cut at a character
    /// boundary and reported.
    pub max_value_len: usize,
    /// Attribute keys that name the tenant, looked up on the span first, then on the resource.
    pub tenant_keys: Vec<String>,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            max_value_len: 256,
            tenant_keys: vec!["tenant.id".to_owned()],
        }
    }
}

/// A span read as a model, agent or tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The canonical record.
    pub call: LlmCall,
    /// Problems found and worked around (values ignored or cut), one sentence each, naming the
    /// attribute. Receivers return them to the client as a partial-success message.
    pub warnings: Vec<String>,
    /// Fields for which two keys of the span disagreed (the higher-precedence key won).
    pub conflicts: Vec<Field>,
    /// Usage-like keys of the span that nothing reads ([`keys::is_unmapped_usage_key`]).
    pub unmapped: Vec<String>,
}

/// What normalization made of a span.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A GenAI span.
    Call(Box<Normalized>),
    /// A span with no GenAI attributes: not an LLM call, passed over.
    NotGenAi,
    /// A span that cannot be accepted (invalid ids); the reason names the problem.
    Rejected(String),
}

mod drift;
mod fields;
mod role;
mod structured;

use drift::unmapped_usage_key;
use fields::*;
use role::*;
use structured::*;

/// Largest SDK-reported cost accepted for one call, in USD; larger values are treated as corrupt.
const MAX_SDK_COST_USD: f64 = 1_000_000.0;

/// Most finish reasons kept for one span (one per choice; real calls have a handful).
const MAX_FINISH_REASONS: usize = 64;

fn id16(b: &[u8]) -> Option<[u8; 16]> {
    let a: [u8; 16] = b.try_into().ok()?;
    (a != [0; 16]).then_some(a)
}

fn id8(b: &[u8]) -> Option<[u8; 8]> {
    let a: [u8; 8] = b.try_into().ok()?;
    (a != [0; 8]).then_some(a)
}

/// Cuts a string to at most `max` bytes at a character boundary, reporting the cut.
fn keep(s: &str, max: usize, what: &str, warnings: &mut Vec<String>) -> String {
    let s = trimmed(s);
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    warnings.push(format!("{what} is {} bytes long; cut to {max} bytes", s.len()));
    s[..end].to_owned()
}

/// `s.trim()`, answered without decoding a character when `s` starts and ends with a printable
/// ASCII character (nearly every value), since then there is nothing to trim.
pub(crate) fn trimmed(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// At most the first 64 bytes of a name, for messages (a 1 MB span name must not make a 1 MB reply).
pub fn short(name: &str) -> &str {
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Normalizes one span. See the module documentation.
pub fn normalize(ctx: &ContextView<'_>, span: &SpanView<'_>, opts: &NormalizeOptions) -> Outcome {
    let Some(trace_id) = id16(span.trace_id) else {
        return Outcome::Rejected(format!(
            "span {:?}: trace_id must be 16 bytes (32 hex characters in OTLP/JSON) and not all zero, got {} bytes",
            short(span.name),
            span.trace_id.len()
        ));
    };
    let Some(span_id) = id8(span.span_id) else {
        return Outcome::Rejected(format!(
            "span {:?}: span_id must be 8 bytes (16 hex characters in OTLP/JSON) and not all zero, got {} bytes",
            short(span.name),
            span.span_id.len()
        ));
    };
    let Some(dialect) = dialect::detect(&span.attributes, ctx.scope_name) else {
        return Outcome::NotGenAi;
    };

    let mut warnings = Vec::new();
    let max = opts.max_value_len;
    let parent_span_id = if span.parent_span_id.is_empty() {
        None
    } else {
        let p = id8(span.parent_span_id);
        if p.is_none() {
            warnings.push(format!(
                "parent_span_id has {} bytes, expected 8; ignored",
                span.parent_span_id.len()
            ));
        }
        p
    };

    // Read every known key, keeping the best candidate per field.
    let rules = rules_by_key();
    let mut f = Fields::new();
    let mut unmapped = Vec::new();
    for (key, value) in &span.attributes {
        if let Some(rule) = rules.get(key) {
            if let Some(s) = to_scalar(value, rule.unit) {
                f.offer(rule.field, rule.rank, key, s);
            }
        } else if !read_structured(key, value, span, &mut f) && unmapped_usage_key(key) {
            unmapped.push((*key).to_owned());
        }
    }

    // Events: exceptions, first-token events; other events (content events) are tolerated.
    let mut error_texts: Vec<&str> = Vec::new();
    let mut has_exception = false;
    // An exception recorded on a span whose status says OK was handled (a retry that succeeded):
    // the call did not fail.
    let status_ok = span.status_code == StatusCode::Ok;
    for ev in &span.events {
        match ev.name {
            "exception" if status_ok => {}
            "exception" => {
                has_exception = true;
                for k in ["exception.type", "exception.message"] {
                    if let Some(s) = find(&ev.attributes, k).and_then(Value::as_str) {
                        error_texts.push(s);
                    }
                }
            }
            "First Token Stream Event" | "ai.stream.firstChunk" => {
                let ms = find(&ev.attributes, "ai.response.msToFirstChunk")
                    .or_else(|| find(&ev.attributes, "ai.stream.msToFirstChunk"))
                    .and_then(|v| to_scalar(v, Unit::Millis));
                if let Some(s) = ms {
                    f.offer(Field::Ttft, STRUCTURED_RANK + 1, ev.name, s);
                } else if ev.time_unix_nano >= span.start_unix_nano && span.start_unix_nano > 0 {
                    let s = (ev.time_unix_nano - span.start_unix_nano) as f64 / 1e9;
                    f.offer(Field::Ttft, STRUCTURED_RANK + 2, ev.name, Scalar::Num(s));
                }
            }
            _ => {}
        }
    }

    // Role and operation.
    let op = f.str(Field::Operation).map(canonical_operation);
    let role = role_from_markers(&span.attributes, span.name)
        .or_else(|| op.as_deref().map(role_from_operation))
        .unwrap_or_else(|| {
            let has_model = f.get(Field::RequestModel).is_some() || f.get(Field::ResponseModel).is_some();
            let has_usage = f.get(Field::InputTokens).is_some() || f.get(Field::OutputTokens).is_some();
            if has_model || has_usage {
                SpanRole::ModelCall
            } else if f.get(Field::ToolName).is_some() {
                SpanRole::Tool
            } else if f.get(Field::AgentName).is_some() {
                SpanRole::Agent
            } else {
                // GenAI context copied onto an unrelated child span (Traceloop association
                // properties, a propagated conversation id): not a call.
                SpanRole::Workflow
            }
        });
    let operation = match op {
        Some(o) => keep(&o, max, "operation name", &mut warnings),
        None => default_operation(role, &span.attributes).to_owned(),
    };

    // Provider and models.
    let provider = f
        .str(Field::Provider)
        .map(|p| keep(&canonical_provider(p), max, "provider name", &mut warnings));
    let request_model = f
        .str(Field::RequestModel)
        .map(|m| keep(m, max, "request model", &mut warnings));
    let response_model = f
        .str(Field::ResponseModel)
        .map(|m| keep(m, max, "response model", &mut warnings));
    let normalized_model = response_model
        .as_deref()
        .or(request_model.as_deref())
        .map(normalize_model);
    // No attribute names the provider (Langfuse, some OpenInference spans): a well-known model
    // prefix does.
    let provider = provider.or_else(|| {
        normalized_model
            .as_deref()
            .and_then(provider_from_model)
            .map(str::to_owned)
    });

    // Usage.
    let mut raw = RawUsage::default();
    let mut usage_valid = true;
    for (field, slot) in [
        (Field::InputTokens, &mut raw.input),
        (Field::OutputTokens, &mut raw.output),
        (Field::CacheReadTokens, &mut raw.cache_read),
        (Field::CacheWriteTokens, &mut raw.cache_write),
        (Field::CacheWrite1hTokens, &mut raw.cache_write_1h),
        (Field::ReasoningTokens, &mut raw.reasoning),
    ] {
        if let Some(c) = f.get(field) {
            match token_count(c) {
                Ok(n) => *slot = Some(n),
                Err(e) => {
                    warnings.push(format!("{e}; usage of this span ignored"));
                    usage_valid = false;
                }
            }
        }
    }
    // Vercel AI SDK v6 reports inclusive totals with a breakdown; earlier versions pass the
    // provider's own count through.
    let vercel_v6 = find(&span.attributes, "ai.usage.inputTokenDetails.noCacheTokens").is_some();
    let convention = if vercel_v6 {
        InputConvention::Inclusive
    } else {
        input_convention(dialect, provider.as_deref())
    };
    let usage = if usage_valid { to_buckets(raw, convention) } else { None };

    // Timings.
    let duration_s = if span.end_unix_nano >= span.start_unix_nano && span.start_unix_nano > 0 {
        Some((span.end_unix_nano - span.start_unix_nano) as f64 / 1e9)
    } else {
        warnings.push(format!(
            "span end time {} is before its start time {} (or start is 0); duration ignored",
            span.end_unix_nano, span.start_unix_nano
        ));
        None
    };
    // Streaming first, since time to first token means nothing for a call that did not stream
    // (OpenLIT reports the whole duration as "time to first token" there).
    let streaming = f.get(Field::Streaming).and_then(boolean).or_else(|| {
        // Vercel AI SDK: ai.streamText, ai.streamObject and their doStream steps stream;
        // generate and embed operations do not; tool calls say nothing.
        let op = find(&span.attributes, "ai.operationId").and_then(Value::as_str)?;
        if op.starts_with("ai.stream") {
            Some(true)
        } else if op.starts_with("ai.generate") || op.starts_with("ai.embed") {
            Some(false)
        } else {
            None
        }
    });
    let not_streamed = streaming == Some(false);
    let ttft_s = f
        .get(Field::Ttft)
        .filter(|_| !not_streamed)
        .and_then(|c| seconds(c, &mut warnings));
    let from_server = |fld: Field| !not_streamed && f.get(fld).is_some_and(|c| c.key.starts_with("gen_ai.server."));
    let (ttft_from_server, tpot_from_server) = (from_server(Field::Ttft), from_server(Field::Tpot));
    let output_total = usage.map(|u| u.output_total());
    let gen_time = match (duration_s, ttft_s) {
        (Some(d), Some(t)) if d > t => Some(d - t),
        (Some(d), None) => Some(d),
        _ => None,
    };
    let tpot_s = f
        .get(Field::Tpot)
        .filter(|_| !not_streamed)
        .and_then(|c| seconds(c, &mut warnings))
        .or_else(|| match (ttft_s, gen_time, output_total) {
            (Some(_), Some(g), Some(n)) if n > 1 && g > 0.0 => Some(g / (n - 1) as f64),
            _ => None,
        });
    let output_tokens_per_s = match (gen_time, output_total) {
        (Some(g), Some(n)) if g > 0.0 && n > 0 => Some(n as f64 / g),
        _ => None,
    };

    // Finish reasons.
    let finish_reasons: Vec<String> = match f.get(Field::FinishReasons).map(|c| &c.value) {
        Some(Scalar::List(l)) => l.iter().map(|s| keep(s, max, "finish reason", &mut warnings)).collect(),
        Some(Scalar::Str(s)) => {
            let t = s.trim();
            if t.starts_with('[') {
                let mut list = serde_json::from_str::<Vec<String>>(t).unwrap_or_default();
                list.truncate(MAX_FINISH_REASONS);
                list.iter()
                    .map(|r| keep(r, max, "finish reason", &mut warnings))
                    .collect()
            } else if t.is_empty() {
                Vec::new()
            } else {
                vec![keep(t, max, "finish reason", &mut warnings)]
            }
        }
        _ => Vec::new(),
    };

    // Errors.
    let langfuse_error = find(&span.attributes, "langfuse.observation.level")
        .and_then(Value::as_str)
        .is_some_and(|l| l.eq_ignore_ascii_case("ERROR"));
    if langfuse_error {
        if let Some(m) = find(&span.attributes, "langfuse.observation.status_message").and_then(Value::as_str) {
            error_texts.push(m);
        }
    }
    let status_error = span.status_code == StatusCode::Error || langfuse_error;
    if status_error && !span.status_message.is_empty() {
        error_texts.push(span.status_message);
    }
    let error_type_raw = f.str(Field::ErrorType);
    let http_status = f.get(Field::HttpStatus).and_then(number).map(|x| x as i64);
    let signals = ErrorSignals {
        status_error: status_error || has_exception,
        error_type: error_type_raw,
        texts: error_texts,
        http_status,
        finish_reasons: &finish_reasons,
    };
    let error_class = error_class::classify(&signals);
    let error_type = error_class.and_then(|_| {
        error_type_raw
            .map(|t| keep(t, max, "error.type", &mut warnings))
            .or_else(|| http_status.filter(|c| *c >= 400).map(|c| c.to_string()))
    });
    let status = match span.status_code {
        StatusCode::Error => CallStatus::Error,
        _ if error_class.is_some() && error_class != Some(crate::record::ErrorClass::ContentFiltered) => {
            CallStatus::Error
        }
        StatusCode::Ok => CallStatus::Ok,
        StatusCode::Unset => CallStatus::Unset,
    };

    // Context.
    let service_name = ctx
        .service_name
        .filter(|s| !s.trim().is_empty() && !s.starts_with("unknown_service"))
        .or_else(|| find(&span.attributes, "service.name").and_then(Value::as_str))
        .or(ctx.service_name)
        .filter(|s| !s.trim().is_empty())
        .map(|s| keep(s, max, "service.name", &mut warnings))
        .unwrap_or_else(|| "unknown_service".to_owned());
    let environment = ctx
        .environment
        .or_else(|| f.str(Field::Environment))
        .map(|s| keep(s, max, "deployment environment", &mut warnings));
    let tenant = opts
        .tenant_keys
        .iter()
        .enumerate()
        .find_map(|(i, k)| {
            find(&span.attributes, k)
                .and_then(Value::as_str)
                .or_else(|| ctx.tenants.get(i).copied().flatten())
        })
        .map(|s| keep(s, max, "tenant", &mut warnings));

    // Agent and tool spans are named after their agent or tool when no attribute says it:
    // Traceloop's entity name, else the span name without its operation prefix.
    let step_name = |prefix: &str| {
        find(&span.attributes, "traceloop.entity.name")
            .and_then(Value::as_str)
            .unwrap_or_else(|| span.name.strip_prefix(prefix).unwrap_or(span.name))
    };
    let agent_name = match (f.str(Field::AgentName), role) {
        (Some(a), _) => Some(a),
        (None, SpanRole::Agent) => Some(step_name("invoke_agent ")),
        _ => None,
    }
    .map(|a| keep(a, max, "agent name", &mut warnings));
    let tool_name = match (f.str(Field::ToolName), role) {
        (Some(t), _) => Some(t),
        (None, SpanRole::Tool) => Some(step_name("execute_tool ")),
        _ => None,
    }
    .map(|t| keep(t, max, "tool name", &mut warnings));
    let mut text = |field: Field, what: &str| f.str(field).map(|s| keep(s, max, what, &mut warnings));
    let agent = AgentContext {
        agent_id: text(Field::AgentId, "gen_ai.agent.id"),
        agent_name,
        workflow_name: text(Field::WorkflowName, "workflow name"),
        conversation_id: text(Field::ConversationId, "conversation id"),
        tool_name,
        tool_call_id: text(Field::ToolCallId, "tool call id"),
    };
    let response_id = text(Field::ResponseId, "response id");
    let service_tier = text(Field::ServiceTier, "service tier").map(|t| t.to_ascii_lowercase());
    let server_address = text(Field::ServerAddress, "server.address");
    let server_port = f
        .get(Field::ServerPort)
        .and_then(number)
        .filter(|p| (1.0..=65535.0).contains(p))
        .map(|p| p as u16);
    let sdk_reported_cost_usd = f
        .get(Field::SdkCost)
        .and_then(number)
        .filter(|c| c.is_finite() && (0.0..=MAX_SDK_COST_USD).contains(c));

    let call = LlmCall {
        trace_id,
        span_id,
        parent_span_id,
        start_unix_nano: span.start_unix_nano,
        end_unix_nano: span.end_unix_nano,
        tenant,
        service_name,
        environment,
        dialect,
        scope_name: keep(ctx.scope_name, max, "instrumentation scope name", &mut warnings),
        role,
        operation,
        provider,
        request_model,
        response_model,
        normalized_model,
        response_id,
        streaming,
        finish_reasons,
        status,
        error_class,
        error_type,
        server_address,
        server_port,
        counts_usage: role == SpanRole::ModelCall,
        usage,
        timings: Timings {
            duration_s,
            ttft_s,
            tpot_s,
            output_tokens_per_s,
            ttft_from_server,
            tpot_from_server,
        },
        sdk_reported_cost_usd,
        service_tier,
        cost: None,
        price_status: PriceStatus::NotPriced,
        agent,
    };
    Outcome::Call(Box::new(Normalized {
        call,
        warnings,
        conflicts: f.conflicts,
        unmapped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::EventView;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn trimmed_is_trim(s in "[ \t\n\u{a0}\u{2003}\u{3000}a-z0-9é._/-]{0,12}") {
            prop_assert_eq!(trimmed(&s), s.trim());
        }
    }

    fn span<'a>(attrs: Vec<Attribute<'a>>) -> SpanView<'a> {
        SpanView {
            trace_id: &[1; 16],
            span_id: &[2; 8],
            name: "test",
            start_unix_nano: 1_000_000_000,
            end_unix_nano: 2_000_000_000,
            attributes: attrs,
            ..Default::default()
        }
    }

    fn call(s: &SpanView<'_>) -> LlmCall {
        match normalize(&ContextView::default(), s, &NormalizeOptions::default()) {
            Outcome::Call(n) => n.call,
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn an_exception_on_a_span_with_ok_status_was_handled() {
        let mut s = span(vec![
            ("gen_ai.operation.name", Value::Str("chat")),
            ("gen_ai.request.model", Value::Str("m")),
        ]);
        s.events.push(EventView {
            name: "exception",
            time_unix_nano: 1_500_000_000,
            attributes: vec![("exception.type", Value::Str("openai.RateLimitError"))],
        });
        s.status_code = StatusCode::Ok;
        assert_eq!(call(&s).error_class, None);
        s.status_code = StatusCode::Unset;
        assert_eq!(call(&s).error_class, Some(crate::ErrorClass::RateLimited));
    }

    #[test]
    fn current_convention_operations_and_keys() {
        // fetch_response carries usage of a stored response, not a call.
        let fetch = span(vec![
            ("gen_ai.operation.name", Value::Str("fetch_response")),
            ("gen_ai.request.model", Value::Str("gpt-4o")),
            ("gen_ai.usage.input_tokens", Value::Int(100)),
            ("gen_ai.usage.output_tokens", Value::Int(10)),
        ]);
        let c = call(&fetch);
        assert_eq!((c.role, c.counts_usage), (SpanRole::Workflow, false));
        for op in ["invoke_workflow", "plan"] {
            let c = call(&span(vec![("gen_ai.operation.name", Value::Str(op))]));
            assert_eq!(c.role, SpanRole::Workflow, "{op}");
        }
        // The current cache-write key, its 1-hour part, and a USD cost, with the v1.41 names beside.
        let s = span(vec![
            ("gen_ai.operation.name", Value::Str("chat")),
            ("gen_ai.request.model", Value::Str("claude-sonnet-4-20250514")),
            ("gen_ai.usage.input_tokens", Value::Int(3021)),
            ("gen_ai.usage.cache_read.input_tokens", Value::Int(1000)),
            ("gen_ai.usage.cache_write.input_tokens", Value::Int(2000)),
            (
                "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",
                Value::Int(500),
            ),
            ("gen_ai.usage.output_tokens", Value::Int(44)),
            ("gen_ai.usage.cost.amount", Value::Double(0.0138)),
            ("gen_ai.usage.cost.currency", Value::Str("USD")),
            ("gen_ai.usage.video.input_tokens", Value::Int(7)),
        ]);
        let c = call(&s);
        let u = c.usage.expect("usage");
        assert_eq!(
            (
                u.input_uncached,
                u.cache_read,
                u.cache_write,
                u.cache_write_1h,
                u.output
            ),
            (21, 1000, 1500, 500, 44)
        );
        assert_eq!(c.sdk_reported_cost_usd, Some(0.0138));
        let Outcome::Call(n) = normalize(&ContextView::default(), &s, &NormalizeOptions::default()) else {
            panic!("a call")
        };
        assert_eq!(n.unmapped, vec!["gen_ai.usage.video.input_tokens".to_owned()]);
        // A cost in another currency is not taken for USD.
        let eur = span(vec![
            ("gen_ai.operation.name", Value::Str("chat")),
            ("gen_ai.usage.cost.amount", Value::Double(1.0)),
            ("gen_ai.usage.cost.currency", Value::Str("EUR")),
        ]);
        assert_eq!(call(&eur).sdk_reported_cost_usd, None);
    }

    #[test]
    fn genai_context_on_an_unrelated_span_is_not_a_model_call() {
        let s = span(vec![
            ("traceloop.workflow.name", Value::Str("digest")),
            ("gen_ai.conversation.id", Value::Str("c1")),
        ]);
        let c = call(&s);
        assert_eq!((c.role, c.counts_usage), (SpanRole::Workflow, false));
    }

    #[test]
    fn langfuse_cache_write_parts_replace_the_total_and_aliases_are_not_summed() {
        let usage = r#"{"input": 10, "input_cache_creation": 300, "input_cache_creation_5m": 100, "input_cache_creation_1h": 200,
                        "input_cached_tokens": 50, "cache_read_input_tokens": 50, "output": 5}"#;
        let s = span(vec![
            ("langfuse.observation.type", Value::Str("generation")),
            ("langfuse.observation.model.name", Value::Str("claude-sonnet-4-5")),
            ("langfuse.observation.usage_details", Value::Str(usage)),
        ]);
        let u = call(&s).usage.unwrap();
        assert_eq!(
            (
                u.input_uncached,
                u.cache_read,
                u.cache_write,
                u.cache_write_1h,
                u.output
            ),
            (10, 50, 100, 200, 5)
        );
    }

    #[test]
    fn absurd_sdk_cost_and_huge_values_are_ignored() {
        let nines = "9".repeat(100_000);
        let s = span(vec![
            ("gen_ai.operation.name", Value::Str("chat")),
            ("gen_ai.usage.cost", Value::Double(1.7e308)),
            ("gen_ai.usage.input_tokens", Value::Str(&nines)),
        ]);
        let n = match normalize(&ContextView::default(), &s, &NormalizeOptions::default()) {
            Outcome::Call(n) => n,
            other => panic!("{other:?}"),
        };
        assert_eq!(n.call.sdk_reported_cost_usd, None);
        assert_eq!(n.call.usage, None);
        assert!(
            n.warnings.iter().all(|w| w.len() < 400),
            "messages stay short: {:?}",
            n.warnings
        );
    }

    #[test]
    fn many_indexed_finish_reasons_are_capped() {
        let keys: Vec<String> = (0..10_000)
            .map(|i| format!("gen_ai.completion.{i}.finish_reason"))
            .collect();
        let mut attrs: Vec<Attribute<'_>> = keys.iter().map(|k| (k.as_str(), Value::Str("stop"))).collect();
        attrs.push(("llm.request.type", Value::Str("chat")));
        assert_eq!(call(&span(attrs)).finish_reasons.len(), MAX_FINISH_REASONS);
    }
}

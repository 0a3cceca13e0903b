use super::*;
use crate::record::{CallStatus, ErrorClass, SpanRole, Usage};
use crate::span::Value;

const SESSION: &str = "8a54b0ff-8af8-4a55-bc85-87e9a0f70731";
const PROMPT: &str = "9cab5a40-bba3-4914-b1aa-4f6f48726a96";
const TIME: u64 = 1_796_685_944_808_000_000;

/// The attributes of a `claude_code.api_request` record as Claude Code 2.1.337 sent it (values
/// from a captured run against a fake Messages API answering input 1234, cache creation 2345,
/// cache read 3456, output 456).
fn api_request(sequence: i64) -> Vec<Attribute<'static>> {
    vec![
        (
            "user.id",
            Value::Str("9e6806ae47fc811d1be362dd5c174e537bf1264c0425d86841fe9bcec6f50f9b"),
        ),
        ("session.id", Value::Str(SESSION)),
        ("terminal.type", Value::Str("xterm-256color")),
        ("event.name", Value::Str("api_request")),
        ("event.timestamp", Value::Str("2026-12-07T23:25:44.808Z")),
        ("event.sequence", Value::Int(sequence)),
        ("prompt.id", Value::Str(PROMPT)),
        ("model", Value::Str("claude-sonnet-4-5")),
        ("input_tokens", Value::Int(1234)),
        ("output_tokens", Value::Int(456)),
        ("cache_read_tokens", Value::Int(3456)),
        ("cache_creation_tokens", Value::Int(2345)),
        ("cache_creation_5m_tokens", Value::Int(0)),
        ("cache_creation_1h_tokens", Value::Int(0)),
        ("cost_usd", Value::Double(0.026_472_199_999_999_998)),
        ("cost_usd_micros", Value::Int(26472)),
        ("duration_ms", Value::Int(35)),
        ("ttft_ms", Value::Int(18)),
        ("request_id", Value::Str("req_fake_44dc2c797ad1")),
        ("tenant.id", Value::Str("acme")),
    ]
}

fn record(body: &'static str, attributes: Vec<Attribute<'static>>) -> LogView<'static> {
    LogView {
        time_unix_nano: TIME,
        observed_time_unix_nano: TIME,
        body: Some(body),
        attributes,
        ..Default::default()
    }
}

fn ctx() -> ContextView<'static> {
    ContextView {
        service_name: Some("claude-code"),
        scope_name: "com.anthropic.claude_code.events",
        tenants: vec![None],
        ..Default::default()
    }
}

fn call(log: &LogView<'_>) -> crate::LlmCall {
    match read_event(&ctx(), log, &NormalizeOptions::default()) {
        Outcome::Call(n) => {
            assert_eq!(n.warnings, Vec::<String>::new());
            n.call
        }
        other => panic!("not a call: {other:?}"),
    }
}

#[test]
fn an_api_request_is_one_model_call_with_its_six_buckets_and_reported_cost() {
    let c = call(&record("claude_code.api_request", api_request(7)));
    assert_eq!(c.dialect, Dialect::ClaudeCode);
    assert_eq!(c.role, SpanRole::ModelCall);
    assert_eq!(c.operation, "chat");
    assert_eq!(c.provider.as_deref(), Some("anthropic"));
    assert_eq!(c.request_model.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(c.normalized_model.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(c.service_name, "claude-code");
    assert_eq!(c.scope_name, "com.anthropic.claude_code.events");
    assert_eq!(c.tenant.as_deref(), Some("acme"));
    assert_eq!(c.agent.conversation_id.as_deref(), Some(SESSION));
    assert_eq!(
        c.usage,
        Some(Usage {
            input_uncached: 1234,
            cache_read: 3456,
            cache_write: 2345,
            cache_write_1h: 0,
            output: 456,
            reasoning: 0,
        })
    );
    assert_eq!(c.sdk_reported_cost_usd, Some(0.026_472_199_999_999_998));
    assert_eq!(c.end_unix_nano, TIME);
    assert_eq!(c.start_unix_nano, TIME - 35_000_000);
    assert_eq!(c.timings.duration_s, Some(0.035));
    assert_eq!(c.timings.ttft_s, Some(0.018));
    assert_eq!(c.streaming, Some(true));
    assert_eq!(c.status, CallStatus::Unset);
    assert!(c.counts_usage);
}

#[test]
fn the_same_event_resent_is_the_same_call_and_the_next_one_is_not() {
    let a = call(&record("claude_code.api_request", api_request(7)));
    let again = call(&record("claude_code.api_request", api_request(7)));
    let next = call(&record("claude_code.api_request", api_request(9)));
    assert_eq!((a.trace_id, a.span_id), (again.trace_id, again.span_id));
    // One prompt, one trace; each request its own span.
    assert_eq!(a.trace_id, next.trace_id);
    assert_ne!(a.span_id, next.span_id);
}

#[test]
fn a_one_hour_cache_write_counts_only_when_the_split_adds_up() {
    let mut attrs = api_request(7);
    for (k, v) in attrs.iter_mut() {
        match *k {
            "cache_creation_5m_tokens" => *v = Value::Int(345),
            "cache_creation_1h_tokens" => *v = Value::Int(2000),
            _ => {}
        }
    }
    let u = call(&record("claude_code.api_request", attrs)).usage.unwrap();
    assert_eq!((u.cache_write, u.cache_write_1h), (345, 2000));
}

#[test]
fn an_api_error_is_a_failed_call_classified_by_its_status() {
    let attrs = vec![
        ("session.id", Value::Str(SESSION)),
        ("event.sequence", Value::Int(12)),
        ("model", Value::Str("claude-sonnet-4-5")),
        ("error", Value::Str("rate_limit_error")),
        ("status_code", Value::Str("429")),
        ("duration_ms", Value::Int(120)),
        ("attempt", Value::Int(1)),
    ];
    let c = call(&record("claude_code.api_error", attrs));
    assert_eq!(c.status, CallStatus::Error);
    assert_eq!(c.error_class, Some(ErrorClass::RateLimited));
    assert_eq!(c.usage, None);
    assert_eq!(c.start_unix_nano, TIME - 120_000_000);
}

#[test]
fn events_are_known_by_field_attribute_or_body_and_others_are_not_genai() {
    let by_field = LogView {
        event_name: "claude_code.api_request",
        ..record("", api_request(1))
    };
    assert_eq!(KnownEvent::of(&by_field), Some(KnownEvent::ClaudeCodeApiRequest));
    let other = record(
        "claude_code.user_prompt",
        vec![("event.name", Value::Str("user_prompt"))],
    );
    assert_eq!(KnownEvent::of(&other), None);
    assert_eq!(
        read_event(&ctx(), &other, &NormalizeOptions::default()),
        Outcome::NotGenAi
    );
    let untimed = LogView {
        time_unix_nano: 0,
        observed_time_unix_nano: 0,
        ..record("claude_code.api_request", api_request(1))
    };
    assert_eq!(
        read_event(&ctx(), &untimed, &NormalizeOptions::default()),
        Outcome::Rejected(
            "event \"claude_code.api_request\": neither time_unix_nano nor observed_time_unix_nano is set".to_owned()
        )
    );
}

//! End to end: the real `opentelemetry_sdk` with the `opentelemetry-otlp` exporters (gRPC with
//! gzip, HTTP protobuf, HTTP JSON) sends GenAI spans to a running llmhub over loopback; the test
//! scrapes `/metrics` and checks exact token sums, counts and histogram bucket placement.

mod common;

use common::{count, loopback_config, scrape, start, sum};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Array, Context, KeyValue, Value};
use opentelemetry_otlp::{Compression, Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::time::{Duration, SystemTime};

fn resource(service: &str) -> Resource {
    Resource::builder()
        .with_service_name(service.to_owned())
        .with_attribute(KeyValue::new("deployment.environment.name", "test"))
        .build()
}

fn t(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_763_600_000_000 + ms)
}

/// Emits the scenario every transport sends:
/// - a streamed chat call: 1000 input (800 cache read), 300 output (100 reasoning), 2 s, TTFC 0.25 s;
/// - an agent span with summed usage (must not count) wrapping that call and a tool span (0.5 s);
/// - a rate-limited call (no usage, error);
/// - an embeddings call with 64 input tokens;
/// - an HTTP span with no GenAI attributes (passed over).
fn emit(provider: &SdkTracerProvider) {
    let tracer = provider.tracer("e2e-instrumentation");
    let mut agent = tracer
        .span_builder("invoke_agent planner")
        .with_kind(SpanKind::Internal)
        .with_start_time(t(0))
        .with_attributes(vec![
            KeyValue::new("gen_ai.operation.name", "invoke_agent"),
            KeyValue::new("gen_ai.agent.name", "planner"),
            KeyValue::new("gen_ai.provider.name", "openai"),
            KeyValue::new("gen_ai.usage.input_tokens", 1000i64),
            KeyValue::new("gen_ai.usage.output_tokens", 300i64),
        ])
        .start(&tracer);
    let cx = Context::current().with_remote_span_context(agent.span_context().clone());
    let mut chat = tracer
        .span_builder("chat gpt-4o")
        .with_kind(SpanKind::Client)
        .with_start_time(t(100))
        .with_attributes(vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", "openai"),
            KeyValue::new("gen_ai.request.model", "gpt-4o"),
            KeyValue::new("gen_ai.response.model", "gpt-4o-2024-08-06"),
            KeyValue::new("gen_ai.response.id", "chatcmpl-e2e-1"),
            KeyValue::new("gen_ai.request.stream", true),
            KeyValue::new("gen_ai.response.time_to_first_chunk", 0.25),
            KeyValue::new("gen_ai.usage.input_tokens", 1000i64),
            KeyValue::new("gen_ai.usage.cache_read.input_tokens", 800i64),
            KeyValue::new("gen_ai.usage.output_tokens", 300i64),
            KeyValue::new("gen_ai.usage.reasoning.output_tokens", 100i64),
            KeyValue::new(
                "gen_ai.response.finish_reasons",
                Value::Array(Array::String(vec!["stop".into()])),
            ),
        ])
        .start_with_context(&tracer, &cx);
    chat.end_with_timestamp(t(2100));
    let mut tool = tracer
        .span_builder("execute_tool get_weather")
        .with_start_time(t(2200))
        .with_attributes(vec![
            KeyValue::new("gen_ai.operation.name", "execute_tool"),
            KeyValue::new("gen_ai.tool.name", "get_weather"),
            KeyValue::new("gen_ai.tool.call.id", "call_1"),
        ])
        .start_with_context(&tracer, &cx);
    tool.end_with_timestamp(t(2700));
    agent.end_with_timestamp(t(3000));

    let mut failed = tracer
        .span_builder("chat claude-sonnet-4")
        .with_kind(SpanKind::Client)
        .with_start_time(t(5000))
        .with_attributes(vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", "anthropic"),
            KeyValue::new("gen_ai.request.model", "claude-sonnet-4"),
            KeyValue::new("error.type", "RateLimitError"),
        ])
        .start(&tracer);
    failed.set_status(Status::error("429 Too Many Requests"));
    failed.end_with_timestamp(t(5030));

    let mut embed = tracer
        .span_builder("embeddings text-embedding-3-small")
        .with_kind(SpanKind::Client)
        .with_start_time(t(6000))
        .with_attributes(vec![
            KeyValue::new("gen_ai.operation.name", "embeddings"),
            KeyValue::new("gen_ai.provider.name", "openai"),
            KeyValue::new("gen_ai.request.model", "text-embedding-3-small"),
            KeyValue::new("gen_ai.usage.input_tokens", 64i64),
        ])
        .start(&tracer);
    embed.end_with_timestamp(t(6040));

    let mut http = tracer
        .span_builder("GET /health")
        .with_kind(SpanKind::Server)
        .with_attributes(vec![KeyValue::new("http.request.method", "GET")])
        .start(&tracer);
    http.end();
}

async fn flush(provider: SdkTracerProvider) {
    tokio::task::spawn_blocking(move || {
        provider.force_flush().expect("flush succeeds");
        provider.shutdown().expect("shutdown succeeds");
    })
    .await
    .expect("flush task");
}

fn check_scenario(m: &[common::Sample], service: &str) {
    let svc = ("service_name", service);
    // Tokens by disjoint bucket: only the chat and embeddings calls, never the agent's sum.
    let tok = |bucket: &str| sum(m, "llmhub_tokens_total", &[svc, ("llmhub_token_bucket", bucket)]);
    assert_eq!(tok("input_uncached"), 200.0 + 64.0, "{service}: uncached input");
    assert_eq!(tok("cache_read"), 800.0, "{service}: cache read");
    assert_eq!(tok("cache_write"), 0.0, "{service}: cache write");
    assert_eq!(tok("output"), 200.0, "{service}: visible output");
    assert_eq!(tok("reasoning"), 100.0, "{service}: reasoning");

    // gen_ai.client.token.usage: input 1000 and 64, output 300 and 0.
    let usage = "gen_ai_client_token_usage_sum";
    assert_eq!(sum(m, usage, &[svc, ("gen_ai_token_type", "input")]), 1064.0);
    assert_eq!(sum(m, usage, &[svc, ("gen_ai_token_type", "output")]), 300.0);
    let chat_in = [svc, ("gen_ai_token_type", "input"), ("gen_ai_request_model", "gpt-4o")];
    let bucket = |le: &str| {
        let mut w = chat_in.to_vec();
        w.push(("le", le));
        sum(m, "gen_ai_client_token_usage_bucket", &w)
    };
    assert_eq!(bucket("256.0"), 0.0, "1000 tokens is above the 256 bucket");
    assert_eq!(bucket("1024.0"), 1.0, "1000 tokens falls in the 1024 bucket");

    // Requests: three model calls; one error classed rate_limited; one without usage.
    assert_eq!(sum(m, "llmhub_requests_total", &[svc]), 3.0);
    assert_eq!(
        sum(m, "llmhub_errors_total", &[svc, ("error_type", "rate_limited")]),
        1.0
    );
    assert_eq!(
        sum(
            m,
            "llmhub_usage_missing_total",
            &[svc, ("gen_ai_request_model", "claude-sonnet-4")]
        ),
        1.0
    );

    // Durations: the chat call took 2.0 s (bucket 2.56, not 1.28); agent and tool have their own.
    let dur = "gen_ai_client_operation_duration_seconds";
    let chat = [
        svc,
        ("gen_ai_request_model", "gpt-4o"),
        ("gen_ai_operation_name", "chat"),
    ];
    let with_le = |le: &'static str| {
        let mut w = chat.to_vec();
        w.push(("le", le));
        w
    };
    assert_eq!(sum(m, &format!("{dur}_bucket"), &with_le("1.28")), 0.0);
    assert_eq!(sum(m, &format!("{dur}_bucket"), &with_le("2.56")), 1.0);
    assert!((sum(m, &format!("{dur}_sum"), &chat) - 2.0).abs() < 1e-9);
    assert_eq!(
        sum(
            m,
            &format!("{dur}_count"),
            &[svc, ("gen_ai_operation_name", "invoke_agent")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            m,
            "llmhub_tool_duration_seconds_count",
            &[svc, ("gen_ai_tool_name", "get_weather")]
        ),
        1.0
    );
    assert!(
        (sum(
            m,
            "llmhub_tool_duration_seconds_sum",
            &[svc, ("gen_ai_tool_name", "get_weather")]
        ) - 0.5)
            .abs()
            < 1e-9
    );
    assert_eq!(
        sum(
            m,
            "llmhub_agent_duration_seconds_count",
            &[svc, ("gen_ai_agent_name", "planner")]
        ),
        1.0
    );

    // Time to first chunk: 0.25 s, in the 0.32 bucket and not the 0.16 one.
    let ttfc = "gen_ai_client_operation_time_to_first_chunk_seconds";
    assert_eq!(sum(m, &format!("{ttfc}_count"), &[svc]), 1.0);
    assert_eq!(sum(m, &format!("{ttfc}_bucket"), &[svc, ("le", "0.16")]), 0.0);
    assert_eq!(sum(m, &format!("{ttfc}_bucket"), &[svc, ("le", "0.32")]), 1.0);
    // Labels carry the environment and the response model.
    assert_eq!(
        count(
            m,
            "llmhub_requests_total",
            &[svc, ("deployment_environment_name", "test")]
        ),
        3
    );
    assert_eq!(
        sum(
            m,
            "llmhub_requests_total",
            &[svc, ("gen_ai_response_model", "gpt-4o-2024-08-06")]
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exporters_over_grpc_and_http_produce_exact_metrics() {
    let running = start(&loopback_config()).await;
    let grpc = running.grpc_addr.expect("grpc enabled");
    let http = running.http_addr.expect("http enabled");

    // gRPC with gzip.
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://{grpc}"))
        .with_compression(Compression::Gzip)
        .build()
        .expect("grpc exporter");
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource("svc-grpc"))
        .build();
    emit(&provider);
    flush(provider).await;

    // HTTP protobuf (gzip) and HTTP JSON; the blocking HTTP client is built off the runtime.
    for (service, protocol, gzip) in [
        ("svc-http-proto", Protocol::HttpBinary, true),
        ("svc-http-json", Protocol::HttpJson, false),
    ] {
        let endpoint = format!("http://{http}/v1/traces");
        let provider = tokio::task::spawn_blocking(move || {
            let mut b = SpanExporter::builder()
                .with_http()
                .with_protocol(protocol)
                .with_endpoint(endpoint);
            if gzip {
                b = b.with_compression(Compression::Gzip);
            }
            let exporter = b.build().expect("http exporter");
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource(service))
                .build()
        })
        .await
        .expect("build provider");
        emit(&provider);
        flush(provider).await;
    }

    let m = scrape(running.metrics_addr).await;
    for service in ["svc-grpc", "svc-http-proto", "svc-http-json"] {
        check_scenario(&m, service);
    }
    // Each transport saw its six spans; the HTTP span was passed over three times.
    assert_eq!(
        sum(&m, "llmhub_receiver_spans_total", &[("llmhub_transport", "grpc")]),
        6.0
    );
    assert_eq!(
        sum(
            &m,
            "llmhub_receiver_spans_total",
            &[("llmhub_transport", "http_protobuf")]
        ),
        6.0
    );
    assert_eq!(
        sum(&m, "llmhub_receiver_spans_total", &[("llmhub_transport", "http_json")]),
        6.0
    );
    assert_eq!(
        sum(&m, "llmhub_processor_spans_total", &[("llmhub_span_role", "not_genai")]),
        3.0
    );
    running.stop().await.expect("clean stop");
}

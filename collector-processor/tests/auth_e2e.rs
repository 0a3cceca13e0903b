//! API-key authentication end to end: real OpenTelemetry SDK exporters (gRPC and HTTP) send with
//! a key bound to a tenant, and every call counts for that tenant whatever tenant attribute the
//! spans claim; a key without a tenant keeps the spans' own; requests without a key or with a
//! wrong one are refused with UNAUTHENTICATED / 401 on every signal, counting nothing; `/metrics`
//! takes its own key while `/healthz` and `/readyz` stay open.

mod common;

use common::{loopback_config, parse, sum};
use llmhub::config::Config;
use opentelemetry::trace::{Span as _, SpanKind, Tracer, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::collections::HashMap;
use std::net::SocketAddr;

const ACME: &str = "acme-ingest-key-0123456789";
const COLLECTOR: &str = "collector-key-0123456789";
const SCRAPER: &str = "scraper-key-0123456789";

fn config() -> Config {
    let mut c = loopback_config();
    c.receivers.otlp.auth = Some(
        serde_json::from_value(serde_json::json!({
            "api_keys": [{ "key": ACME, "tenant": "acme" }, { "key": COLLECTOR }]
        }))
        .expect("receiver auth"),
    );
    c.exporters.prometheus.auth =
        Some(serde_json::from_value(serde_json::json!({ "api_keys": [{ "key": SCRAPER }] })).expect("metrics auth"));
    c
}

/// The resource claims tenant `globex`.
fn provider(exporter: SpanExporter, service: &str) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_owned())
                .with_attribute(KeyValue::new("tenant.id", "globex"))
                .build(),
        )
        .build()
}

fn emit(p: &SdkTracerProvider) {
    let tracer = p.tracer("auth-e2e");
    let mut span = tracer
        .span_builder("chat gpt-4o")
        .with_kind(SpanKind::Client)
        .with_attributes(vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", "openai"),
            KeyValue::new("gen_ai.request.model", "gpt-4o"),
            KeyValue::new("gen_ai.usage.input_tokens", 100),
            KeyValue::new("gen_ai.usage.output_tokens", 10),
        ])
        .start(&tracer);
    span.end();
}

/// The real HTTP/protobuf exporter, sending `header: value`, emits the scenario as `service`.
async fn emit_over_http(http: SocketAddr, header: &'static str, value: String, service: &'static str) {
    let endpoint = format!("http://{http}/v1/traces");
    // The blocking HTTP client is built off the runtime.
    let p = tokio::task::spawn_blocking(move || {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_headers(HashMap::from([(header.to_owned(), value)]))
            .build()
            .expect("http exporter");
        provider(exporter, service)
    })
    .await
    .expect("provider");
    emit(&p);
    flush(p).await;
}

async fn flush(p: SdkTracerProvider) {
    tokio::task::spawn_blocking(move || {
        let _ = p.force_flush();
        let _ = p.shutdown();
    })
    .await
    .expect("flush task");
}

async fn metrics(addr: SocketAddr, key: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("http://{addr}/metrics"));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.expect("scrape");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_decide_who_may_send_and_for_which_tenant() {
    let running = common::start(&config()).await;
    let grpc = running.grpc_addr.expect("grpc");
    let http = running.http_addr.expect("http");

    // The real SDK exporters: gRPC with the acme key as bearer metadata, HTTP with X-API-Key.
    let mut md = tonic::metadata::MetadataMap::new();
    md.insert("authorization", format!("Bearer {ACME}").parse().expect("metadata"));
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("http://{grpc}"))
        .with_metadata(md)
        .build()
        .expect("grpc exporter");
    let p = provider(exporter, "svc-grpc");
    emit(&p);
    flush(p).await;
    emit_over_http(http, "x-api-key", ACME.to_owned(), "svc-http").await;
    // A collector's key names no tenant: the spans' own tenant attribute stands.
    emit_over_http(http, "authorization", format!("Bearer {COLLECTOR}"), "svc-collector").await;
    // Logs too: Claude Code's export (testdata), its resource claiming tenant globex, sent with
    // the acme key, counts for acme.
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/coding-agents/claude-code-2.1.337-logs.json");
    let mut logs: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("json");
    logs["resourceLogs"][0]["resource"]["attributes"]
        .as_array_mut()
        .expect("resource attributes")
        .push(serde_json::json!({"key": "tenant.id", "value": {"stringValue": "globex"}}));
    let r = reqwest::Client::new()
        .post(format!("http://{http}/v1/logs"))
        .header("content-type", "application/json")
        .header("x-api-key", ACME)
        .body(logs.to_string())
        .send()
        .await
        .expect("post logs");
    assert_eq!(r.status().as_u16(), 200);

    // No key, a wrong key: UNAUTHENTICATED over gRPC, 401 over HTTP, on every signal.
    let req = ExportTraceServiceRequest::default();
    let mut client = TraceServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connect");
    let err = client.export(req.clone()).await.expect_err("no key");
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("authentication required"), "{}", err.message());
    let mut wrong = tonic::Request::new(req);
    wrong.metadata_mut().insert(
        "authorization",
        "Bearer not-the-key-0123456789".parse().expect("metadata"),
    );
    let err = client.export(wrong).await.expect_err("wrong key");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert_eq!(err.message(), "the API key is not valid");
    let http_client = reqwest::Client::new();
    for (path, key) in [
        ("/v1/traces", None),
        ("/v1/traces", Some("not-the-key-0123456789")),
        ("/v1/metrics", None),
        ("/v1/logs", None),
    ] {
        let mut r = http_client
            .post(format!("http://{http}{path}"))
            .header("content-type", "application/json")
            .body(r#"{"resourceSpans":[]}"#);
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        let resp = r.send().await.expect("post");
        assert_eq!(resp.status().as_u16(), 401, "{path} {key:?}");
        assert_eq!(
            resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
        let body: serde_json::Value = resp.json().await.expect("json status");
        assert_eq!(body["code"], 16, "{body}");
    }

    // /metrics needs the scraper's key; health endpoints do not.
    let metrics_addr = running.metrics_addr;
    assert_eq!(metrics(metrics_addr, None).await.0, 401);
    assert_eq!(
        metrics(metrics_addr, Some(ACME)).await.0,
        401,
        "a receiver key is not a scrape key"
    );
    for path in ["/healthz", "/readyz"] {
        let r = reqwest::get(format!("http://{metrics_addr}{path}")).await.expect("get");
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let (status, text) = metrics(metrics_addr, Some(SCRAPER)).await;
    assert_eq!(status, 200);
    let m = parse(&text);
    for service in ["svc-grpc", "svc-http"] {
        let svc = ("service_name", service);
        assert_eq!(
            sum(&m, "llmhub_requests_total", &[svc, ("llmhub_tenant", "acme")]),
            1.0,
            "{service}"
        );
        assert_eq!(
            sum(&m, "llmhub_requests_total", &[svc, ("llmhub_tenant", "globex")]),
            0.0,
            "{service}"
        );
    }
    assert_eq!(
        sum(
            &m,
            "llmhub_requests_total",
            &[("service_name", "svc-collector"), ("llmhub_tenant", "globex")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &m,
            "llmhub_requests_total",
            &[("service_name", "claude-code"), ("llmhub_tenant", "acme")]
        ),
        1.0,
        "the key's tenant, not the event's"
    );
    assert_eq!(sum(&m, "llmhub_requests_total", &[]), 4.0, "nothing else counted");
    assert_eq!(
        sum(
            &m,
            "llmhub_receiver_requests_total",
            &[("llmhub_outcome", "unauthenticated")]
        ),
        6.0,
        "every refusal counted (2 over gRPC, 4 over HTTP)"
    );
    running.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_stop_the_start_naming_the_key() {
    let mut c = loopback_config();
    c.receivers.otlp.auth =
        Some(serde_json::from_value(serde_json::json!({ "api_keys": [{ "key": "short" }] })).expect("auth"));
    let errors = llmhub::config::validate(&c).expect_err("refused").to_string();
    assert!(
        errors.contains("receivers.otlp.auth.api_keys[0]: the key is shorter than 16 characters"),
        "{errors}"
    );
    assert!(!errors.contains("short\""), "the key is not echoed: {errors}");
}

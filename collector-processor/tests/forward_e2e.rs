//! Span forwarding end to end: llmhub forwards every request to a downstream OTLP endpoint, each
//! span unchanged except for added `llmhub.*` attributes.
//!
//! - Field-level: downstream endpoints in this test (OTLP/gRPC and OTLP/HTTP servers that keep what
//!   they receive) compare every forwarded span with the one sent.
//! - Pipeline: a second, real llmhub is the downstream; it is down when the traffic starts, the
//!   first one keeps the requests in its disk queue, and once the second starts it receives every
//!   span and computes the same totals.

mod common;

use common::{loopback_config, post_otlp, scrape, start, sum};
use llmhub::config::Config;
use llmhub::testkit::realistic_request;
use llmhub_exporters::forward::ForwardConfig;
use llmhub_exporters::otlp_metrics::OtlpProtocol;
use llmhub_exporters::queue::QueueConfig;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Captured = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// Refuses (permanently) any request whose first span is named this.
const REFUSE: &str = "refuse-me";

fn refused(req: &ExportTraceServiceRequest) -> bool {
    req.resource_spans
        .first()
        .and_then(|r| r.scope_spans.first())
        .and_then(|s| s.spans.first())
        .is_some_and(|s| s.name == REFUSE)
}

struct Capture(Captured);

#[tonic::async_trait]
impl TraceService for Capture {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let req = request.into_inner();
        if refused(&req) {
            return Err(tonic::Status::invalid_argument("this endpoint refuses refuse-me spans"));
        }
        self.0.lock().expect("lock").push(req);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn downstream(protocol: OtlpProtocol) -> (String, Captured) {
    let captured: Captured = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    match protocol {
        OtlpProtocol::Grpc => {
            let svc = TraceServiceServer::new(Capture(captured.clone()))
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(svc)
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
            );
        }
        OtlpProtocol::HttpProtobuf => {
            let c = captured.clone();
            let app = axum::Router::new().route(
                "/v1/traces",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let c = c.clone();
                    async move {
                        let req = ExportTraceServiceRequest::decode(body).expect("valid OTLP");
                        if refused(&req) {
                            return (http::StatusCode::BAD_REQUEST, Vec::new());
                        }
                        c.lock().expect("lock").push(req);
                        (
                            http::StatusCode::OK,
                            ExportTraceServiceResponse::default().encode_to_vec(),
                        )
                    }
                }),
            );
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
    }
    (format!("http://{addr}"), captured)
}

fn forwarding(endpoint: String, protocol: OtlpProtocol, dir: &Path) -> Config {
    let mut c = loopback_config();
    c.exporters.otlp = Some(ForwardConfig {
        endpoint,
        protocol,
        retry_initial_ms: 50,
        retry_max_ms: 500,
        queue: QueueConfig {
            directory: Some(dir.to_owned()),
            ..QueueConfig::default()
        },
        ..ForwardConfig::default()
    });
    c.service.pipelines.traces.exporters = vec!["prometheus".into(), "otlp".into()];
    c
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("llmhub-fwd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

fn spans_by_id(reqs: &[ExportTraceServiceRequest]) -> HashMap<(Vec<u8>, Vec<u8>), Span> {
    reqs.iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| ((s.trace_id.clone(), s.span_id.clone()), s.clone()))
        .collect()
}

async fn spans_arrive_unchanged_but_enriched(protocol: OtlpProtocol) {
    let (endpoint, captured) = downstream(protocol).await;
    let dir = tmpdir(&format!("{protocol:?}"));
    let running = start(&forwarding(endpoint, protocol, &dir)).await;
    let http = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    let mut sent = Vec::new();
    // The dialect fixtures as OTLP/JSON, realistic batches as protobuf.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dialects");
    let mut files: Vec<_> = std::fs::read_dir(&fixtures)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for f in files {
        let body = std::fs::read(&f).expect("read");
        assert_eq!(
            post_otlp(&http, "application/json", body.clone()).await,
            200,
            "{}",
            f.display()
        );
        sent.push(llmhub::receivers::otlp::json::decode_traces(&body).expect("decodes"));
    }
    for k in 0..5 {
        let req = realistic_request(100, 61_000 + k);
        assert_eq!(
            post_otlp(&http, "application/x-protobuf", req.encode_to_vec()).await,
            200
        );
        sent.push(req);
    }
    // One request the endpoint refuses for good.
    let mut poison = realistic_request(3, 999);
    poison.resource_spans[0].scope_spans[0].spans[0].name = REFUSE.into();
    assert_eq!(
        post_otlp(&http, "application/x-protobuf", poison.encode_to_vec()).await,
        200,
        "llmhub accepts it; the downstream refuses it"
    );

    let until = std::time::Instant::now() + Duration::from_secs(20);
    while captured.lock().expect("lock").len() < sent.len() && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = scrape(running.metrics_addr).await;
    running.stop().await.expect("stop");
    let got = captured.lock().expect("lock").clone();
    assert_eq!(got.len(), sent.len(), "every request forwarded once");
    assert_eq!(
        sum(
            &m,
            "llmhub_forward_requests_total",
            &[("llmhub_outcome", "dead_letter")]
        ),
        1.0
    );
    let dead = std::fs::read_to_string(dir.join("otlp-dead-letters.jsonl")).expect("dead letters");
    assert_eq!(dead.lines().count(), 1);
    assert!(
        dead.contains("refuses refuse-me") || dead.contains("HTTP 400"),
        "{dead}"
    );

    // Span by span: the original attributes, in order, then only llmhub.* ones; every other field equal.
    let want = records_by_id(&sent);
    let sent_spans = spans_by_id(&sent);
    let got_spans = spans_by_id(&got);
    assert_eq!(got_spans.len(), sent_spans.len());
    let mut enriched = 0;
    let mut priced = 0;
    for (id, original) in &sent_spans {
        let fwd = got_spans.get(id).expect("span forwarded");
        let n = original.attributes.len();
        assert_eq!(fwd.attributes[..n], original.attributes[..], "original attributes kept");
        assert!(fwd.attributes[n..].iter().all(|a| a.key.starts_with("llmhub.")));
        let mut stripped = fwd.clone();
        stripped.attributes.truncate(n);
        assert_eq!(&stripped, original, "nothing else changed");
        if n < fwd.attributes.len() {
            enriched += 1;
        }
        if let Some(rec) = want.get(id) {
            let attr = |k: &str| {
                fwd.attributes[n..]
                    .iter()
                    .find(|a| a.key == k)
                    .and_then(|a| a.value.clone()?.value)
            };
            assert_eq!(
                attr("llmhub.span.role"),
                Some(Value::StringValue(rec.role.as_str().into()))
            );
            if let Some(cost) = &rec.cost {
                priced += 1;
                assert_eq!(
                    attr("llmhub.cost.decimal"),
                    Some(Value::StringValue(cost.total.normalize().to_string())),
                    "the forwarded cost is the record's"
                );
            }
            if let Some(e) = rec.error_class {
                assert_eq!(attr("llmhub.error.class"), Some(Value::StringValue(e.as_str().into())));
            }
        }
    }
    assert_eq!(
        enriched,
        want.len(),
        "exactly the spans that became records are enriched"
    );
    assert!(priced > 300, "{priced} priced spans");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The records a fresh processor makes of the requests, by (trace id, span id).
fn records_by_id(reqs: &[ExportTraceServiceRequest]) -> HashMap<(Vec<u8>, Vec<u8>), llmhub_core::LlmCall> {
    common::pg::expected_records(reqs)
        .into_iter()
        .map(|r| ((r.trace_id.to_vec(), r.span_id.to_vec()), r))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_forwarding_keeps_spans_and_adds_only_llmhub_attributes() {
    spans_arrive_unchanged_but_enriched(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_forwarding_keeps_spans_and_adds_only_llmhub_attributes() {
    spans_arrive_unchanged_but_enriched(OtlpProtocol::HttpProtobuf).await;
}

/// llmhub → llmhub: the downstream is down at first; the upstream's disk queue holds the
/// requests; once the downstream starts it gets every span and computes the same totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downstream_llmhub_started_late_receives_everything() {
    // Reserve a port for the downstream, then free it until the downstream starts.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tmpdir("chain");
    let up = start(&forwarding(
        format!("http://127.0.0.1:{port}"),
        OtlpProtocol::Grpc,
        &dir,
    ))
    .await;
    let http = format!("http://{}/v1/traces", up.http_addr.expect("http"));
    for k in 0..10 {
        assert_eq!(
            post_otlp(
                &http,
                "application/x-protobuf",
                realistic_request(200, 71_000 + k).encode_to_vec()
            )
            .await,
            200,
            "accepted while the downstream is down"
        );
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let m = scrape(up.metrics_addr).await;
    assert!(
        sum(&m, "llmhub_forward_retries_total", &[]) >= 1.0,
        "the upstream kept retrying"
    );

    let mut c = loopback_config();
    if let Some(g) = c.receivers.otlp.protocols.grpc.as_mut() {
        g.endpoint = format!("127.0.0.1:{port}");
    }
    let down = start(&c).await;
    let until = std::time::Instant::now() + Duration::from_secs(30);
    let m_down = loop {
        let m = scrape(down.metrics_addr).await;
        if sum(&m, "llmhub_receiver_spans_total", &[]) >= 2000.0 || std::time::Instant::now() > until {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let m_up = scrape(up.metrics_addr).await;
    assert_eq!(sum(&m_down, "llmhub_receiver_spans_total", &[]), 2000.0);
    for metric in ["llmhub_requests_total", "llmhub_cost_usd_total", "llmhub_tokens_total"] {
        let (a, b) = (sum(&m_up, metric, &[]), sum(&m_down, metric, &[]));
        assert!(
            (a - b).abs() < 1e-9 * a.max(1.0),
            "{metric}: upstream {a}, downstream {b}"
        );
        assert!(a > 0.0);
    }
    up.stop().await.expect("stop");
    down.stop().await.expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
}

//! OTLP metrics push through `opentelemetry_sdk` + `opentelemetry-otlp` into a real OTLP metrics
//! receiver: VictoriaMetrics from the Debian 13 chroot (`scripts/servers.sh start prom-otlp`).
//! Debian's Prometheus 2.53 and 3.5 are built without the OTLP receiver, so VictoriaMetrics, which
//! ingests OTLP/HTTP and answers PromQL, stands in for it. Totals read back with PromQL must equal
//! what llmhub counted itself, in cumulative and in delta temporality.
//!
//! VictoriaMetrics 1.112 drops delta-temporality points ("unsupported delta temporality ...:
//! skipping it" in its log), so it checks the cumulative push; the exports themselves, in both
//! temporalities, are checked on the wire by an OTLP/HTTP endpoint in this test that decodes what
//! the SDK sends: temporality, start times and that the points add up to llmhub's own totals.
//!
//! The receiver tests are `#[ignore]`d for a bare `cargo test`; the README's test command starts the
//! server and runs them.

mod common;

use common::{loopback_config, post_otlp, scrape, start, sum};
use llmhub_exporters::otlp_metrics::{MetricTemporality, OtlpMetricsConfig, OtlpProtocol};
use llmhub_testkit::{realistic_request, s};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use prost::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn receiver() -> (String, String) {
    let push = std::env::var("LLMHUB_TEST_OTLP_METRICS_ENDPOINT")
        .expect("LLMHUB_TEST_OTLP_METRICS_ENDPOINT is not set: run scripts/test.sh (scripts/servers.sh env)");
    let query = std::env::var("LLMHUB_TEST_PROM_OTLP_URL").expect("LLMHUB_TEST_PROM_OTLP_URL is not set");
    (push, query)
}

/// One PromQL instant query; the value of the single result, or `None` when empty.
async fn query(base: &str, promql: &str) -> Option<f64> {
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    let r = v["data"]["result"].as_array()?.first()?.clone();
    r["value"][1].as_str()?.parse().ok()
}

async fn poll(base: &str, promql: &str, want: f64) -> Option<f64> {
    let until = std::time::Instant::now() + Duration::from_secs(40);
    let mut last = None;
    while std::time::Instant::now() < until {
        last = query(base, promql).await;
        if last == Some(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    last
}

async fn push_and_read_back(temporality: MetricTemporality) {
    let (push, base) = receiver();
    // A label value of this run only, so earlier runs' series in the receiver do not count.
    let env = format!(
        "ci-{:?}-{}-{}",
        temporality,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis()
    )
    .to_lowercase();
    let mut c = loopback_config();
    c.exporters.otlp_metrics = Some(OtlpMetricsConfig {
        endpoint: push,
        protocol: OtlpProtocol::HttpProtobuf,
        temporality,
        interval_ms: 500,
        ..OtlpMetricsConfig::default()
    });
    c.service.pipelines.traces.exporters = vec!["prometheus".into(), "otlp_metrics".into()];
    let running = start(&c).await;
    let http = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    // Several exports' worth of traffic, so delta points really are differences.
    for k in 0..6u64 {
        let mut req = realistic_request(200, 31_000 + k);
        for rs in &mut req.resource_spans {
            if let Some(r) = rs.resource.as_mut() {
                r.attributes.retain(|kv| kv.key != "deployment.environment.name");
                r.attributes.push(s("deployment.environment.name", &env));
            }
        }
        assert_eq!(
            post_otlp(&http, "application/x-protobuf", req.encode_to_vec()).await,
            200
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let m = scrape(running.metrics_addr).await;
    let requests = sum(&m, "llmhub_requests_total", &[("deployment_environment_name", &env)]);
    let input = sum(
        &m,
        "llmhub_tokens_total",
        &[
            ("deployment_environment_name", &env),
            ("llmhub_token_bucket", "input_uncached"),
        ],
    );
    let durations = sum(
        &m,
        "gen_ai_client_operation_duration_seconds_count",
        &[("deployment_environment_name", &env)],
    );
    assert!(requests > 1000.0 && input > 0.0 && durations > 0.0);
    // Stopping flushes the last export.
    running.stop().await.expect("stop");

    let sel = |name: &str, extra: &str| format!("{name}{{deployment_environment_name=\"{env}\"{extra}}}");
    let agg = |inner: String| match temporality {
        // Cumulative points carry totals since start: the latest one is the total.
        MetricTemporality::Cumulative => format!("sum(last_over_time({inner}[10m]))"),
        // Delta points carry what changed since the previous export: they add up to the total.
        MetricTemporality::Delta => format!("sum(sum_over_time({inner}[10m]))"),
    };
    let got = poll(&base, &agg(sel("llmhub_requests_total", "")), requests).await;
    assert_eq!(got, Some(requests), "llmhub.requests as the receiver stored it");
    let got = poll(
        &base,
        &agg(sel("llmhub_tokens_total", ",llmhub_token_bucket=\"input_uncached\"")),
        input,
    )
    .await;
    assert_eq!(got, Some(input), "llmhub.tokens{{input_uncached}}");
    let got = poll(
        &base,
        &agg(sel("gen_ai_client_operation_duration_seconds_count", "")),
        durations,
    )
    .await;
    assert_eq!(got, Some(durations), "gen_ai.client.operation.duration count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OTLP metrics receiver (scripts/servers.sh start prom-otlp)"]
async fn cumulative_push_reaches_a_real_otlp_receiver_with_the_same_totals() {
    push_and_read_back(MetricTemporality::Cumulative).await;
}

/// Every export request the wire endpoint received.
type Captured = Arc<Mutex<Vec<ExportMetricsServiceRequest>>>;

struct GrpcCapture(Captured);

#[tonic::async_trait]
impl MetricsService for GrpcCapture {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.lock().expect("lock").push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// An OTLP endpoint on loopback keeping every export: OTLP/HTTP protobuf or OTLP/gRPC.
async fn wire_endpoint(protocol: OtlpProtocol) -> (String, Captured) {
    let captured: Captured = Arc::default();
    if protocol == OtlpProtocol::Grpc {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let svc = MetricsServiceServer::new(GrpcCapture(captured.clone()))
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        return (format!("http://{addr}"), captured);
    }
    let c = captured.clone();
    let app = axum::Router::new().route(
        "/v1/metrics",
        axum::routing::post(move |body: axum::body::Bytes| {
            let c = c.clone();
            async move {
                let req = ExportMetricsServiceRequest::decode(body).expect("the SDK sends valid OTLP");
                c.lock().expect("lock").push(req);
                ExportMetricsServiceResponse::default().encode_to_vec()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), captured)
}

/// (start, time, value) of every point of a series, in export order.
type Points = Vec<(u64, u64, u64)>;

/// The temporality and the points of `llmhub.requests`, per series.
fn request_points(captured: &Captured) -> (i32, BTreeMap<String, Points>) {
    let mut temporality = 0;
    let mut series: BTreeMap<String, Points> = BTreeMap::new();
    for req in captured.lock().expect("lock").iter() {
        for rm in &req.resource_metrics {
            for sm in &rm.scope_metrics {
                for m in sm.metrics.iter().filter(|m| m.name == "llmhub.requests") {
                    assert_eq!(m.unit, "{request}");
                    let Some(Data::Sum(sum)) = &m.data else {
                        panic!("llmhub.requests is a sum")
                    };
                    assert!(sum.is_monotonic);
                    temporality = sum.aggregation_temporality;
                    for p in &sum.data_points {
                        let key = format!("{:?}", p.attributes);
                        let v = match p.value {
                            Some(Value::AsInt(v)) => v as u64,
                            other => panic!("integer counter, got {other:?}"),
                        };
                        series
                            .entry(key)
                            .or_default()
                            .push((p.start_time_unix_nano, p.time_unix_nano, v));
                    }
                }
            }
        }
    }
    (temporality, series)
}

async fn wire_check(protocol: OtlpProtocol, temporality: MetricTemporality) {
    let (endpoint, captured) = wire_endpoint(protocol).await;
    let mut c = loopback_config();
    c.exporters.otlp_metrics = Some(OtlpMetricsConfig {
        endpoint,
        protocol,
        temporality,
        interval_ms: 300,
        ..OtlpMetricsConfig::default()
    });
    c.service.pipelines.traces.exporters = vec!["prometheus".into(), "otlp_metrics".into()];
    let before = now_nanos();
    let running = start(&c).await;
    let http = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    for k in 0..5u64 {
        assert_eq!(
            post_otlp(
                &http,
                "application/x-protobuf",
                realistic_request(100, 41_000 + k).encode_to_vec()
            )
            .await,
            200
        );
        tokio::time::sleep(Duration::from_millis(450)).await;
    }
    let m = scrape(running.metrics_addr).await;
    let total = sum(&m, "llmhub_requests_total", &[]);
    running.stop().await.expect("stop");
    let (temp, series) = request_points(&captured);
    assert!(!series.is_empty());
    let exported: u64 = series
        .values()
        .map(|pts| match temporality {
            MetricTemporality::Cumulative => pts.last().map_or(0, |p| p.2),
            MetricTemporality::Delta => pts.iter().map(|p| p.2).sum(),
        })
        .sum();
    assert_eq!(exported as f64, total, "the exports add up to llmhub's own count");
    let mut multi = 0;
    for pts in series.values() {
        multi += usize::from(pts.len() > 1);
        for w in pts.windows(2) {
            let ((s0, t0, v0), (s1, t1, v1)) = (w[0], w[1]);
            assert!(t1 > t0, "points move forward in time");
            match temporality {
                MetricTemporality::Cumulative => {
                    assert_eq!(s1, s0, "a cumulative series keeps its start time");
                    assert!(v1 >= v0, "a cumulative counter never goes down");
                }
                MetricTemporality::Delta => {
                    // A series that did not change in an interval is not exported then; its next
                    // point starts at the collection before it (possibly one that exported
                    // nothing), never before its previous point ended.
                    assert!(s1 >= t0 && s1 < t1, "delta intervals of one series do not overlap");
                }
            }
        }
        assert!(pts[0].0 >= before && pts[0].0 <= pts[0].1, "start time within the run");
    }
    assert!(multi > 0, "some series were exported more than once");
    match temporality {
        MetricTemporality::Cumulative => assert_eq!(temp, AggregationTemporality::Cumulative as i32),
        MetricTemporality::Delta => assert_eq!(temp, AggregationTemporality::Delta as i32),
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cumulative_exports_over_http_keep_their_start_time_and_add_up() {
    wire_check(OtlpProtocol::HttpProtobuf, MetricTemporality::Cumulative).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cumulative_exports_over_grpc_keep_their_start_time_and_add_up() {
    wire_check(OtlpProtocol::Grpc, MetricTemporality::Cumulative).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_exports_over_http_never_overlap_and_add_up() {
    wire_check(OtlpProtocol::HttpProtobuf, MetricTemporality::Delta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_exports_over_grpc_never_overlap_and_add_up() {
    wire_check(OtlpProtocol::Grpc, MetricTemporality::Delta).await;
}

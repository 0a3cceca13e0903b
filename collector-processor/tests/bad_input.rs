//! Bad input over real loopback connections: each malformed or hostile request gets the OTLP status
//! and a message naming the problem, and good spans in the same request still count.

mod common;

use bytes::Bytes;
use common::{chat, d, i, loopback_config, request, s, scrape, span, start, sum};
use flate2::write::GzEncoder;
use llmhub::receivers::otlp::http::RpcStatus;
use llmhub_testkit::RawGrpcCodec;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use std::io::Write;
use tonic::{Code, Status};

const JSON: &str = "application/json";
const PROTO: &str = "application/x-protobuf";

async fn post(url: &str, ctype: &str, encoding: Option<&str>, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let client = reqwest::Client::new();
    let mut req = client.post(url).header("content-type", ctype).body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    (status, ct, resp.bytes().await.expect("body").to_vec())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_malformed_requests_with_the_right_status_and_message() {
    let mut cfg = loopback_config();
    {
        let h = cfg.receivers.otlp.protocols.http.as_mut().expect("http");
        h.max_request_body_size_mib = 1;
        h.max_decompressed_body_size_mib = 2;
    }
    let running = start(&cfg).await;
    let url = format!("http://{}/v1/traces", running.http_addr.expect("http"));

    // Malformed protobuf: 400 with a protobuf google.rpc.Status naming the message type.
    let (status, ct, body) = post(&url, PROTO, None, vec![0xff, 0xff, 0xff, 0x01, 0x02]).await;
    assert_eq!(status, 400);
    assert_eq!(ct, PROTO);
    let st = RpcStatus::decode(&body[..]).expect("Status body");
    assert_eq!(st.code, 3);
    assert!(
        st.message.contains("malformed ExportTraceServiceRequest"),
        "{}",
        st.message
    );

    // Malformed JSON: 400 with a JSON Status.
    let (status, ct, body) = post(&url, JSON, None, b"{\"resourceSpans\": [".to_vec()).await;
    assert_eq!((status, ct.as_str()), (400, JSON));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json body");
    assert_eq!(v["code"], 3);
    assert!(
        v["message"].as_str().expect("message").starts_with("invalid OTLP/JSON"),
        "{v}"
    );

    // A field of the wrong type: the message names its path.
    let (status, _, body) = post(
        &url,
        JSON,
        None,
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let msg = String::from_utf8_lossy(&body).to_string();
    assert!(
        msg.contains("resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano"),
        "{msg}"
    );

    // Wrong content type and encoding: 415.
    let (status, _, body) = post(&url, "text/plain", None, b"hello".to_vec()).await;
    assert_eq!(status, 415);
    assert!(String::from_utf8_lossy(&body).contains("application/x-protobuf or application/json"));
    let (status, _, body) = post(&url, PROTO, Some("br"), vec![1, 2, 3]).await;
    assert_eq!(status, 415);
    assert!(String::from_utf8_lossy(&body).contains("Content-Encoding"));

    // Oversized body (1 MiB limit): 413.
    let (status, _, body) = post(&url, PROTO, None, vec![0u8; 2 * 1024 * 1024]).await;
    assert_eq!(status, 413);
    assert!(RpcStatus::decode(&body[..])
        .expect("status")
        .message
        .contains("max_request_body_size_mib"));

    // A gzip bomb: 64 KiB on the wire, 64 MiB inflated, limit 2 MiB: 413, never inflated whole.
    let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024);
    let (status, _, body) = post(&url, PROTO, Some("gzip"), bomb).await;
    assert_eq!(status, 413);
    assert!(RpcStatus::decode(&body[..])
        .expect("status")
        .message
        .contains("decompresses"));

    // Not gzip at all: 400.
    let (status, _, _) = post(&url, PROTO, Some("gzip"), b"not gzip".to_vec()).await;
    assert_eq!(status, 400);

    // GET is not allowed: 405.
    let status = reqwest::get(&url).await.expect("get").status().as_u16();
    assert_eq!(status, 405);

    // Nothing above counted as a call.
    let m = scrape(running.metrics_addr).await;
    assert_eq!(sum(&m, "llmhub_requests_total", &[]), 0.0);
    assert_eq!(
        sum(&m, "llmhub_receiver_requests_total", &[("llmhub_outcome", "invalid")]),
        4.0
    );
    assert_eq!(
        sum(&m, "llmhub_receiver_requests_total", &[("llmhub_outcome", "too_large")]),
        2.0
    );
    running.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_logs_are_answered_not_404() {
    let running = start(&loopback_config()).await;
    let base = format!("http://{}", running.http_addr.expect("http"));
    let metrics = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"asDouble":1},{"asDouble":2}]}}]}]}]}"#;
    let (status, _, body) = post(&format!("{base}/v1/metrics"), JSON, None, metrics.to_vec()).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["partialSuccess"]["rejectedDataPoints"], "2");
    assert!(v["partialSuccess"]["errorMessage"]
        .as_str()
        .expect("msg")
        .contains("not metrics"));

    // Log records that are no GenAI event are accepted and counted, never rejected.
    let logs = three_log_records();
    let (status, _, body) = post(&format!("{base}/v1/logs"), PROTO, None, logs.encode_to_vec()).await;
    assert_eq!(status, 200);
    let r = opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse::decode(&body[..])
        .expect("response");
    assert_eq!(r.partial_success, None);
    let m = scrape(running.metrics_addr).await;
    assert_eq!(
        sum(
            &m,
            "llmhub_receiver_log_records_total",
            &[("llmhub_transport", "http_protobuf"), ("llmhub_outcome", "not_genai")]
        ),
        3.0
    );
    running.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_values_are_sanitized_and_good_spans_still_count() {
    let running = start(&loopback_config()).await;
    let url = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    let huge_model = "m".repeat(1024 * 1024);
    let mut backwards = chat(3, "gpt-4o", 10, 10);
    std::mem::swap(&mut backwards.start_time_unix_nano, &mut backwards.end_time_unix_nano);
    let mut bad_id = chat(6, "gpt-4o", 1, 1);
    bad_id.trace_id = vec![1, 2, 3];
    let spans = vec![
        chat(1, "gpt-4o", 100, 20),                      // good
        chat(2, "gpt-4o", -5, 10),                       // negative tokens
        backwards,                                       // end before start
        chat(4, "gpt-4o", 1_000_000_000_000_000_000, 1), // 1e18 tokens
        chat(5, &huge_model, 7, 3),                      // 1 MB model name
        bad_id,                                          // invalid trace id: rejected
        span(
            7,
            "chat gpt-4o",
            100,
            vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.request.model", "gpt-4o"),
                i("gen_ai.usage.input_tokens", 1),
                d("gen_ai.response.time_to_first_chunk", f64::NAN),
            ],
        ),
    ];
    let (status, _, body) = post(&url, PROTO, None, request("absurd", spans).encode_to_vec()).await;
    assert_eq!(status, 200);
    let resp = ExportTraceServiceResponse::decode(&body[..]).expect("response");
    let ps = resp.partial_success.expect("partial success with the problems");
    assert_eq!(ps.rejected_spans, 1);
    for needle in [
        "trace_id must be 16 bytes",
        "gen_ai.usage.input_tokens = -5",
        "end time",
        "is not a token count",
        "cut to 256 bytes",
    ] {
        assert!(
            ps.error_message.contains(needle),
            "message lacks {needle:?}: {}",
            ps.error_message
        );
    }

    let m = scrape(running.metrics_addr).await;
    let svc = ("service_name", "absurd");
    // Good calls: span 1 (100/20), span 3 (10/10, duration ignored), span 5 (7/3), span 7 (1/0).
    assert_eq!(
        sum(
            &m,
            "llmhub_tokens_total",
            &[svc, ("llmhub_token_bucket", "input_uncached")]
        ),
        118.0
    );
    assert_eq!(
        sum(&m, "llmhub_tokens_total", &[svc, ("llmhub_token_bucket", "output")]),
        33.0
    );
    // Spans 2 and 4 count as calls with missing usage, never as zero or 1e18 tokens.
    assert_eq!(sum(&m, "llmhub_usage_missing_total", &[svc]), 2.0);
    assert_eq!(sum(&m, "llmhub_requests_total", &[svc]), 6.0);
    // The backwards span has no duration observation; the NaN TTFT was dropped.
    assert_eq!(sum(&m, "gen_ai_client_operation_duration_seconds_count", &[svc]), 5.0);
    assert_eq!(
        sum(&m, "gen_ai_client_operation_time_to_first_chunk_seconds_count", &[svc]),
        0.0
    );
    // The 1 MB model name is cut to 256 bytes in labels.
    let cut = "m".repeat(256);
    assert_eq!(
        sum(&m, "llmhub_requests_total", &[svc, ("gen_ai_request_model", &cut)]),
        1.0
    );
    assert_eq!(
        sum(
            &m,
            "llmhub_receiver_spans_refused_total",
            &[("llmhub_reason", "invalid_span")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &m,
            "llmhub_receiver_spans_accepted_total",
            &[("llmhub_transport", "http_protobuf")]
        ),
        6.0
    );
    running.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_model_names_stay_within_the_cardinality_limit() {
    let running = start(&loopback_config()).await;
    let url = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    let client = reqwest::Client::new();
    for batch in 0..10u64 {
        let spans = (0..10_000u64).map(|k| {
            let n = batch * 10_000 + k;
            chat(n, &format!("model-{n}"), 1, 1)
        });
        let body = request("cardinality", spans.collect()).encode_to_vec();
        let resp = client
            .post(&url)
            .header("content-type", PROTO)
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200);
    }
    let m = scrape(running.metrics_addr).await;
    let svc = ("service_name", "cardinality");
    // Every call still counts...
    assert_eq!(sum(&m, "llmhub_requests_total", &[svc]), 100_000.0);
    assert_eq!(
        sum(
            &m,
            "llmhub_tokens_total",
            &[svc, ("llmhub_token_bucket", "input_uncached")]
        ),
        100_000.0
    );
    // ...but at most 1000 model values (the default) exist, the rest under __overflow__.
    let series = m.iter().filter(|x| x.name == "llmhub_requests_total").count();
    assert!(series <= 1001, "{series} series");
    assert_eq!(
        sum(
            &m,
            "llmhub_requests_total",
            &[svc, ("gen_ai_request_model", "__overflow__")]
        ),
        99_000.0
    );
    assert!(
        sum(
            &m,
            "llmhub_cardinality_overflow_total",
            &[("llmhub_label", "gen_ai_request_model")]
        ) >= 99_000.0
    );
    running.stop().await.expect("stop");
}

/// A logs export of three empty records: no GenAI event, accepted and counted.
fn three_log_records() -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![opentelemetry_proto::tonic::logs::v1::ResourceLogs {
            scope_logs: vec![opentelemetry_proto::tonic::logs::v1::ScopeLogs {
                log_records: vec![Default::default(); 3],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// An OTLP/gRPC export to `path` that must be answered, its response decoded as `R`.
async fn grpc_answer<R: Message + Default>(addr: std::net::SocketAddr, path: &'static str, body: Vec<u8>) -> R {
    let raw = raw_grpc(addr, path, body).await.expect("answered");
    R::decode(&raw[..]).expect("response")
}

async fn raw_grpc(addr: std::net::SocketAddr, path: &'static str, body: Vec<u8>) -> Result<Bytes, Status> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    grpc.unary(
        tonic::Request::new(Bytes::from(body)),
        http::uri::PathAndQuery::from_static(path),
        RawGrpcCodec,
    )
    .await
    .map(|r| r.into_inner())
}

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_statuses_follow_the_otlp_specification() {
    let mut cfg = loopback_config();
    cfg.receivers
        .otlp
        .protocols
        .grpc
        .as_mut()
        .expect("grpc")
        .max_recv_msg_size_mib = 1;
    let running = start(&cfg).await;
    let addr = running.grpc_addr.expect("grpc");

    // Malformed protobuf: INVALID_ARGUMENT naming the message.
    let err = raw_grpc(addr, TRACE_EXPORT, vec![0xff, 0xff, 0xff, 0x01])
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("malformed ExportTraceServiceRequest"),
        "{}",
        err.message()
    );

    // Oversized: RESOURCE_EXHAUSTED (not the retryable OUT_OF_RANGE).
    let big = request("big", vec![span(1, &"x".repeat(2 * 1024 * 1024), 1, vec![])]).encode_to_vec();
    let err = raw_grpc(addr, TRACE_EXPORT, big).await.expect_err("refused");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    // Partial success through the generated client: one bad span, one good.
    let mut bad = chat(2, "gpt-4o", 5, 5);
    bad.span_id = vec![];
    let mut client = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let resp = client
        .export(request("grpc-partial", vec![chat(1, "gpt-4o", 40, 2), bad]))
        .await
        .expect("ok")
        .into_inner();
    let ps = resp.partial_success.expect("partial");
    assert_eq!(ps.rejected_spans, 1);
    assert!(
        ps.error_message.contains("span_id must be 8 bytes"),
        "{}",
        ps.error_message
    );

    // Metrics service is answered.
    let metrics = opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest::default();
    let raw = raw_grpc(
        addr,
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        metrics.encode_to_vec(),
    )
    .await
    .expect("answered");
    assert!(raw.is_empty(), "no data points, empty response");
    // With data points (two gauge points, a sum's one, a histogram's one): each is counted and
    // rejected by name, as are log records.
    use opentelemetry_proto::tonic::metrics::v1 as mv1;
    let point = mv1::NumberDataPoint::default();
    let metric = |data| mv1::Metric {
        name: "m".into(),
        data: Some(data),
        ..Default::default()
    };
    let metrics = opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
        resource_metrics: vec![mv1::ResourceMetrics {
            scope_metrics: vec![mv1::ScopeMetrics {
                metrics: vec![
                    metric(mv1::metric::Data::Gauge(mv1::Gauge {
                        data_points: vec![point.clone(), point.clone()],
                    })),
                    metric(mv1::metric::Data::Sum(mv1::Sum {
                        data_points: vec![point],
                        ..Default::default()
                    })),
                    metric(mv1::metric::Data::Histogram(mv1::Histogram {
                        data_points: vec![Default::default()],
                        ..Default::default()
                    })),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let answer: opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse = grpc_answer(
        addr,
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        metrics.encode_to_vec(),
    )
    .await;
    let ps = answer.partial_success.expect("partial success");
    assert_eq!(ps.rejected_data_points, 4);
    assert!(ps.error_message.contains("not metrics"), "{}", ps.error_message);
    let logs = three_log_records();
    let answer: opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse = grpc_answer(
        addr,
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        logs.encode_to_vec(),
    )
    .await;
    assert_eq!(
        answer.partial_success, None,
        "records that are no GenAI event are accepted"
    );

    let m = scrape(running.metrics_addr).await;
    assert_eq!(
        sum(
            &m,
            "llmhub_receiver_log_records_total",
            &[("llmhub_transport", "grpc"), ("llmhub_outcome", "not_genai")]
        ),
        3.0
    );
    assert_eq!(
        sum(
            &m,
            "llmhub_tokens_total",
            &[
                ("service_name", "grpc-partial"),
                ("llmhub_token_bucket", "input_uncached")
            ]
        ),
        40.0
    );
    running.stop().await.expect("stop");
}

/// Request limits: too many spans is refused whole and final on both transports; past the
/// attribute and event limits a span is read in part and counted; a gzip bomb over gRPC is
/// refused by the message limit after decompression.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_limits_refuse_or_truncate_and_count() {
    let mut cfg = loopback_config();
    cfg.receivers.otlp.limits.max_spans_per_request = 3;
    cfg.receivers.otlp.limits.max_attributes_per_span = 5;
    cfg.receivers.otlp.limits.max_events_per_span = 1;
    cfg.receivers
        .otlp
        .protocols
        .grpc
        .as_mut()
        .expect("grpc")
        .max_recv_msg_size_mib = 1;
    let running = start(&cfg).await;
    let url = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    let grpc = running.grpc_addr.expect("grpc");

    // Four spans, three allowed: 413 over HTTP, RESOURCE_EXHAUSTED over gRPC, nothing counted.
    let four = request("too-many", (1..=4).map(|n| chat(n, "gpt-4o", 10, 1)).collect());
    let (status, _, body) = post(&url, PROTO, None, four.encode_to_vec()).await;
    assert_eq!(status, 413);
    let st = RpcStatus::decode(&body[..]).expect("google.rpc.Status");
    assert!(
        st.message
            .contains("holds 4 spans, more than the 3 allowed (receivers.otlp.limits.max_spans_per_request)"),
        "{}",
        st.message
    );
    let mut client = TraceServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connect");
    let err = client.export(four.clone()).await.expect_err("refused");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    // Seven attributes, five read: the usage after the fifth is not seen (no usage, counted).
    let mut wide = chat(10, "gpt-4o", 10, 1);
    wide.attributes.insert(0, s("app.note", "first"));
    wide.attributes.insert(0, s("app.other", "second"));
    // Two events, one read.
    let mut eventful = chat(11, "gpt-4o", 20, 2);
    eventful.events = vec![Default::default(), Default::default()];
    let (status, _, _) = post(
        &url,
        PROTO,
        None,
        request("limited", vec![wide, eventful]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);

    // A gzip bomb over gRPC: small on the wire, 64 MiB inflated, limit 1 MiB.
    let bomb = request("bomb", vec![span(20, &"x".repeat(64 * 1024 * 1024), 1, vec![])]);
    let mut gz = TraceServiceClient::connect(format!("http://{grpc}"))
        .await
        .expect("connect")
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_encoding_message_size(usize::MAX);
    let err = gz.export(bomb).await.expect_err("refused");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    let m = scrape(running.metrics_addr).await;
    assert_eq!(
        sum(
            &m,
            "llmhub_receiver_spans_refused_total",
            &[("llmhub_reason", "too_many_spans")]
        ),
        8.0,
        "4 spans refused over each transport"
    );
    assert_eq!(sum(&m, "llmhub_requests_total", &[("service_name", "too-many")]), 0.0);
    assert_eq!(
        sum(
            &m,
            "llmhub_receiver_spans_limited_total",
            &[("llmhub_reason", "attributes_per_span")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &m,
            "llmhub_receiver_spans_limited_total",
            &[("llmhub_reason", "events_per_span")]
        ),
        1.0
    );
    assert_eq!(
        sum(&m, "llmhub_usage_missing_total", &[("service_name", "limited")]),
        1.0,
        "the wide span's usage was past the limit"
    );
    assert_eq!(
        sum(
            &m,
            "llmhub_tokens_total",
            &[("service_name", "limited"), ("llmhub_token_bucket", "input_uncached")]
        ),
        20.0,
        "the eventful span was read"
    );
    running.stop().await.expect("stop");
}

/// A client that writes its whole body before it reads the answer — Python's `urllib` and
/// `http.client`, what the Python OTLP exporters use through `requests` — must see the 413 of a
/// body over the limit, not a reset connection (which OTLP exporters take for a retryable failure
/// and send the same body again). Here: 64 MiB against the default 16 MiB limit, over a real
/// Python client on loopback. Then a request on a new connection still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_send_everything_before_reading_get_the_413() {
    let running = start(&loopback_config()).await;
    let http = running.http_addr.expect("http");
    let script = r#"
import sys, urllib.request, urllib.error, http.client
host, port = sys.argv[1], int(sys.argv[2])
body = b"\0" * (64 * 1024 * 1024)
try:
    req = urllib.request.Request(f"http://{host}:{port}/v1/traces", data=body, method="POST",
                                 headers={"Content-Type": "application/x-protobuf"})
    urllib.request.urlopen(req, timeout=60)
    print("urllib 200")
except urllib.error.HTTPError as e:
    print("urllib", e.code, "max_request_body_size_mib" in e.read().decode("latin-1"))
except Exception as e:
    print("urllib error", type(e).__name__, e)
try:
    c = http.client.HTTPConnection(host, port, timeout=60)
    c.request("POST", "/v1/traces", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    print("http.client", r.status, b"max_request_body_size_mib" in r.read())
except Exception as e:
    print("http.client error", type(e).__name__, e)
"#;
    let out = tokio::process::Command::new("python3")
        .args(["-c", script, &http.ip().to_string(), &http.port().to_string()])
        .output()
        .await
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, ["urllib 413 True", "http.client 413 True"], "{text}");
    // Nothing of them was counted; the receiver still takes a good request.
    let (status, _, _) = post(
        &format!("http://{http}/v1/traces"),
        PROTO,
        None,
        llmhub_testkit::realistic_request(3, 1).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let m = scrape(running.metrics_addr).await;
    assert_eq!(sum(&m, "llmhub_receiver_spans_total", &[]), 3.0);
    running.stop().await.expect("stop");
}

/// Every refused or rejected request leaves a debug line naming why and the client's address,
/// on both transports (`LLMHUB_LOG=debug`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_logged_at_debug_with_the_reason_and_the_client() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let p = llmhub_testkit::spawn_serve_with_env(
        env!("CARGO_BIN_EXE_llmhub"),
        &llmhub_testkit::LOOPBACK_EPHEMERAL,
        None,
        &[("LLMHUB_LOG", "debug".to_owned())],
    )
    .expect("llmhub starts");
    // OTLP/HTTP, malformed protobuf, over a connection whose client port the test knows.
    let mut conn = tokio::net::TcpStream::connect(&p.http).await.expect("connect");
    let client = conn.local_addr().expect("addr");
    let body = [0xffu8, 0xff, 0xff, 0x01, 0x02];
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: llmhub\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    conn.write_all(&body).await.expect("write");
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.expect("read");
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // One span with a 3-byte trace id beside a good one: accepted, the bad one rejected.
    let mut bad_id = chat(2, "gpt-4o", 1, 1);
    bad_id.trace_id = vec![1, 2, 3];
    let (status, _, _) = post(
        &format!("http://{}/v1/traces", p.http),
        PROTO,
        None,
        request("logged", vec![chat(1, "gpt-4o", 10, 2), bad_id]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    // OTLP/gRPC, malformed protobuf.
    let err = raw_grpc(
        p.grpc.parse().expect("addr"),
        TRACE_EXPORT,
        vec![0xff, 0xff, 0xff, 0x01],
    )
    .await
    .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    // The lines are written as they happen; the log is read once all three are in.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let log = loop {
        let log = p.log();
        let done = log.contains("OTLP/gRPC request refused");
        if done || std::time::Instant::now() > until {
            break log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let line = |what: &str| -> String {
        log.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no line with {what:?} in\n{log}"))
            .to_owned()
    };
    let http = line("OTLP/HTTP request refused");
    assert!(http.contains(&format!("conn{{client={client}}}")), "{http}");
    assert!(http.contains("status=400"), "{http}");
    assert!(http.contains("malformed ExportTraceServiceRequest"), "{http}");
    let partial = line("spans of an export request rejected");
    assert!(partial.contains("conn{client=127.0.0.1:"), "{partial}");
    assert!(partial.contains("rejected_spans=1"), "{partial}");
    assert!(partial.contains("trace_id"), "{partial}");
    let grpc = line("OTLP/gRPC request refused");
    assert!(grpc.contains("conn{client=127.0.0.1:"), "{grpc}");
    assert!(grpc.contains("code=InvalidArgument"), "{grpc}");
    assert!(grpc.contains("malformed ExportTraceServiceRequest"), "{grpc}");
}

/// The refusals no other test reached (scripts/coverage.sh): an unknown gRPC method, malformed
/// bodies on `/v1/logs` and `/v1/metrics`, and OTLP/JSON values of the wrong type on `/v1/traces`,
/// each refused with its status and a message naming the problem, and none counted as a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signal_and_json_value_type_is_refused_by_name() {
    let running = start(&loopback_config()).await;
    let grpc = running.grpc_addr.expect("grpc");
    let base = format!("http://{}", running.http_addr.expect("http"));

    let err = raw_grpc(
        grpc,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Ping",
        vec![],
    )
    .await
    .expect_err("refused");
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    assert_eq!(err.message(), "unknown method; only Export is served");

    // Metrics are counted, not ingested, and logs read; a body that does not parse is refused.
    let (status, ct, body) = post(&format!("{base}/v1/logs"), PROTO, None, vec![0xff, 0xff, 0xff, 0x01]).await;
    assert_eq!((status, ct.as_str()), (400, PROTO));
    let st = RpcStatus::decode(&body[..]).expect("Status body");
    assert_eq!(st.code, 3);
    assert!(
        st.message.contains("malformed ExportLogsServiceRequest"),
        "{}",
        st.message
    );
    let (status, ct, body) = post(&format!("{base}/v1/metrics"), JSON, None, b"[]".to_vec()).await;
    assert_eq!((status, ct.as_str()), (400, JSON));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json body");
    assert_eq!(v["code"], 3);
    let m = v["message"].as_str().expect("message");
    assert!(m.contains("JSON object"), "{m}");
    let (status, _, _) = post(&format!("{base}/v1/logs"), "text/plain", None, b"{}".to_vec()).await;
    assert_eq!(status, 415);

    // OTLP/JSON values of the wrong type: 400 naming the value.
    let traces = format!("{base}/v1/traces");
    let span_with = |field: &str| {
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",{field}}}]}}]}}]}}"#
        )
    };
    for (body, want) in [
        ("42".to_owned(), "invalid type: integer"),
        (span_with(r#""startTimeUnixNano":1.5"#), "1.5 is not a 64-bit integer"),
        (span_with(r#""kind":"SPAN_KIND_BOGUS""#), "SPAN_KIND_BOGUS"),
        (
            span_with(r#""attributes":[{"key":"x","value":{"doubleValue":"abc"}}]"#),
            r#""abc" is not a number"#,
        ),
    ] {
        let (status, _, answer) = post(&traces, JSON, None, body.clone().into_bytes()).await;
        let v: serde_json::Value = serde_json::from_slice(&answer).expect("json body");
        assert_eq!((status, &v["code"]), (400, &serde_json::json!(3)), "{body}: {v}");
        let m = v["message"].as_str().expect("message");
        assert!(m.contains(want), "{body}: {m}");
    }
    let m = scrape(running.metrics_addr).await;
    assert_eq!(sum(&m, "llmhub_requests_total", &[]), 0.0);
    running.stop().await.expect("stop");
}

/// Claude Code's logs export (testdata), as JSON, with `edit` applied to its one api_request event.
fn claude_code_export(edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/coding-agents/claude-code-2.1.337-logs.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("json");
    for r in v["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array_mut()
        .expect("records")
    {
        if r["body"]["stringValue"] == "claude_code.api_request" {
            edit(r);
        }
    }
    serde_json::to_vec(&v).expect("json")
}

/// Logs take the traces' rules: one event that cannot be read is rejected by its path while its
/// neighbours count; a request past the limit is refused whole (413, RESOURCE_EXHAUSTED) and
/// counted; a JSON value of the wrong type names its path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_records_are_rejected_one_by_one_refused_past_the_limit_and_named() {
    let mut cfg = loopback_config();
    cfg.receivers.otlp.limits.max_spans_per_request = 9;
    let running = start(&cfg).await;
    let url = format!("http://{}/v1/logs", running.http_addr.expect("http"));

    // The export as Claude Code sent it (nine records), plus a copy of its api_request with no time.
    let mut v: serde_json::Value = serde_json::from_slice(&claude_code_export(|_| {})).expect("json");
    let records = v["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array_mut()
        .expect("records");
    assert_eq!(records.len(), 9);
    let mut untimed = records
        .iter()
        .find(|r| r["body"]["stringValue"] == "claude_code.api_request")
        .expect("api_request")
        .clone();
    untimed["timeUnixNano"] = "0".into();
    untimed["observedTimeUnixNano"] = "0".into();
    records.push(untimed);
    // Ten records, nine allowed: refused whole, final.
    let (status, _, body) = post(&url, JSON, None, serde_json::to_vec(&v).expect("json")).await;
    assert_eq!(status, 413);
    let st: serde_json::Value = serde_json::from_slice(&body).expect("status");
    assert!(
        st["message"]
            .as_str()
            .expect("message")
            .contains("holds 10 log records, more than the 9 allowed"),
        "{st}"
    );
    // Without one startup record: accepted, the untimed event rejected by its path.
    v["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array_mut()
        .expect("records")
        .remove(0);
    let (status, _, body) = post(&url, JSON, None, serde_json::to_vec(&v).expect("json")).await;
    assert_eq!(status, 200);
    let r: serde_json::Value = serde_json::from_slice(&body).expect("response");
    assert_eq!(r["partialSuccess"]["rejectedLogRecords"], "1", "{r}");
    assert_eq!(
        r["partialSuccess"]["errorMessage"],
        "resourceLogs[0].scopeLogs[0].logRecords[8] rejected: event \"claude_code.api_request\": neither time_unix_nano nor observed_time_unix_nano is set",
    );

    // A value of the wrong type: 400 naming where.
    let (status, _, body) = post(
        &url,
        JSON,
        None,
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"k","value":{"intValue":true}}]}]}]}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let st: serde_json::Value = serde_json::from_slice(&body).expect("status");
    assert!(
        st["message"]
            .as_str()
            .expect("message")
            .contains("resourceLogs[0].scopeLogs[0].logRecords[0].attributes[0].value.intValue"),
        "{st}"
    );

    let m = scrape(running.metrics_addr).await;
    let by = |outcome| {
        sum(
            &m,
            "llmhub_receiver_log_records_total",
            &[("llmhub_transport", "http_json"), ("llmhub_outcome", outcome)],
        )
    };
    assert_eq!(by("refused"), 10.0);
    assert_eq!((by("read"), by("invalid"), by("not_genai")), (1.0, 1.0, 7.0));
    assert_eq!(
        sum(&m, "llmhub_requests_total", &[("service_name", "claude-code")]),
        1.0
    );
    running.stop().await.expect("stop");
}

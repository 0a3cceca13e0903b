//! A real collector in the path (docs/collector.md): rotel, the OpenTelemetry collector that
//! PyPI's `rotel` package ships as `rotel-agent`, run with the files in `deploy/collector/` as
//! they are, but for their endpoints.
//!
//! - applications → rotel → llmhub: spans sent to rotel's OTLP/gRPC and OTLP/HTTP receivers
//!   (protobuf and JSON) reach llmhub through rotel's gRPC or HTTP exporter (gzip), and llmhub's
//!   rows equal, field by field, the records its processor makes of the spans sent.
//! - applications → llmhub → rotel → backend: llmhub forwards every span over gRPC or HTTP to
//!   rotel, which exports it to a backend; every span arrives once, with its own fields and
//!   attributes, and llmhub's added attributes carry the record's role and exact cost.
//!
//! Needs PostgreSQL 15 (`scripts/servers.sh`) and rotel (`python3 real-clients/run.py
//! --install-only` puts it in `target/real-clients/venvs/rotel`, and scripts/test.sh runs that;
//! `LLMHUB_ROTEL_AGENT` names another binary). Run with `cargo test -- --include-ignored`.

mod common;

use common::capture::{downstream, spans_by_id};
use common::pg::{self, export, grpc_channel, sink_config, with_sink, Server};
use common::{fixture_requests, post_otlp, scrape, start, sum};
use llmhub_exporters::otlp_metrics::OtlpProtocol;
use llmhub_testkit::realistic_request;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `rotel-agent` binary: `LLMHUB_ROTEL_AGENT`, else the one in the venv run.py installs.
fn rotel_agent() -> PathBuf {
    if let Some(p) = std::env::var_os("LLMHUB_ROTEL_AGENT") {
        return p.into();
    }
    let lib = repo().join("target/real-clients/venvs/rotel/lib");
    std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages/rotel/rotel-agent"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no rotel-agent under {}: run `python3 real-clients/run.py --install-only`",
                lib.display()
            )
        })
}

/// `deploy/collector/NAME`'s `KEY=VALUE` lines, with `overrides` replacing the values of keys
/// the file sets. Overriding a key the file does not set fails: what runs is the file.
fn env_file(name: &str, overrides: &[(&str, String)]) -> Vec<(String, String)> {
    let path = repo().join("deploy/collector").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut vars: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{name}: not KEY=VALUE: {l}"));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    for (k, v) in overrides {
        let slot = vars
            .iter_mut()
            .find(|(key, _)| key == k)
            .unwrap_or_else(|| panic!("{name} does not set {k}"));
        slot.1 = v.clone();
    }
    vars
}

/// A running `rotel-agent start`, killed when dropped (its output printed if a test failed).
struct Rotel {
    child: Child,
    /// OTLP/gRPC receiver, `host:port`.
    grpc: String,
    /// OTLP/HTTP receiver, `host:port`.
    http: String,
    log: PathBuf,
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- rotel output ({}) ---\n{log}--- end ---", self.log.display());
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts rotel with the environment file `file` (receivers on free loopback ports, plus
/// `overrides`) and waits until both receivers accept connections.
fn start_rotel(dir: &Path, file: &str, overrides: &[(&str, String)]) -> Rotel {
    let grpc = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let mut all = overrides.to_vec();
    all.push(("ROTEL_OTLP_GRPC_ENDPOINT", grpc.clone()));
    all.push(("ROTEL_OTLP_HTTP_ENDPOINT", http.clone()));
    let log = dir.join("rotel.out");
    let out = std::fs::File::create(&log).expect("rotel log");
    let child = Command::new(rotel_agent())
        .arg("start")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env_file(file, &all))
        .env("ROTEL_PID_FILE", dir.join("rotel.pid"))
        .env("ROTEL_LOG_FILE", dir.join("rotel.log"))
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("rotel-agent starts");
    let mut rotel = Rotel { child, grpc, http, log };
    let until = Instant::now() + Duration::from_secs(15);
    for addr in [rotel.grpc.clone(), rotel.http.clone()] {
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                matches!(rotel.child.try_wait(), Ok(None)),
                "rotel exited before listening on {addr}"
            );
            assert!(Instant::now() < until, "rotel does not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    rotel
}

fn span_count(reqs: &[ExportTraceServiceRequest]) -> usize {
    reqs.iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// Sends the dialect fixtures (OTLP/JSON) and realistic batches (protobuf) alternately over
/// gRPC and HTTP to `grpc` and `http` (`host:port`); returns what was sent.
async fn send_traffic(grpc: &str, http: &str, seed: u64) -> Vec<ExportTraceServiceRequest> {
    let url = format!("http://{http}/v1/traces");
    let mut sent = Vec::new();
    for (path, body) in fixture_requests() {
        assert_eq!(post_otlp(&url, "application/json", body.clone()).await, 200, "{path}");
        sent.push(llmhub::receivers::otlp::json::decode_traces(&body).expect("fixture decodes"));
    }
    let mut channel = grpc_channel(grpc).await;
    for k in 0..6 {
        let req = realistic_request(120, seed + k);
        if k % 2 == 0 {
            export(&mut channel, &req).await.expect("gRPC export accepted");
        } else {
            assert_eq!(
                post_otlp(&url, "application/x-protobuf", req.encode_to_vec()).await,
                200
            );
        }
        sent.push(req);
    }
    sent
}

/// applications → rotel (`deploy/collector/rotel-to-llmhub.env`) → llmhub with the PostgreSQL
/// sink, rotel exporting to llmhub over `protocol`.
async fn rotel_relays_applications_to_llmhub(protocol: OtlpProtocol) {
    let tag = match protocol {
        OtlpProtocol::Grpc => "grpc",
        OtlpProtocol::HttpProtobuf => "http",
    };
    let url = Server::Pg15.url();
    let client = pg::connect(&url).await;
    let schema = pg::fresh_schema(&client, &format!("rotel_in_{tag}")).await;
    let running = start(&with_sink(sink_config(&url, &schema))).await;
    let (backend, backend_got) = downstream(OtlpProtocol::Grpc).await;
    let dir = pg::tmpdir(&format!("rotel-in-{tag}"));
    let mut overrides = vec![("ROTEL_EXPORTER_BACKEND_ENDPOINT", backend)];
    match protocol {
        OtlpProtocol::Grpc => overrides.push((
            "ROTEL_EXPORTER_LLMHUB_ENDPOINT",
            format!("http://{}", running.grpc_addr.expect("grpc")),
        )),
        OtlpProtocol::HttpProtobuf => {
            overrides.push((
                "ROTEL_EXPORTER_LLMHUB_ENDPOINT",
                format!("http://{}", running.http_addr.expect("http")),
            ));
            overrides.push(("ROTEL_EXPORTER_LLMHUB_PROTOCOL", "http".into()));
        }
    }
    let rotel = start_rotel(&dir, "rotel-to-llmhub.env", &overrides);

    let sent = send_traffic(&rotel.grpc, &rotel.http, 83_000).await;
    let want = pg::expected_records(&sent);
    assert!(want.len() > 500, "{} records", want.len());
    let rows = pg::wait_for_rows(&client, &schema, want.len() as i64, Duration::from_secs(60)).await;
    assert_eq!(rows, want.len() as i64, "rows in {schema}.llm_calls");
    pg::assert_rows_are(&client, &schema, &want).await;

    // Every span came through rotel's exporter, over the one protocol it was given.
    let spans = span_count(&sent) as f64;
    let m = scrape(running.metrics_addr).await;
    let transport = match protocol {
        OtlpProtocol::Grpc => "grpc",
        OtlpProtocol::HttpProtobuf => "http_protobuf",
    };
    assert_eq!(
        sum(
            &m,
            "llmhub_receiver_spans_accepted_total",
            &[("llmhub_transport", transport)]
        ),
        spans
    );
    assert_eq!(sum(&m, "llmhub_receiver_spans_accepted_total", &[]), spans);
    assert_eq!(sum(&m, "llmhub_postgres_rows_written_total", &[]), want.len() as f64);
    assert!(
        backend_got.lock().expect("lock").is_empty(),
        "the file sends traces to llmhub only"
    );
    drop(rotel);
    running.stop().await.expect("stop");
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("cleanup");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh) and rotel (real-clients/run.py --install-only)"]
async fn rotel_relays_applications_to_llmhub_over_grpc() {
    rotel_relays_applications_to_llmhub(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh) and rotel (real-clients/run.py --install-only)"]
async fn rotel_relays_applications_to_llmhub_over_http() {
    rotel_relays_applications_to_llmhub(OtlpProtocol::HttpProtobuf).await;
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| match a.value.clone()?.value? {
            Value::StringValue(s) => Some(s),
            _ => None,
        })
}

/// applications → llmhub (`deploy/collector/llmhub-to-collector.yaml`, forwarding over
/// `protocol`) → rotel (`rotel-from-llmhub.env`) → a backend that keeps what it receives.
async fn llmhub_forwards_through_rotel(protocol: OtlpProtocol) {
    let tag = match protocol {
        OtlpProtocol::Grpc => "grpc",
        OtlpProtocol::HttpProtobuf => "http",
    };
    let dir = pg::tmpdir(&format!("rotel-out-{tag}"));
    let (backend, got) = downstream(OtlpProtocol::Grpc).await;
    let rotel = start_rotel(
        &dir,
        "rotel-from-llmhub.env",
        &[("ROTEL_OTLP_EXPORTER_ENDPOINT", backend)],
    );
    let mut config = std::fs::read_to_string(repo().join("deploy/collector/llmhub-to-collector.yaml")).expect("config");
    // The Collector's gRPC spelling (`host:port`, `tls.insecure`) as the file has it; for HTTP,
    // its `otlphttp` exporter with a URL.
    let endpoint = match protocol {
        OtlpProtocol::Grpc => rotel.grpc.clone(),
        OtlpProtocol::HttpProtobuf => {
            assert_eq!(config.matches("otlp/collector").count(), 2);
            config = config.replace("otlp/collector", "otlphttp/collector");
            format!("http://{}", rotel.http)
        }
    };
    let path = dir.join("llmhub.yaml");
    std::fs::write(&path, config).expect("write config");
    let path = path.display().to_string();
    let mut args = vec!["--config", path.as_str()];
    args.extend(llmhub_testkit::LOOPBACK_EPHEMERAL);
    let llmhub = llmhub_testkit::spawn_serve_logged(
        env!("CARGO_BIN_EXE_llmhub"),
        &args,
        None,
        &[("COLLECTOR_ENDPOINT", endpoint)],
        &dir.join("llmhub.log"),
    )
    .expect("llmhub starts with deploy/collector/llmhub-to-collector.yaml");

    let sent = send_traffic(&llmhub.grpc, &llmhub.http, 84_000).await;
    let want = span_count(&sent);
    let until = Instant::now() + Duration::from_secs(30);
    while span_count(&got.lock().expect("lock")) < want && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = scrape(llmhub.metrics.parse().expect("metrics address")).await;
    let received = got.lock().expect("lock").clone();
    assert_eq!(span_count(&received), want, "spans at the backend");
    let got_spans = spans_by_id(&received);
    assert_eq!(got_spans.len(), want, "each span once");

    // Span by span: its own fields; its attributes in order (content removed by default) and
    // then only llmhub's; role and exact cost as the record says.
    let records = pg::records_by_id(&sent);
    let mut priced = 0;
    for (id, original) in spans_by_id(&sent) {
        let fwd = got_spans.get(&id).expect("span arrived");
        let ours = fwd
            .attributes
            .iter()
            .take_while(|a| !a.key.starts_with("llmhub."))
            .count();
        assert!(
            fwd.attributes[ours..].iter().all(|a| a.key.starts_with("llmhub.")),
            "llmhub's attributes come last"
        );
        let mut rest = original.attributes.iter();
        for a in &fwd.attributes[..ours] {
            assert!(
                rest.any(|o| o == a),
                "{}: an attribute not sent, or out of order",
                a.key
            );
        }
        assert_eq!(
            (&fwd.name, &fwd.parent_span_id, fwd.kind, &fwd.status),
            (
                &original.name,
                &original.parent_span_id,
                original.kind,
                &original.status
            )
        );
        assert_eq!(
            (fwd.start_time_unix_nano, fwd.end_time_unix_nano),
            (original.start_time_unix_nano, original.end_time_unix_nano)
        );
        match records.get(&id) {
            Some(rec) => {
                assert_eq!(
                    string_attr(&fwd.attributes, "llmhub.span.role").as_deref(),
                    Some(rec.role.as_str())
                );
                let cost = string_attr(&fwd.attributes, "llmhub.cost.decimal");
                assert_eq!(cost, rec.cost.as_ref().map(|c| c.total.normalize().to_string()));
                priced += usize::from(cost.is_some());
            }
            None => assert_eq!(ours, fwd.attributes.len(), "a span that is no record is not enriched"),
        }
    }
    assert!(priced > 300, "{priced} priced spans");
    assert_eq!(
        sum(&m, "llmhub_forward_requests_total", &[("llmhub_outcome", "sent")]),
        sent.len() as f64,
        "one forward per request received"
    );
    drop((rotel, llmhub));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs rotel (real-clients/run.py --install-only)"]
async fn llmhub_forwards_enriched_spans_through_rotel_over_grpc() {
    llmhub_forwards_through_rotel(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs rotel (real-clients/run.py --install-only)"]
async fn llmhub_forwards_enriched_spans_through_rotel_over_http() {
    llmhub_forwards_through_rotel(OtlpProtocol::HttpProtobuf).await;
}

//! TLS on every listener: OTLP/gRPC and OTLP/HTTP with mutual TLS, `/metrics` with server TLS,
//! exercised by real TLS clients (tonic over rustls, reqwest over rustls) with certificates made
//! by `openssl` for the test: a CA, a server certificate for localhost and 127.0.0.1, a client
//! certificate from that CA, and a client certificate from another CA.

mod common;

use bytes::Bytes;
use common::{loopback_config, parse, sum};
use llmhub_server::tls::ServerTlsConfig;
use llmhub_testkit::{chat, request, RawGrpcCodec};
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("pem")
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (scripts/servers.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA named `ca` and a certificate `name` it signs with the given extensions.
fn make_ca(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=llmhub test {ca}"),
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.crt"),
        ],
    );
}

fn make_cert(dir: &Path, ca: &str, name: &str, cn: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).expect("ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

fn pki(tag: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("llmhub-tls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    make_ca(&dir, "ca");
    make_ca(&dir, "other-ca");
    make_cert(
        &dir,
        "ca",
        "server",
        "localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    make_cert(&dir, "ca", "client", "app", "extendedKeyUsage=clientAuth\n");
    make_cert(&dir, "other-ca", "rogue", "app", "extendedKeyUsage=clientAuth\n");
    Pki { dir }
}

fn tls(p: &Pki, mutual: bool) -> ServerTlsConfig {
    ServerTlsConfig {
        cert_file: p.path("server.crt"),
        key_file: p.path("server.key"),
        client_ca_file: mutual.then(|| p.path("ca.crt")),
        min_version: "1.2".to_owned(),
    }
}

fn https_client(p: &Pki, identity: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&p.read("ca.crt")).expect("ca"));
    if let Some(name) = identity {
        let mut pem = p.read(&format!("{name}.crt"));
        pem.extend(p.read(&format!("{name}.key")));
        b = b.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
    }
    b.build().expect("client")
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<u16, reqwest::Error> {
    client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
}

async fn grpc_export(
    p: &Pki,
    port: u16,
    identity: Option<&str>,
    req: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) -> Result<(), String> {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(p.read("ca.crt")))
        .domain_name("localhost");
    if let Some(name) = identity {
        tls = tls.identity(Identity::from_pem(
            p.read(&format!("{name}.crt")),
            p.read(&format!("{name}.key")),
        ));
    }
    let channel = Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| e.to_string())?;
    grpc.unary(
        tonic::Request::new(Bytes::from(req.encode_to_vec())),
        http::uri::PathAndQuery::from_static("/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
        RawGrpcCodec,
    )
    .await
    .map(|_| ())
    .map_err(|s| format!("{s}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_speaks_tls_and_the_receivers_require_a_client_certificate() {
    let p = pki("e2e");
    let mut c = loopback_config();
    if let Some(g) = c.receivers.otlp.protocols.grpc.as_mut() {
        g.tls = Some(tls(&p, true));
    }
    if let Some(h) = c.receivers.otlp.protocols.http.as_mut() {
        h.tls = Some(tls(&p, true));
    }
    c.exporters.prometheus.tls = Some(tls(&p, false));
    let running = common::start(&c).await;
    let http_port = running.http_addr.expect("http").port();
    let grpc_port = running.grpc_addr.expect("grpc").port();
    let metrics_port = running.metrics_addr.port();
    let traces = format!("https://localhost:{http_port}/v1/traces");

    // OTLP/HTTP: a client certificate from the CA is accepted...
    let body = request("svc-tls-http", (1..=3).map(|n| chat(n, "gpt-4o", 10, 5)).collect()).encode_to_vec();
    assert_eq!(
        post(&https_client(&p, Some("client")), &traces, body.clone())
            .await
            .expect("mTLS"),
        200
    );
    // ...no certificate, a certificate from another CA, and cleartext are not.
    assert!(
        post(&https_client(&p, None), &traces, body.clone()).await.is_err(),
        "no client certificate"
    );
    assert!(
        post(&https_client(&p, Some("rogue")), &traces, body.clone())
            .await
            .is_err(),
        "another CA's certificate"
    );
    let cleartext = post(
        &reqwest::Client::new(),
        &format!("http://localhost:{http_port}/v1/traces"),
        body,
    )
    .await;
    assert!(!matches!(cleartext, Ok(200)), "cleartext on a TLS port: {cleartext:?}");

    // OTLP/gRPC: the same rules over HTTP/2.
    let req = request("svc-tls-grpc", (11..=14).map(|n| chat(n, "gpt-4o", 10, 5)).collect());
    grpc_export(&p, grpc_port, Some("client"), &req)
        .await
        .expect("gRPC over mutual TLS");
    assert!(
        grpc_export(&p, grpc_port, None, &req).await.is_err(),
        "gRPC without a client certificate"
    );
    assert!(
        grpc_export(&p, grpc_port, Some("rogue"), &req).await.is_err(),
        "gRPC with another CA's certificate"
    );

    // /metrics over TLS (no client certificate asked): what came in over both receivers.
    let text = https_client(&p, None)
        .get(format!("https://localhost:{metrics_port}/metrics"))
        .send()
        .await
        .expect("scrape over TLS")
        .text()
        .await
        .expect("body");
    let m = parse(&text);
    assert_eq!(
        sum(
            &m,
            "llmhub_receiver_spans_total",
            &[("llmhub_transport", "http_protobuf")]
        ),
        3.0
    );
    assert_eq!(
        sum(&m, "llmhub_receiver_spans_total", &[("llmhub_transport", "grpc")]),
        4.0
    );
    assert!(
        reqwest::get(format!("http://localhost:{metrics_port}/metrics"))
            .await
            .map(|r| r.status().as_u16())
            .ok()
            != Some(200),
        "no cleartext scrape"
    );
    running.stop().await.expect("stop");
    let _ = std::fs::remove_dir_all(&p.dir);
}

/// The OpenTelemetry SDK's own gRPC exporter (tonic over rustls) with a client certificate. (Its
/// HTTP exporter takes a reqwest client of another major version than this workspace's; the HTTP
/// receiver's TLS is exercised by reqwest over rustls above.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opentelemetry_sdk_exports_over_tls() {
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithTonicConfig};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    let p = pki("sdk");
    let mut c = loopback_config();
    if let Some(g) = c.receivers.otlp.protocols.grpc.as_mut() {
        g.tls = Some(tls(&p, true));
    }
    let running = common::start(&c).await;
    let grpc_port = running.grpc_addr.expect("grpc").port();

    let emit = |provider: &SdkTracerProvider| {
        let tracer = provider.tracer("tls-test");
        let mut span = tracer.start("chat gpt-4o");
        span.set_attribute(opentelemetry::KeyValue::new("gen_ai.operation.name", "chat"));
        span.set_attribute(opentelemetry::KeyValue::new("gen_ai.provider.name", "openai"));
        span.set_attribute(opentelemetry::KeyValue::new("gen_ai.request.model", "gpt-4o"));
        span.set_attribute(opentelemetry::KeyValue::new("gen_ai.usage.input_tokens", 100));
        span.set_attribute(opentelemetry::KeyValue::new("gen_ai.usage.output_tokens", 20));
        span.end();
    };
    let tls_cfg = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(p.read("ca.crt")))
        .identity(tonic::transport::Identity::from_pem(
            p.read("client.crt"),
            p.read("client.key"),
        ))
        .domain_name("localhost");
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(format!("https://localhost:{grpc_port}"))
        .with_tls_config(tls_cfg)
        .build()
        .expect("grpc exporter");
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).build();
    emit(&provider);
    tokio::task::spawn_blocking(move || {
        provider.force_flush().expect("gRPC export over mutual TLS");
        provider.shutdown().expect("shutdown");
    })
    .await
    .expect("sdk task");
    let text = reqwest::get(format!("http://{}/metrics", running.metrics_addr))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    let s = parse(&text);
    assert_eq!(
        sum(&s, "llmhub_receiver_spans_total", &[("llmhub_transport", "grpc")]),
        1.0
    );
    assert_eq!(
        sum(&s, "llmhub_tokens_total", &[("llmhub_token_bucket", "output")]),
        20.0
    );
    running.stop().await.expect("stop");
    let _ = std::fs::remove_dir_all(&p.dir);
}

#[test]
fn a_bad_tls_section_stops_the_start_naming_the_setting() {
    let p = pki("config");
    let yaml = format!(
        "receivers:\n  otlp:\n    protocols:\n      http:\n        tls:\n          cert_file: {}\n          key_file: {}\n",
        p.path("server.crt").display(),
        p.path("nope.key").display()
    );
    let msg = llmhub::config::from_yaml_str(&yaml).unwrap_err().to_string();
    assert!(
        msg.contains("receivers.otlp.protocols.http.tls.key_file: cannot read"),
        "{msg}"
    );
    // A key that does not belong to the certificate.
    let yaml = format!(
        "exporters:\n  prometheus:\n    tls:\n      cert_file: {}\n      key_file: {}\n",
        p.path("server.crt").display(),
        p.path("client.key").display()
    );
    let msg = llmhub::config::from_yaml_str(&yaml).unwrap_err().to_string();
    assert!(msg.contains("exporters.prometheus.tls:"), "{msg}");
    let _ = std::fs::remove_dir_all(&p.dir);
}

/// llmhub → llmhub over mutual TLS with an API key, on both protocols: the downstream's receivers
/// demand a client certificate from the CA and a key; the upstream forwards with its `tls`
/// section (CA, client certificate and key) and the key in `headers` (gRPC metadata or an HTTP
/// header). Every span arrives. Without the header the downstream refuses every request for good
/// (dead letters); without the client certificate the handshake fails and the forwarder retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_reaches_a_tls_endpoint_that_requires_a_client_certificate_and_a_key() {
    use llmhub_exporters::forward::ForwardConfig;
    use llmhub_exporters::otlp_metrics::OtlpProtocol;
    use llmhub_exporters::queue::QueueConfig;
    use llmhub_server::tls::ClientTls;
    const KEY: &str = "forwarder-key-0123456789";
    let p = pki("fwd");
    let mut down = loopback_config();
    for g in down.receivers.otlp.protocols.grpc.iter_mut() {
        g.tls = Some(tls(&p, true));
    }
    for h in down.receivers.otlp.protocols.http.iter_mut() {
        h.tls = Some(tls(&p, true));
    }
    down.receivers.otlp.auth =
        Some(serde_json::from_value(serde_json::json!({ "api_keys": [{ "key": KEY }] })).expect("auth"));
    let downstream = common::start(&down).await;
    let client_tls = |identity: bool| ClientTls {
        ca_file: Some(p.path("ca.crt")),
        cert_file: identity.then(|| p.path("client.crt")),
        key_file: identity.then(|| p.path("client.key")),
        insecure_skip_verify: false,
    };
    let upstream = |protocol: OtlpProtocol, header: Option<(&str, String)>, identity: bool| {
        let port = match protocol {
            OtlpProtocol::Grpc => downstream.grpc_addr.expect("grpc").port(),
            _ => downstream.http_addr.expect("http").port(),
        };
        let mut c = loopback_config();
        c.exporters.otlp = Some(ForwardConfig {
            endpoint: format!("https://localhost:{port}"),
            protocol,
            headers: header.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            tls: Some(client_tls(identity)),
            retry_initial_ms: 50,
            retry_max_ms: 200,
            queue: QueueConfig::default(),
            dead_letter_file: Some(p.path(&format!("dead-{protocol:?}-{identity}.jsonl"))),
            ..ForwardConfig::default()
        });
        c.service.pipelines.traces.exporters = vec!["prometheus".into(), "otlp".into()];
        c
    };
    let scrape_sum = |addr: std::net::SocketAddr,
                      metric: &'static str,
                      labels: &'static [(&'static str, &'static str)]| async move {
        sum(&common::scrape(addr).await, metric, labels)
    };
    let wait_for = |addr: std::net::SocketAddr,
                    metric: &'static str,
                    labels: &'static [(&'static str, &'static str)],
                    want: f64| async move {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let got = scrape_sum(addr, metric, labels).await;
            if got >= want || std::time::Instant::now() > until {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    // An upstream with these settings, already sent one request with `spans`.
    let upstream_sent = |config: llmhub::config::Config, service: String, spans: Vec<_>| async move {
        let up = common::start(&config).await;
        let http = format!("http://{}/v1/traces", up.http_addr.expect("http"));
        let body = request(&service, spans).encode_to_vec();
        assert_eq!(common::post_otlp(&http, "application/x-protobuf", body).await, 200);
        up
    };
    let mut expected = 0.0;
    for (n, (protocol, header)) in [
        (OtlpProtocol::Grpc, ("x-api-key", KEY.to_owned())),
        (OtlpProtocol::HttpProtobuf, ("Authorization", format!("Bearer {KEY}"))),
    ]
    .into_iter()
    .enumerate()
    {
        let spans: Vec<_> = (1..=5).map(|i| chat(100 * n as u64 + i, "gpt-4o", 10, 5)).collect();
        let up = upstream_sent(
            upstream(protocol, Some(header), true),
            format!("svc-fwd-{protocol:?}"),
            spans,
        )
        .await;
        expected += 5.0;
        let got = wait_for(downstream.metrics_addr, "llmhub_receiver_spans_total", &[], expected).await;
        assert_eq!(
            got, expected,
            "{protocol:?}: every forwarded span arrived over mutual TLS with the key"
        );
        assert_eq!(
            scrape_sum(
                up.metrics_addr,
                "llmhub_forward_requests_total",
                &[("llmhub_outcome", "sent")]
            )
            .await,
            1.0,
            "{protocol:?}"
        );
        up.stop().await.expect("stop");

        // Without the key: refused for good, written to the dead letters, nothing arrives.
        let spans = vec![chat(900 + n as u64, "gpt-4o", 1, 1)];
        let up = upstream_sent(upstream(protocol, None, true), "svc-fwd-nokey".to_owned(), spans).await;
        let dead = wait_for(
            up.metrics_addr,
            "llmhub_forward_requests_total",
            &[("llmhub_outcome", "dead_letter")],
            1.0,
        )
        .await;
        assert_eq!(dead, 1.0, "{protocol:?}: an unauthenticated forward is dead-lettered");
        up.stop().await.expect("stop");

        // Without the client certificate: the handshake fails, the forwarder retries.
        let spans = vec![chat(950 + n as u64, "gpt-4o", 1, 1)];
        let no_cert = upstream(protocol, Some(("x-api-key", KEY.to_owned())), false);
        let up = upstream_sent(no_cert, "svc-fwd-nocert".to_owned(), spans).await;
        let retries = wait_for(up.metrics_addr, "llmhub_forward_retries_total", &[], 2.0).await;
        assert!(
            retries >= 2.0,
            "{protocol:?}: {retries} retries without a client certificate"
        );
        assert_eq!(
            scrape_sum(
                up.metrics_addr,
                "llmhub_forward_requests_total",
                &[("llmhub_outcome", "sent")]
            )
            .await,
            0.0
        );
        up.stop().await.expect("stop");
    }
    assert_eq!(
        scrape_sum(downstream.metrics_addr, "llmhub_receiver_spans_total", &[]).await,
        expected,
        "nothing arrived without the key or the certificate"
    );
    downstream.stop().await.expect("stop");
}

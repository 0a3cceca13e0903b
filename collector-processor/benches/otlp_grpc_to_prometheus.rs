//! Loopback end-to-end throughput: the release `llmhub serve` binary, pinned to one core
//! (`taskset -c 0` when available), receives batches of 512 realistic GenAI spans over OTLP/gRPC
//! from a client on the other core; the harness reports spans/s as llmhub counted them, beside the
//! bare protobuf decode rate of the same payloads measured in this process on one core, and the
//! ratio of the two.
//!
//! `cargo bench -p llmhub --bench otlp_grpc_to_prometheus` (seconds: `LLMHUB_BENCH_SECS`, default
//! 10; concurrent streams: `LLMHUB_BENCH_STREAMS`, default 4). Under `cargo test` it runs a
//! half-second smoke pass so the harness never rots.

use bytes::Bytes;
use llmhub::testkit::{realistic_request, RawGrpcCodec};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SPANS_PER_REQUEST: usize = 512;
const PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Spans decoded per second by a bare prost decode loop over `payloads` for about `secs`.
fn decode_rate(payloads: &[Bytes], secs: f64) -> f64 {
    let start = Instant::now();
    let mut spans = 0u64;
    let mut k = 0;
    while start.elapsed().as_secs_f64() < secs {
        let req = ExportTraceServiceRequest::decode(&payloads[k % payloads.len()][..]).expect("decodes");
        spans += req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum::<u64>();
        k += 1;
    }
    spans as f64 / start.elapsed().as_secs_f64()
}

fn start_llmhub(pinned: bool) -> (std::process::Child, String, String) {
    let exe = env!("CARGO_BIN_EXE_llmhub");
    let args = [
        "serve",
        "--bind",
        "127.0.0.1",
        "--grpc-port",
        "0",
        "--http-port",
        "0",
        "--metrics-port",
        "0",
    ];
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", exe]).args(args);
        c
    } else {
        let mut c = Command::new(exe);
        c.args(args);
        c
    };
    let mut child = cmd
        .env("LLMHUB_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("llmhub starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (mut grpc, mut metrics) = (String::new(), String::new());
    while grpc.is_empty() || metrics.is_empty() {
        let line = lines.next().expect("log line").expect("utf-8");
        if let Some(p) = line.find("addr=") {
            let addr = line[p + 5..].split_whitespace().next().expect("addr").to_owned();
            if line.contains("gRPC") {
                grpc = addr;
            } else if line.contains("metrics endpoint") {
                metrics = addr;
            }
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (child, grpc, metrics)
}

fn counted_spans(metrics: &str) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let text = rt.block_on(async {
        reqwest::get(format!("http://{metrics}/metrics"))
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text")
    });
    text.lines()
        .filter(|l| l.starts_with("llmhub_receiver_spans_total{") && l.contains("transport=\"grpc\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let secs = if bench {
        env_num("LLMHUB_BENCH_SECS", 10) as f64
    } else {
        0.5
    };
    let streams = env_num("LLMHUB_BENCH_STREAMS", 4) as usize;
    let pinned = Command::new("taskset")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());

    let payloads: Vec<Bytes> = (0..32)
        .map(|seed| Bytes::from(realistic_request(SPANS_PER_REQUEST, seed).encode_to_vec()))
        .collect();
    let avg_bytes = payloads.iter().map(Bytes::len).sum::<usize>() / payloads.len();
    let decode = decode_rate(&payloads, secs.min(3.0));

    let (mut child, grpc, metrics) = start_llmhub(pinned);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let (sent, elapsed, latencies) = rt.block_on(async {
        let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for s in 0..streams {
            let channel = channel.clone();
            let payloads = payloads.clone();
            tasks.push(tokio::spawn(async move {
                let mut grpc = tonic::client::Grpc::new(channel);
                let mut sent = 0u64;
                let mut lat = Vec::new();
                let mut k = s;
                while Instant::now() < deadline {
                    grpc.ready().await.expect("ready");
                    let t = Instant::now();
                    let req = tonic::Request::new(payloads[k % payloads.len()].clone());
                    grpc.unary(req, http::uri::PathAndQuery::from_static(PATH), RawGrpcCodec)
                        .await
                        .expect("export accepted");
                    lat.push(t.elapsed().as_secs_f64());
                    sent += SPANS_PER_REQUEST as u64;
                    k += streams;
                }
                (sent, lat)
            }));
        }
        let mut sent = 0;
        let mut lat = Vec::new();
        for t in tasks {
            let (n, l) = t.await.expect("task");
            sent += n;
            lat.extend(l);
        }
        (sent, start.elapsed().as_secs_f64(), lat)
    });
    let counted = counted_spans(&metrics);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(counted as u64, sent, "llmhub counted every span sent");

    let mut lat = latencies;
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize] * 1000.0;
    let rate = sent as f64 / elapsed;
    println!("otlp_grpc_to_prometheus: {SPANS_PER_REQUEST} spans/request ({avg_bytes} bytes), {streams} streams, {secs:.1} s, llmhub pinned to core 0: {pinned}");
    println!("  llmhub ingest:        {rate:>12.0} spans/s  ({sent} spans counted by llmhub)");
    println!("  bare protobuf decode: {decode:>12.0} spans/s  (same payloads, one core, this process)");
    println!("  ratio ingest/decode:  {:>12.3}", rate / decode);
    println!(
        "  request latency at full load: p50 {:.2} ms, p99 {:.2} ms",
        pct(0.5),
        pct(0.99)
    );
}

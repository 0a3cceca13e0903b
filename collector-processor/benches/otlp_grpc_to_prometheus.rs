//! Loopback end-to-end throughput: the release `llmhub serve` binary, pinned to one core
//! (`taskset -c 0` when available), receives batches of 512 realistic GenAI spans over OTLP/gRPC
//! from a client on the other core; the harness reports spans/s as llmhub counted them, beside the
//! bare protobuf decode rate of the same payloads measured in this process on one core (just
//! before and just after the full-load phase; the ratio uses their mean), and the ratio of the
//! two, and how much of its core llmhub used meanwhile (below one, the client set the pace).
//! Every request carries new spans (`testkit::Restamp`), so llmhub deduplicates none.
//!
//! `cargo bench -p llmhub --bench otlp_grpc_to_prometheus` (seconds: `LLMHUB_BENCH_SECS`, default
//! 10; concurrent streams: `LLMHUB_BENCH_STREAMS`, default 4). Under `cargo test` it runs a
//! half-second smoke pass so the harness never rots.

use bytes::Bytes;
use llmhub_testkit::env_num;
use llmhub_testkit::{realistic_request, RawGrpcCodec, Restamp};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SPANS_PER_REQUEST: usize = 512;
const PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// CPU seconds (user and system) process `pid` has used so far, from `/proc/<pid>/stat`; `None`
/// where that is not readable. Clock ticks are taken as 100 per second (Linux's `USER_HZ`).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Spans decoded per second by a bare decode loop (`decode`) over `bodies` for about `secs`.
fn decode_rate<B>(bodies: &[B], secs: f64, decode: impl Fn(&B) -> ExportTraceServiceRequest) -> f64 {
    let start = Instant::now();
    let mut spans = 0u64;
    let mut k = 0;
    while start.elapsed().as_secs_f64() < secs {
        let req = decode(&bodies[k % bodies.len()]);
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

fn start_llmhub(pinned: bool) -> (llmhub_testkit::ServeProcess, String, String, String) {
    let args = llmhub_testkit::LOOPBACK_EPHEMERAL;
    let p =
        llmhub_testkit::spawn_serve(env!("CARGO_BIN_EXE_llmhub"), &args, pinned.then_some(0)).expect("llmhub starts");
    let (grpc, http, metrics) = (p.grpc.clone(), p.http.clone(), p.metrics.clone());
    (p, grpc, http, metrics)
}

/// llmhub's own count of the spans it received, and of the calls it took for duplicates.
fn counted_spans(metrics: &str) -> (f64, f64) {
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
    let sum = |family: &str| {
        text.lines()
            .filter(|l| l.starts_with(family))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (
        sum("llmhub_receiver_spans_total{"),
        sum("llmhub_calls_duplicate_total{"),
    )
}

/// The next request to send: send number `n` of the run (shared by every phase) is payload
/// `n mod len` restamped for round `n / len`, so no span is sent twice.
fn next_body(stamps: &[Restamp], sends: &AtomicU64) -> Vec<u8> {
    let n = sends.fetch_add(1, Ordering::Relaxed);
    let len = stamps.len() as u64;
    stamps[(n % len) as usize].round(n / len)
}

/// Sends new spans over gRPC from `streams` concurrent streams for `secs`, at full speed or at
/// `pace` requests per second in total. Returns (spans sent, seconds, per-request latencies).
async fn grpc_load(
    grpc: &str,
    stamps: &Arc<Vec<Restamp>>,
    sends: &Arc<AtomicU64>,
    secs: f64,
    streams: usize,
    pace: Option<f64>,
) -> (u64, f64, Vec<f64>) {
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let (channel, stamps, sends) = (channel.clone(), stamps.clone(), sends.clone());
        tasks.push(tokio::spawn(async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            let mut tick = pace.map(|p| tokio::time::interval(Duration::from_secs_f64(streams as f64 / p)));
            let (mut sent, mut lat) = (0u64, Vec::new());
            while Instant::now() < deadline {
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                let body = Bytes::from(next_body(&stamps, &sends));
                grpc.ready().await.expect("ready");
                let t = Instant::now();
                let req = tonic::Request::new(body);
                grpc.unary(req, http::uri::PathAndQuery::from_static(PATH), RawGrpcCodec)
                    .await
                    .expect("export accepted");
                lat.push(t.elapsed().as_secs_f64());
                sent += SPANS_PER_REQUEST as u64;
            }
            (sent, lat)
        }));
    }
    let (mut sent, mut lat) = (0, Vec::new());
    for t in tasks {
        let (n, l) = t.await.expect("task");
        sent += n;
        lat.extend(l);
    }
    (sent, start.elapsed().as_secs_f64(), lat)
}

/// The same over OTLP/HTTP with JSON bodies.
async fn json_load(
    http_addr: &str,
    stamps: &Arc<Vec<Restamp>>,
    sends: &Arc<AtomicU64>,
    secs: f64,
    streams: usize,
) -> (u64, f64) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let (client, url) = (client.clone(), format!("http://{http_addr}/v1/traces"));
        let (stamps, sends) = (stamps.clone(), sends.clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < deadline {
                let resp = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(next_body(&stamps, &sends))
                    .send()
                    .await
                    .expect("export");
                assert_eq!(resp.status().as_u16(), 200);
                sent += SPANS_PER_REQUEST as u64;
            }
            sent
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.expect("task");
    }
    (sent, start.elapsed().as_secs_f64())
}

fn percentiles(mut lat: Vec<f64>) -> (f64, f64) {
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        lat.get(((lat.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
            * 1000.0
    };
    (pct(0.5), pct(0.99))
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

    let requests: Vec<_> = (0..32).map(|seed| realistic_request(SPANS_PER_REQUEST, seed)).collect();
    let encoded: Vec<Vec<u8>> = requests.iter().map(|r| r.encode_to_vec()).collect();
    let jsons: Vec<Vec<u8>> = requests
        .iter()
        .map(|r| serde_json::to_vec(r).expect("OTLP/JSON"))
        .collect();
    let avg_bytes = encoded.iter().map(Vec::len).sum::<usize>() / encoded.len();
    // What the load phases send: every request as new spans (`Restamp`), so llmhub deduplicates
    // none of them and prices and records every call, as with live traffic.
    let stamps: Arc<Vec<Restamp>> = Arc::new(encoded.iter().map(|b| Restamp::new(b)).collect());
    let json_stamps: Arc<Vec<Restamp>> = Arc::new(jsons.iter().map(|b| Restamp::json(b)).collect());
    let sends = Arc::new(AtomicU64::new(0));
    let prost_decode = |b: &Vec<u8>| ExportTraceServiceRequest::decode(&b[..]).expect("decodes");
    let decode_before = decode_rate(&encoded, secs.min(3.0), prost_decode);
    let json_decode = decode_rate(&jsons, secs.min(3.0), |b| {
        llmhub::receivers::otlp::json::decode_traces(b).expect("decodes")
    });

    let (mut child, grpc, http_addr, metrics) = start_llmhub(pinned);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    // 1. Full load: capacity. How busy llmhub was meanwhile tells whether the client kept it
    // fed: below one core, the rate is the client's, not llmhub's.
    let cpu_before = cpu_seconds(child.pid());
    let (sent, elapsed, lat) = rt.block_on(grpc_load(&grpc, &stamps, &sends, secs, streams, None));
    let rate = sent as f64 / elapsed;
    let busy = cpu_before
        .zip(cpu_seconds(child.pid()))
        .map(|(before, after)| (after - before) / elapsed);
    // The baseline again right after the load: on a shared host its speed drifts within minutes,
    // so the ratio uses the mean of the two and both are printed.
    let decode_after = decode_rate(&encoded, secs.min(3.0), prost_decode);
    let decode = (decode_before + decode_after) / 2.0;
    let (p50_full, p99_full) = percentiles(lat);
    // 2. Half of that capacity, paced: request latency.
    let half_requests_per_s = rate / 2.0 / SPANS_PER_REQUEST as f64;
    let (sent_half, elapsed_half, lat_half) = rt.block_on(grpc_load(
        &grpc,
        &stamps,
        &sends,
        secs,
        streams,
        Some(half_requests_per_s),
    ));
    let (p50_half, p99_half) = percentiles(lat_half);
    // 3. OTLP/HTTP JSON at full load.
    let (sent_json, elapsed_json) = rt.block_on(json_load(&http_addr, &json_stamps, &sends, secs, streams));
    let json_rate = sent_json as f64 / elapsed_json;
    let (counted, duplicates) = counted_spans(&metrics);
    child.kill();
    assert_eq!(
        counted as u64,
        sent + sent_half + sent_json,
        "llmhub counted every span sent"
    );
    assert_eq!(duplicates, 0.0, "every span sent was new: none was deduplicated");

    println!("otlp_grpc_to_prometheus: {SPANS_PER_REQUEST} spans/request ({avg_bytes} bytes protobuf), {streams} streams, {secs:.1} s per phase, llmhub pinned to core 0: {pinned}");
    println!("  gRPC ingest:          {rate:>12.0} spans/s  ({sent} spans counted by llmhub)");
    println!("  bare protobuf decode: {decode:>12.0} spans/s  (same payloads, one core, this process; {decode_before:.0} before the load, {decode_after:.0} after)");
    println!("  ratio ingest/decode:  {:>12.3}", rate / decode);
    if let Some(busy) = busy {
        println!(
            "  llmhub CPU at full load: {busy:.2} of a core ({:.0} spans per CPU-second)",
            rate / busy
        );
    }
    println!("  latency at full load:  p50 {p50_full:.2} ms, p99 {p99_full:.2} ms");
    println!(
        "  latency at half load:  p50 {p50_half:.2} ms, p99 {p99_half:.2} ms  ({:.0} spans/s offered)",
        sent_half as f64 / elapsed_half
    );
    println!("  HTTP JSON ingest:     {json_rate:>12.0} spans/s");
    println!("  bare JSON decode:     {json_decode:>12.0} spans/s  (same payloads as OTLP/JSON)");
    println!("  ratio JSON ingest/decode: {:>8.3}", json_rate / json_decode);
}

//! Per-span cost of the ingest path on one core, beside its baseline in the same run:
//! - `decode_protobuf/512` is the bare prost decode of a 512-span realistic request (the baseline);
//! - `wire_decode_protobuf/512` is llmhub's borrowing decoder alone, on the same payloads;
//! - `decode_process_protobuf/512` decodes and runs the GenAI processor (normalize, deduplicate,
//!   price, record into the metrics state), which is what `llmhub serve` does per request; every
//!   request carries new spans (`testkit::Restamp`), so none is passed over as a duplicate;
//! - the same two for OTLP/JSON.
//!
//! `cargo bench -p llmhub --bench normalize`; figures in BENCHMARKS.md.
// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use llmhub::config::GenAiProcessor as GenAiConfig;
use llmhub::metrics::Metrics;
use llmhub::processors::genai::GenAiProcessor;
use llmhub::receivers::otlp::{json, wire};
use llmhub_testkit::{realistic_request, Restamp};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prometheus_client::registry::Registry;
use prost::Message;
use std::sync::Arc;

const SPANS: usize = 512;

fn processor() -> GenAiProcessor {
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry, 10_000, 1_000));
    let matcher = llmhub::processors::pricing::matcher(&Default::default()).expect("built-in catalog");
    GenAiProcessor::new(&GenAiConfig::default(), matcher, metrics)
}

fn benches(c: &mut Criterion) {
    // 64 payloads of different content (decode and normalization see varied attributes).
    let requests: Vec<ExportTraceServiceRequest> = (0..64).map(|seed| realistic_request(SPANS, seed)).collect();
    let protobuf: Vec<Vec<u8>> = requests.iter().map(|r| r.encode_to_vec()).collect();
    let jsons: Vec<Vec<u8>> = requests
        .iter()
        .map(|r| serde_json::to_vec(r).expect("OTLP/JSON"))
        .collect();

    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(SPANS as u64));
    let mut k = 0usize;
    g.bench_function("decode_protobuf/512", |b| {
        b.iter(|| {
            k = (k + 1) % protobuf.len();
            ExportTraceServiceRequest::decode(&protobuf[k][..]).expect("decodes")
        })
    });
    g.bench_function("wire_decode_protobuf/512", |b| {
        b.iter(|| {
            k = (k + 1) % protobuf.len();
            llmhub::receivers::otlp::wire::decode_request(&protobuf[k])
                .expect("decodes")
                .len()
        })
    });
    // The processing benchmarks send every request as new spans (new trace ids, times an hour
    // later per round; restamped outside the timed part), so deduplication finds no copies.
    let stamps: Vec<Restamp> = protobuf.iter().map(|b| Restamp::new(b)).collect();
    let json_stamps: Vec<Restamp> = jsons.iter().map(|b| Restamp::json(b)).collect();
    let p = processor();
    let mut n = 0u64;
    g.bench_function("decode_process_protobuf/512", |b| {
        b.iter_batched_ref(
            || {
                n += 1;
                stamps[n as usize % stamps.len()].round(n / stamps.len() as u64)
            },
            |body| {
                // What the gRPC receiver does (no sink attached, so nothing waits on a queue).
                let views = wire::decode_request(body).expect("decodes");
                p.process_views(&views, llmhub::metrics::Transport::Grpc)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("decode_json/512", |b| {
        b.iter(|| {
            k = (k + 1) % jsons.len();
            json::decode_traces(&jsons[k]).expect("decodes")
        })
    });
    let p = processor();
    let mut n = 0u64;
    g.bench_function("decode_process_json/512", |b| {
        b.iter_batched_ref(
            || {
                n += 1;
                json_stamps[n as usize % json_stamps.len()].round(n / json_stamps.len() as u64)
            },
            |body| {
                let req = json::decode_traces(body).expect("decodes");
                p.process(&req, llmhub::metrics::Transport::HttpJson)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(name = ingest; config = Criterion::default().sample_size(30); targets = benches);
criterion_main!(ingest);

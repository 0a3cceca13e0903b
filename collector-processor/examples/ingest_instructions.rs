//! Counts the instructions of the ingest path per span under callgrind, where the count does not
//! depend on what else the machine is doing (unlike the timed benchmarks on a noisy host).
//!
//! Run through `scripts/ingest-instructions.sh`, which starts this under
//! `valgrind --tool=callgrind` and counts only inside the three `measure_*` functions:
//! - `measure_prost`: prost decode of each request (the baseline of issue 7);
//! - `measure_wire`: llmhub's borrowing decoder alone;
//! - `measure_ingest`: decode and the GenAI processor (normalize, deduplicate, price, record),
//!   what `llmhub serve` does per gRPC request.
//!
//! Every request carries new spans (`testkit::Restamp`), and the processor has seen `WARM_UP`
//! requests first, so the one-time work of a new label identity is not counted.
#![allow(missing_docs)]

use llmhub::config::GenAiProcessor as GenAiConfig;
use llmhub::metrics::Metrics;
use llmhub::processors::genai::GenAiProcessor;
use llmhub::receivers::otlp::wire;
use llmhub_testkit::{realistic_request, Restamp};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prometheus_client::registry::Registry;
use prost::Message;
use std::hint::black_box;
use std::sync::Arc;

const SPANS: usize = 512;
const PAYLOADS: u64 = 16;
const WARM_UP: u64 = 32;
const MEASURED: u64 = 16;

#[inline(never)]
fn measure_prost(bodies: &[Vec<u8>]) -> usize {
    bodies
        .iter()
        .map(|b| {
            ExportTraceServiceRequest::decode(&b[..])
                .expect("decodes")
                .resource_spans
                .len()
        })
        .sum()
}

#[inline(never)]
fn measure_wire(bodies: &[Vec<u8>]) -> usize {
    bodies
        .iter()
        .map(|b| wire::decode_request(b).expect("decodes").len())
        .sum()
}

#[inline(never)]
fn ingest(p: &GenAiProcessor, bodies: &[Vec<u8>]) -> u64 {
    bodies
        .iter()
        .map(|b| {
            p.process_views(
                &wire::decode_request(b).expect("decodes"),
                llmhub::metrics::Transport::Grpc,
            )
            .received
        })
        .sum()
}

#[inline(never)]
fn measure_ingest(p: &GenAiProcessor, bodies: &[Vec<u8>]) -> u64 {
    ingest(p, bodies)
}

fn main() {
    let encoded: Vec<Vec<u8>> = (0..PAYLOADS)
        .map(|seed| realistic_request(SPANS, seed).encode_to_vec())
        .collect();
    let stamps: Vec<Restamp> = encoded.iter().map(|b| Restamp::new(b)).collect();
    let round = |n: u64| stamps[(n % PAYLOADS) as usize].round(n / PAYLOADS);
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::new(&mut registry, 10_000, 1_000));
    let matcher = llmhub::processors::pricing::matcher(&Default::default()).expect("built-in catalog");
    let p = GenAiProcessor::new(&GenAiConfig::default(), matcher, metrics);
    let warm: Vec<Vec<u8>> = (0..WARM_UP).map(round).collect();
    black_box(ingest(&p, &warm));
    let bodies: Vec<Vec<u8>> = (WARM_UP..WARM_UP + MEASURED).map(round).collect();
    let spans = MEASURED * SPANS as u64;
    black_box(measure_prost(&bodies));
    black_box(measure_wire(&bodies));
    let received = black_box(measure_ingest(&p, &bodies));
    assert_eq!(received, spans, "every span was read");
    println!("spans per measured function: {spans}");
}

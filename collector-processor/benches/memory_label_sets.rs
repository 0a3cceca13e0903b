//! Resident memory of the release `llmhub serve` binary (default configuration) as the number of
//! distinct GenAI label sets grows: idle, after 10 000 distinct (service, model) combinations, and
//! after 200 000 (far past the default cardinality limits of 1 000 values per label and 10 000
//! series per metric). Read from `/proc/PID/status` (VmRSS).
//!
//! `cargo bench -p llmhub --bench memory_label_sets`. Under `cargo test` it runs a small smoke pass.

use llmhub_testkit::{chat, request};
use prost::Message;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (small, large) = if bench { (10_000u64, 200_000u64) } else { (200, 2_000) };
    let args = llmhub_testkit::LOOPBACK_EPHEMERAL;
    let serve = llmhub_testkit::spawn_serve(env!("CARGO_BIN_EXE_llmhub"), &args, None).expect("llmhub starts");
    let http = serve.http.clone();
    let pid = serve.pid();
    let mut child = serve;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let client = reqwest::Client::new();
    let send = |from: u64, to: u64| {
        rt.block_on(async {
            let mut n = from;
            while n < to {
                let end = (n + 5_000).min(to);
                // 100 services × many models: each call is a new (service, model) label set.
                let mut by_service: Vec<Vec<_>> = vec![Vec::new(); 100];
                for k in n..end {
                    by_service[(k % 100) as usize].push(chat(k, &format!("model-{}", k / 100), 100, 10));
                }
                for (s, spans) in by_service.into_iter().enumerate() {
                    if spans.is_empty() {
                        continue;
                    }
                    let body = request(&format!("service-{s}"), spans).encode_to_vec();
                    let resp = client
                        .post(format!("http://{http}/v1/traces"))
                        .header("content-type", "application/x-protobuf")
                        .body(body)
                        .send()
                        .await
                        .expect("export");
                    assert_eq!(resp.status().as_u16(), 200);
                }
                n = end;
            }
        })
    };
    let idle = rss_kib(pid);
    send(0, small);
    let at_small = rss_kib(pid);
    send(small, large);
    let at_large = rss_kib(pid);
    child.kill();
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "memory_label_sets: llmhub serve ({} build), default limits (1000 values/label, 10000 series/metric)",
        if bench { "release" } else { "test" }
    );
    println!("  idle:                                   {:>7.1} MiB", mib(idle));
    println!(
        "  after {small:>6} distinct label sets:       {:>7.1} MiB",
        mib(at_small)
    );
    println!(
        "  after {large:>6} distinct label sets:       {:>7.1} MiB (all limits saturated)",
        mib(at_large)
    );
}

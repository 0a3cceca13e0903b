//! `llmhub loadgen` end to end: the real OpenTelemetry SDK sends the generated traffic to a running
//! llmhub over gRPC and HTTP JSON; every span arrives, every call is priced, incidents are written
//! as ground truth, and a fixed seed gives identical results.

mod common;

use common::{loopback_config, scrape, start, sum};
use llmhub_loadgen::scenario::PlanDialect;
use llmhub_loadgen::{run, LoadgenConfig, Progress, Transport};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const DAY_START: u64 = 1_795_132_800_000_000_000; // 2026-11-20T00:00:00Z

fn config(endpoint: String, transport: Transport, ground_truth: Option<std::path::PathBuf>) -> LoadgenConfig {
    LoadgenConfig {
        endpoint,
        transport,
        seed: 42,
        rate: 1.0,
        duration: None,
        count: None,
        spans: None,
        models: Vec::new(),
        // Ten simulated minutes around mid-afternoon, sent as fast as possible.
        backfill: Some((
            DAY_START + 14 * 3_600_000_000_000,
            DAY_START + 14 * 3_600_000_000_000 + 600_000_000_000,
        )),
        start: None,
        dialects: PlanDialect::ALL.to_vec(),
        tenants: 3,
        incidents: true,
        ground_truth,
        replay: 0,
    }
}

/// Runs the generator into a fresh llmhub; returns (spans sent, scraped metrics).
async fn round(transport: Transport, ground_truth: Option<std::path::PathBuf>) -> (u64, Vec<common::Sample>) {
    let running = start(&loopback_config()).await;
    let endpoint = match transport {
        Transport::Grpc => format!("http://{}", running.grpc_addr.expect("grpc")),
        _ => format!("http://{}", running.http_addr.expect("http")),
    };
    let summary = run(
        config(endpoint, transport, ground_truth),
        Arc::new(Progress::default()),
        CancellationToken::new(),
    )
    .await
    .expect("loadgen runs");
    let m = scrape(running.metrics_addr).await;
    running.stop().await.expect("stop");
    (summary.spans, m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_traffic_arrives_whole_priced_and_reproducible() {
    let dir = std::env::temp_dir().join(format!("llmhub-loadgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let truth = dir.join("incidents.jsonl");
    let (sent, m) = round(Transport::Grpc, Some(truth.clone())).await;
    assert!(sent > 500, "{sent} spans");
    assert_eq!(
        sum(&m, "llmhub_receiver_spans_total", &[]),
        sent as f64,
        "every span arrived"
    );
    assert_eq!(sum(&m, "llmhub_receiver_spans_refused_total", &[]), 0.0);
    let calls = sum(&m, "llmhub_requests_total", &[]);
    assert!(calls > 200.0, "{calls} model calls");
    assert!(sum(&m, "llmhub_cost_usd_total", &[]) > 0.0);
    assert_eq!(
        sum(&m, "llmhub_cost_unknown_price_total", &[]),
        0.0,
        "every generated model is in the catalog"
    );
    assert!(sum(&m, "llmhub_tool_duration_seconds_count", &[]) > 10.0);
    assert!(sum(&m, "llmhub_tokens_total", &[("llmhub_token_bucket", "cache_read")]) > 0.0);
    assert!(sum(&m, "llmhub_tokens_total", &[("llmhub_token_bucket", "reasoning")]) > 0.0);
    assert!(sum(&m, "gen_ai_client_operation_time_to_first_chunk_seconds_count", &[]) > 50.0);
    assert!(sum(&m, "llmhub_errors_total", &[]) > 0.0);
    // Every dialect's usage was read: only the failed calls (which report none) lack usage.
    assert_eq!(
        sum(&m, "llmhub_usage_missing_total", &[]),
        sum(&m, "llmhub_errors_total", &[])
    );
    assert!(
        sum(&m, "gen_ai_server_time_to_first_token_seconds_count", &[]) > 0.0,
        "OpenLIT server TTFT"
    );
    let lines = std::fs::read_to_string(&truth).expect("ground truth");
    assert_eq!(lines.lines().count(), 4, "{lines}");
    assert!(lines.contains("\"kind\":\"runaway_agent_loop\""), "{lines}");

    // The same seed and window over HTTP JSON: identical token sums per model and bucket.
    let (sent2, m2) = round(Transport::HttpJson, None).await;
    assert_eq!(sent2, sent);
    let tokens = |m: &[common::Sample]| {
        let mut v: Vec<(String, String, u64)> = m
            .iter()
            .filter(|s| s.name == "llmhub_tokens_total")
            .map(|s| {
                (
                    s.labels["gen_ai_request_model"].clone(),
                    s.labels["llmhub_token_bucket"].clone(),
                    s.value as u64,
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(tokens(&m), tokens(&m2));
}

/// `llmhub loadgen --backfill` prints its progress on standard error and ends with the whole
/// window done; the counts it prints are what the summary says and what llmhub received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loadgen_command_prints_its_backfill_progress() {
    let running = start(&loopback_config()).await;
    let endpoint = format!("http://{}", running.grpc_addr.expect("grpc"));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_llmhub"))
        .args([
            "loadgen",
            "--endpoint",
            &endpoint,
            "--seed",
            "5",
            "--rate",
            "0.5",
            "--backfill",
            "2026-11-20T14:00:00Z..2026-11-20T14:10:00Z",
        ])
        .output()
        .await
        .expect("loadgen runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let (traces, spans): (u64, u64) = {
        let rest = stdout.trim().strip_prefix("sent ").expect("a summary line");
        let (t, s) = rest.split_once(" traces, ").expect("traces");
        (
            t.parse().expect("a count"),
            s.trim_end_matches(" spans").parse().expect("a count"),
        )
    };
    let last = stderr
        .lines()
        .rfind(|l| l.starts_with("loadgen: "))
        .unwrap_or_else(|| panic!("no progress line in {stderr}"));
    assert!(
        last.starts_with(&format!("loadgen: {traces} traces, {spans} spans, ")),
        "{last}"
    );
    assert!(
        last.ends_with("; simulated time 2026-11-20T14:10:00.000Z, 100% of the backfill"),
        "{last}"
    );
    let m = scrape(running.metrics_addr).await;
    running.stop().await.expect("stop");
    assert_eq!(sum(&m, "llmhub_receiver_spans_total", &[]), spans as f64);
    assert!(traces > 100, "{traces} traces");
}

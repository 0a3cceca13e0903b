//! Every dialect fixture sent over OTLP/HTTP JSON to a running llmhub: the metrics per service
//! (tokens by bucket, requests, missing usage, time-to-first-chunk observations, durations) equal
//! what the reviewed golden records say.

mod common;

use common::{loopback_config, scrape, start, sum};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Default, Debug)]
struct Expect {
    buckets: BTreeMap<&'static str, f64>,
    requests: f64,
    missing: f64,
    ttfc: f64,
    durations: f64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_dialect_reads_correct_tokens_durations_and_ttft_per_service() {
    let running = start(&loopback_config()).await;
    let url = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dialects");
    let mut expect: BTreeMap<String, Expect> = BTreeMap::new();
    let client = reqwest::Client::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        files += 1;
        let body = std::fs::read(&path).expect("fixture");
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200, "{}", path.display());

        let golden: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("expected").join(path.file_name().expect("name"))).expect("golden"),
        )
        .expect("json");
        for e in golden.as_array().expect("array") {
            let r = &e["record"];
            if e["outcome"] != "call" || r["role"] != "model_call" {
                continue;
            }
            let x = expect
                .entry(r["service_name"].as_str().expect("service").to_owned())
                .or_default();
            x.requests += 1.0;
            if !r["ttft_s"].is_null() {
                x.ttfc += 1.0;
            }
            if !r["duration_s"].is_null() {
                x.durations += 1.0;
            }
            match r["usage"].as_object() {
                None => x.missing += 1.0,
                Some(u) => {
                    for b in [
                        "input_uncached",
                        "cache_read",
                        "cache_write",
                        "cache_write_1h",
                        "output",
                        "reasoning",
                    ] {
                        *x.buckets.entry(b).or_default() += u[b].as_f64().expect("count");
                    }
                }
            }
        }
    }
    assert!(files >= 10);
    assert!(expect.len() >= 10, "fixtures cover many services: {:?}", expect.keys());

    let m = scrape(running.metrics_addr).await;
    for (service, x) in &expect {
        let svc = ("service_name", service.as_str());
        for (bucket, n) in &x.buckets {
            assert_eq!(
                sum(&m, "llmhub_tokens_total", &[svc, ("llmhub_token_bucket", bucket)]),
                *n,
                "{service} {bucket}"
            );
        }
        assert_eq!(
            sum(&m, "llmhub_requests_total", &[svc]),
            x.requests,
            "{service} requests"
        );
        assert_eq!(
            sum(&m, "llmhub_usage_missing_total", &[svc]),
            x.missing,
            "{service} missing usage"
        );
        assert_eq!(
            sum(&m, "gen_ai_client_operation_time_to_first_chunk_seconds_count", &[svc]),
            x.ttfc,
            "{service} TTFT observations"
        );
        let model_durations = sum(&m, "gen_ai_client_operation_duration_seconds_count", &[svc])
            - sum(
                &m,
                "gen_ai_client_operation_duration_seconds_count",
                &[svc, ("gen_ai_operation_name", "invoke_agent")],
            )
            - sum(
                &m,
                "gen_ai_client_operation_duration_seconds_count",
                &[svc, ("gen_ai_operation_name", "execute_tool")],
            );
        assert_eq!(model_durations, x.durations, "{service} durations");
    }
    assert_eq!(
        sum(&m, "llmhub_calls_duplicate_total", &[]),
        0.0,
        "no fixture repeats a call"
    );
    running.stop().await.expect("stop");
}

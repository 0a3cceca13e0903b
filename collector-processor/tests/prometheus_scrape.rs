//! A real Prometheus server scrapes llmhub and answers PromQL over what it scraped: the exposition
//! format, names, labels and bucket layout work for the consumer that matters.
//!
//! Needs the `prometheus` binary (Debian package `prometheus`, installed by `scripts/test.sh`), or
//! `PROMETHEUS_BIN`. Run with `cargo test -- --include-ignored`.

mod common;

use common::prometheus::{self, scalar};
use common::{chat, loopback_config, request, start};
use prost::Message;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Prometheus server binary; scripts/test.sh installs it and runs ignored tests"]
async fn real_prometheus_scrapes_and_queries_llmhub_metrics() {
    let running = start(&loopback_config()).await;
    let http = running.http_addr.expect("http");

    // 3 calls: 100+200+300 input, 10+20+30 output, each 500 ms.
    let body = request(
        "prom-e2e",
        vec![
            chat(1, "gpt-4o", 100, 10),
            chat(2, "gpt-4o", 200, 20),
            chat(3, "gpt-4o", 300, 30),
        ],
    );
    let resp = reqwest::Client::new()
        .post(format!("http://{http}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(body.encode_to_vec())
        .send()
        .await
        .expect("export");
    assert_eq!(resp.status().as_u16(), 200);

    let prom = prometheus::start(running.metrics_addr, "scrape");

    let deadline = Instant::now() + Duration::from_secs(60);
    let tokens_q = r#"sum(llmhub_tokens_total{service_name="prom-e2e",llmhub_token_bucket="input_uncached"})"#;
    loop {
        if scalar(&prom.query(tokens_q).await) == Some(600.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never returned the scraped token sum"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let up = prom.query(r#"up{job="llmhub"}"#).await;
    assert_eq!(scalar(&up), Some(1.0), "{up}");
    let out = prom
        .query(r#"sum(gen_ai_client_token_usage_sum{service_name="prom-e2e",gen_ai_token_type="output"})"#)
        .await;
    assert_eq!(scalar(&out), Some(60.0), "{out}");
    let calls = prom
        .query(r#"sum(llmhub_requests_total{service_name="prom-e2e"})"#)
        .await;
    assert_eq!(scalar(&calls), Some(3.0), "{calls}");
    // All three took 0.5 s: the median from the buckets lies in (0.32, 0.64].
    let p50 = prom.query(
        r#"histogram_quantile(0.5, sum by (le) (gen_ai_client_operation_duration_seconds_bucket{service_name="prom-e2e"}))"#,
    )
    .await;
    let p50 = scalar(&p50).expect("p50");
    assert!(p50 > 0.32 && p50 <= 0.64, "p50 {p50}");
    running.stop().await.expect("stop");
}

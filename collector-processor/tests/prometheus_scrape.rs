//! A real Prometheus server scrapes llmhub and answers PromQL over what it scraped: the exposition
//! format, names, labels and bucket layout work for the consumer that matters.
//!
//! Needs the `prometheus` binary (Debian package `prometheus`, installed by `scripts/test.sh`), or
//! `PROMETHEUS_BIN`. Run with `cargo test -- --include-ignored`.

mod common;

use common::{chat, loopback_config, request, start};
use prost::Message;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn query(prom: &str, q: &str) -> serde_json::Value {
    let url = format!("http://{prom}/api/v1/query");
    match reqwest::Client::new().get(url).query(&[("query", q)]).send().await {
        Ok(r) => r.json().await.unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::Null,
    }
}

fn scalar(v: &serde_json::Value) -> Option<f64> {
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Prometheus server binary; scripts/test.sh installs it and runs ignored tests"]
async fn real_prometheus_scrapes_and_queries_llmhub_metrics() {
    let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".to_owned());
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

    let dir = std::env::temp_dir().join(format!("llmhub-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: llmhub\n    static_configs:\n      - targets: ['{}']\n",
            running.metrics_addr
        ),
    )
    .expect("config");
    let port = free_port();
    let prom = format!("127.0.0.1:{port}");
    let child = Command::new(&bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={prom}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {bin}: {e}; install Debian's prometheus package or set PROMETHEUS_BIN")
        });
    let _guard = KillOnDrop(child);

    let deadline = Instant::now() + Duration::from_secs(60);
    let tokens_q = r#"sum(llmhub_tokens_total{service_name="prom-e2e",llmhub_token_bucket="input_uncached"})"#;
    loop {
        if scalar(&query(&prom, tokens_q).await) == Some(600.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never returned the scraped token sum"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let up = query(&prom, r#"up{job="llmhub"}"#).await;
    assert_eq!(scalar(&up), Some(1.0), "{up}");
    let out = query(
        &prom,
        r#"sum(gen_ai_client_token_usage_sum{service_name="prom-e2e",gen_ai_token_type="output"})"#,
    )
    .await;
    assert_eq!(scalar(&out), Some(60.0), "{out}");
    let calls = query(&prom, r#"sum(llmhub_requests_total{service_name="prom-e2e"})"#).await;
    assert_eq!(scalar(&calls), Some(3.0), "{calls}");
    // All three took 0.5 s: the median from the buckets lies in (0.32, 0.64].
    let p50 = query(
        &prom,
        r#"histogram_quantile(0.5, sum by (le) (gen_ai_client_operation_duration_seconds_bucket{service_name="prom-e2e"}))"#,
    )
    .await;
    let p50 = scalar(&p50).expect("p50");
    assert!(p50 > 0.32 && p50 <= 0.64, "p50 {p50}");
    running.stop().await.expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
}

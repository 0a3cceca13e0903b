//! Coding agents' own telemetry, from the real tools: Claude Code (npm
//! `@anthropic-ai/claude-code`, pinned in `real-clients/coding-agents/`) runs `claude -p` against
//! the fake Anthropic Messages API (`real-clients/fake_provider.py`, which writes down every
//! request's usage) and exports its OTLP logs and metrics straight to llmhub, as its
//! documentation says (`CLAUDE_CODE_ENABLE_TELEMETRY=1` and the standard `OTEL_*` variables),
//! once over OTLP/HTTP JSON and once over OTLP/HTTP protobuf.
//!
//! Each model request the fake answered must become exactly one row of `llm_calls` with the
//! fake's token counts in the six buckets, the `claude_code` dialect, the session as the
//! conversation, the tenant from `OTEL_RESOURCE_ATTRIBUTES`, and the catalog's exact cost, which
//! must equal both the published per-token prices applied here and the cost Claude Code itself
//! reports (kept beside it as `sdk_reported_cost_usd`). Its other events are accepted and counted,
//! never rejected.
//!
//! Needs PostgreSQL 15 (`scripts/servers.sh`) and Claude Code (`python3 real-clients/run.py
//! --install-only`, which scripts/test.sh runs; `LLMHUB_CLAUDE` names another binary). Run with
//! `cargo test -- --include-ignored`.

mod common;

use common::pg::{self, sink_config, tmpdir, with_sink, Server};
use common::{scrape, start, sum};
use rust_decimal::Decimal;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `claude` binary: `LLMHUB_CLAUDE`, else the one `real-clients/coding-agents/install.sh` puts
/// in `target/`.
fn claude() -> PathBuf {
    if let Some(p) = std::env::var_os("LLMHUB_CLAUDE") {
        return p.into();
    }
    let p = repo().join("target/real-clients/coding-agents/node_modules/.bin/claude");
    assert!(
        p.exists(),
        "no {}: run `python3 real-clients/run.py --install-only`",
        p.display()
    );
    p
}

/// The fake provider, killed when dropped.
struct Fake {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Fake {
    fn start(dir: &std::path::Path) -> Fake {
        let log = dir.join("fake.jsonl");
        let mut child = Command::new("python3")
            .arg(repo().join("real-clients/fake_provider.py"))
            .arg("0")
            .env("FAKE_PROVIDER_LOG", &log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 real-clients/fake_provider.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("PORT line");
        let port = line
            .trim()
            .strip_prefix("PORT=")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("fake provider said {line:?}"));
        Fake { child, port, log }
    }

    /// The requests it answered for `client`: (model, input uncached, cache read, cache write,
    /// output), in order.
    fn answered(&self, client: &str) -> Vec<(String, i64, i64, i64, i64)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("ground-truth line"))
            .filter(|v| v["client"] == client)
            .map(|v| {
                assert_eq!(v["status"], 200, "{v}");
                let u = &v["usage"];
                let n = |k: &str| u[k].as_i64().expect("count");
                (
                    v["model"].as_str().expect("model").to_owned(),
                    n("input_uncached"),
                    n("cache_read"),
                    n("cache_write"),
                    n("output"),
                )
            })
            .collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `claude -p` once, its telemetry going to `otlp` over `protocol`, its model requests to
/// the fake tagged `client`.
fn run_claude(fake: &Fake, client: &str, otlp: &str, protocol: &str, home: &std::path::Path) {
    std::fs::create_dir_all(home).expect("home");
    let out = Command::new(claude())
        .args(["-p", "say hi", "--model", "claude-sonnet-4-5"])
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TERM", "xterm-256color")
        .env(
            "ANTHROPIC_BASE_URL",
            format!("http://127.0.0.1:{}/x/client={client}", fake.port),
        )
        .env("ANTHROPIC_API_KEY", "sk-ant-fake-key")
        .env("CLAUDE_CODE_ENABLE_TELEMETRY", "1")
        .env("OTEL_LOGS_EXPORTER", "otlp")
        .env("OTEL_METRICS_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        .env("OTEL_LOGS_EXPORT_INTERVAL", "1000")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
        .env("OTEL_RESOURCE_ATTRIBUTES", format!("tenant.id=team-{client}"))
        .output()
        .expect("claude runs");
    assert!(
        out.status.success(),
        "claude -p failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Claude Sonnet 4.5's published prices per million tokens (input, cache read, 5-minute cache
/// write, output), applied to one request.
fn published_cost(input: i64, read: i64, write: i64, output: i64) -> Decimal {
    let per_million = |n: i64, price: &str| Decimal::from(n) * price.parse::<Decimal>().expect("price");
    (per_million(input, "3.00") + per_million(read, "0.30") + per_million(write, "3.75") + per_million(output, "15.00"))
        / Decimal::from(1_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 and Claude Code (scripts/test.sh)"]
async fn claude_code_requests_become_exactly_priced_model_calls() {
    let url = Server::Pg15.url();
    let db = pg::connect(&url).await;
    let schema = pg::fresh_schema(&db, "coding_agents").await;
    let running = start(&with_sink(sink_config(&url, &schema))).await;
    let otlp = format!("http://{}", running.http_addr.expect("http"));
    let dir = tmpdir("coding-agents");
    let fake = Fake::start(&dir);

    let runs = [("cc-json", "http/json"), ("cc-protobuf", "http/protobuf")];
    for (client, protocol) in runs {
        run_claude(&fake, client, &otlp, protocol, &dir.join(client));
    }
    let truth: Vec<_> = runs.iter().map(|(client, _)| fake.answered(client)).collect();
    let total: usize = truth.iter().map(Vec::len).sum();
    assert!(
        truth.iter().all(|t| !t.is_empty()),
        "every run made a model request: {truth:?}"
    );
    assert_eq!(
        pg::wait_for_rows(&db, &schema, total as i64, Duration::from_secs(30)).await,
        total as i64
    );

    for ((client, protocol), want) in runs.iter().zip(&truth) {
        let rows = db
            .query(
                &format!(
                    "SELECT dialect, service_name, provider, request_model, conversation_id,
                            input_uncached_tokens, cache_read_tokens, cache_write_tokens,
                            cache_write_1h_tokens, output_tokens, reasoning_tokens,
                            price_status, cost_usd, sdk_reported_cost_usd, role, status
                       FROM {schema}.llm_calls WHERE tenant = $1 ORDER BY time, end_time"
                ),
                &[&format!("team-{client}")],
            )
            .await
            .expect("rows");
        assert_eq!(rows.len(), want.len(), "{protocol}: one row per model request");
        let mut sessions = std::collections::BTreeSet::new();
        let mut got_tokens = Vec::new();
        for r in &rows {
            assert_eq!(r.get::<_, String>("dialect"), "claude_code");
            assert_eq!(r.get::<_, String>("service_name"), "claude-code");
            assert_eq!(r.get::<_, Option<String>>("provider").as_deref(), Some("anthropic"));
            assert_eq!(r.get::<_, String>("role"), "model_call");
            assert_eq!(r.get::<_, String>("status"), "unset");
            assert_eq!(r.get::<_, String>("price_status"), "priced");
            assert_eq!(r.get::<_, Option<i64>>("reasoning_tokens"), Some(0));
            assert_eq!(r.get::<_, Option<i64>>("cache_write_1h_tokens"), Some(0));
            sessions.insert(r.get::<_, Option<String>>("conversation_id").expect("session id"));
            let t = |c: &str| r.get::<_, Option<i64>>(c).expect(c);
            let (input, read, write, output) = (
                t("input_uncached_tokens"),
                t("cache_read_tokens"),
                t("cache_write_tokens"),
                t("output_tokens"),
            );
            got_tokens.push((
                r.get::<_, Option<String>>("request_model").expect("model"),
                input,
                read,
                write,
                output,
            ));
            // The catalog's exact cost is the published prices' and Claude Code's own.
            let cost: Decimal = r.get::<_, Option<Decimal>>("cost_usd").expect("cost");
            assert_eq!(cost, published_cost(input, read, write, output));
            let reported = r
                .get::<_, Option<f64>>("sdk_reported_cost_usd")
                .expect("Claude Code's cost");
            let cost_f: f64 = cost.to_string().parse().expect("decimal");
            assert!(
                (reported - cost_f).abs() < 1e-12,
                "Claude Code says {reported}, llmhub {cost}"
            );
        }
        // Compared as multisets: two requests of one prompt may end in the same millisecond.
        let mut want = want.clone();
        want.sort();
        got_tokens.sort();
        assert_eq!(got_tokens, want, "{protocol}: the fake's usage, request by request");
        assert_eq!(sessions.len(), 1, "{protocol}: one session: {sessions:?}");
    }

    // Every api_request event was read; the other events were accepted and counted.
    let m = scrape(running.metrics_addr).await;
    for ((_, protocol), want) in runs.iter().zip(&truth) {
        let transport = if *protocol == "http/json" {
            "http_json"
        } else {
            "http_protobuf"
        };
        let by = |outcome| {
            sum(
                &m,
                "llmhub_receiver_log_records_total",
                &[("llmhub_transport", transport), ("llmhub_outcome", outcome)],
            )
        };
        assert_eq!(by("read"), want.len() as f64, "{protocol}");
        assert!(
            by("not_genai") >= 3.0,
            "{protocol}: startup and prompt events: {}",
            by("not_genai")
        );
        assert_eq!(by("invalid"), 0.0, "{protocol}");
    }
    running.stop().await.expect("stop");
    db.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("cleanup");
}

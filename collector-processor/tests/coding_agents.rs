//! Coding agents' own telemetry, from the real tools (npm, pinned in
//! `real-clients/coding-agents/`), each run non-interactively against the fake provider
//! (`real-clients/fake_provider.py`, which writes down every request's usage) and exporting its
//! OTLP logs straight to llmhub with its documented settings:
//!
//! - Claude Code (`claude -p`, `CLAUDE_CODE_ENABLE_TELEMETRY=1` and the `OTEL_*` variables) over
//!   OTLP/HTTP JSON and OTLP/HTTP protobuf, against the Anthropic Messages API;
//! - Gemini CLI (`gemini -p`, `telemetry` in `~/.gemini/settings.json`) over OTLP/gRPC, against
//!   the Gemini API;
//! - Codex CLI (`codex exec`, `[otel]` in `config.toml`) over OTLP/HTTP protobuf, against the
//!   Responses API.
//!
//! Each model request the fake answered must become exactly one row of `llm_calls` with the
//! fake's token counts in the six buckets, the tool's dialect, and the catalog's exact cost, equal
//! to the published per-token prices applied here (and, for Claude Code, to the cost it reports
//! itself, kept beside it as `sdk_reported_cost_usd`). The tools' other events are accepted and
//! counted, never rejected.
//!
//! Needs PostgreSQL 15 (`scripts/servers.sh`) and the CLIs (`python3 real-clients/run.py
//! --install-only`, which scripts/test.sh runs). Run with `cargo test -- --include-ignored`.

mod common;

use common::pg::{self, sink_config, tmpdir, with_sink, Server};
use common::{scrape, start, sum};
use rust_decimal::Decimal;
use std::io::Write as _;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// llmhub writing into a fresh schema of PostgreSQL 15, and a fake provider in a fresh directory.
struct Harness {
    db: tokio_postgres::Client,
    schema: String,
    running: llmhub::service::Running,
    dir: PathBuf,
    fake: Fake,
}

impl Harness {
    async fn start(name: &str) -> Harness {
        let url = Server::Pg15.url();
        let db = pg::connect(&url).await;
        let schema = pg::fresh_schema(&db, name).await;
        let running = start(&with_sink(sink_config(&url, &schema))).await;
        let dir = tmpdir(name);
        let fake = Fake::start(&dir);
        Harness {
            db,
            schema,
            running,
            dir,
            fake,
        }
    }

    async fn stop(self) {
        self.running.stop().await.expect("stop");
        self.db
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await
            .expect("cleanup");
    }
}

/// A coding agent's binary, as `real-clients/coding-agents/install.sh` puts it in `target/`.
fn cli(name: &str) -> PathBuf {
    let p = repo()
        .join("target/real-clients/coding-agents/node_modules/.bin")
        .join(name);
    assert!(
        p.exists(),
        "no {}: run `python3 real-clients/run.py --install-only`",
        p.display()
    );
    p
}

/// (model, input uncached, cache read, cache write, output, reasoning) of one call.
type Tokens = (String, i64, i64, i64, i64, i64);

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
    /// output, reasoning), in order. The fake's `output` counts every output token; the record's
    /// output bucket holds those that are not reasoning.
    fn answered(&self, client: &str) -> Vec<Tokens> {
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
                    n("output") - n("reasoning"),
                    n("reasoning"),
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
    let out = Command::new(cli("claude"))
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

/// Published prices per million tokens (input, cache read, 5-minute cache write, output), as the
/// providers' price pages list them.
struct Prices {
    input: &'static str,
    cache_read: &'static str,
    cache_write: &'static str,
    output: &'static str,
}

/// Claude Sonnet 4.5 (docs.anthropic.com pricing).
const SONNET_4_5: Prices = Prices {
    input: "3.00",
    cache_read: "0.30",
    cache_write: "3.75",
    output: "15.00",
};
/// Gemini 2.5 Flash (ai.google.dev pricing; thinking tokens are output).
const GEMINI_2_5_FLASH: Prices = Prices {
    input: "0.30",
    cache_read: "0.03",
    cache_write: "0",
    output: "2.50",
};
/// GPT-4o mini (platform.openai.com pricing).
const GPT_4O_MINI: Prices = Prices {
    input: "0.15",
    cache_read: "0.075",
    cache_write: "0",
    output: "0.60",
};

impl Prices {
    /// The cost of one call's tokens (reasoning billed as output).
    fn cost(&self, t: &Tokens) -> Decimal {
        let at = |n: i64, price: &str| Decimal::from(n) * price.parse::<Decimal>().expect("price");
        (at(t.1, self.input) + at(t.2, self.cache_read) + at(t.3, self.cache_write) + at(t.4 + t.5, self.output))
            / Decimal::from(1_000_000)
    }
}

/// What a tool's rows must be.
struct Expect<'a> {
    what: &'a str,
    dialect: &'a str,
    service: &'a str,
    provider: &'a str,
    prices: &'a Prices,
    /// The tool reports a cost of its own, which must equal the catalog's.
    reports_cost: bool,
}

/// Checks the rows of `schema.llm_calls` matching `filter` (a SQL condition) against the fake's
/// `want`; returns the distinct conversation ids.
async fn check_rows(
    db: &tokio_postgres::Client,
    schema: &str,
    filter: &str,
    want: &[Tokens],
    e: &Expect<'_>,
) -> std::collections::BTreeSet<Option<String>> {
    let rows = db
        .query(
            &format!(
                "SELECT dialect, service_name, provider, request_model, conversation_id,
                        input_uncached_tokens, cache_read_tokens, cache_write_tokens,
                        cache_write_1h_tokens, output_tokens, reasoning_tokens,
                        price_status, cost_usd, sdk_reported_cost_usd, role, status
                   FROM {schema}.llm_calls WHERE {filter} ORDER BY time, end_time"
            ),
            &[],
        )
        .await
        .expect("rows");
    let what = e.what;
    assert_eq!(rows.len(), want.len(), "{what}: one row per model request");
    let mut sessions = std::collections::BTreeSet::new();
    let mut got = Vec::new();
    for r in &rows {
        assert_eq!(r.get::<_, String>("dialect"), e.dialect, "{what}");
        assert_eq!(r.get::<_, String>("service_name"), e.service, "{what}");
        assert_eq!(
            r.get::<_, Option<String>>("provider").as_deref(),
            Some(e.provider),
            "{what}"
        );
        assert_eq!(r.get::<_, String>("role"), "model_call", "{what}");
        assert_eq!(r.get::<_, String>("status"), "unset", "{what}");
        assert_eq!(r.get::<_, String>("price_status"), "priced", "{what}");
        assert_eq!(r.get::<_, Option<i64>>("cache_write_1h_tokens"), Some(0), "{what}");
        sessions.insert(r.get::<_, Option<String>>("conversation_id"));
        let t = |c: &str| r.get::<_, Option<i64>>(c).expect(c);
        let tokens: Tokens = (
            r.get::<_, Option<String>>("request_model").expect("model"),
            t("input_uncached_tokens"),
            t("cache_read_tokens"),
            t("cache_write_tokens"),
            t("output_tokens"),
            t("reasoning_tokens"),
        );
        // The catalog's exact cost is the published prices'.
        let cost: Decimal = r.get::<_, Option<Decimal>>("cost_usd").expect("cost");
        assert_eq!(cost, e.prices.cost(&tokens), "{what}: {tokens:?}");
        let reported = r.get::<_, Option<f64>>("sdk_reported_cost_usd");
        if e.reports_cost {
            // ... and the tool's own.
            let reported = reported.expect("the tool's cost");
            let cost_f: f64 = cost.to_string().parse().expect("decimal");
            assert!(
                (reported - cost_f).abs() < 1e-12,
                "{what}: the tool says {reported}, llmhub {cost}"
            );
        } else {
            assert_eq!(reported, None, "{what}");
        }
        got.push(tokens);
    }
    // Compared as multisets: two requests of one prompt may end in the same millisecond.
    let mut want = want.to_vec();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{what}: the fake's usage, request by request");
    sessions
}

/// Polls until `schema.llm_calls` holds `want` model calls (or 30 s pass); returns the count.
async fn wait_for_calls(db: &tokio_postgres::Client, schema: &str, want: usize) -> usize {
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = db
            .query_one(
                &format!("SELECT count(*) FROM {schema}.llm_calls WHERE role = 'model_call'"),
                &[],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(-1);
        if n >= want as i64 || std::time::Instant::now() > until {
            return n as usize;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts how the log records of `transport` were counted: `read` of them read, none invalid,
/// at least `other` accepted and not read.
fn assert_log_records(m: &[common::Sample], transport: &str, read: usize, other: f64) {
    let by = |outcome| {
        sum(
            m,
            "llmhub_receiver_log_records_total",
            &[("llmhub_transport", transport), ("llmhub_outcome", outcome)],
        )
    };
    assert_eq!(by("read"), read as f64, "{transport}");
    assert!(by("not_genai") >= other, "{transport}: {}", by("not_genai"));
    assert_eq!(by("invalid"), 0.0, "{transport}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 and Claude Code (scripts/test.sh)"]
async fn claude_code_requests_become_exactly_priced_model_calls() {
    let h = Harness::start("coding_agents_claude").await;
    let (db, schema, fake, dir) = (&h.db, &h.schema, &h.fake, &h.dir);
    let otlp = format!("http://{}", h.running.http_addr.expect("http"));

    let runs = [("cc-json", "http/json"), ("cc-protobuf", "http/protobuf")];
    for (client, protocol) in runs {
        run_claude(fake, client, &otlp, protocol, &dir.join(client));
    }
    let truth: Vec<_> = runs.iter().map(|(client, _)| fake.answered(client)).collect();
    let total: usize = truth.iter().map(Vec::len).sum();
    assert!(
        truth.iter().all(|t| !t.is_empty()),
        "every run made a model request: {truth:?}"
    );
    assert_eq!(
        pg::wait_for_rows(db, schema, total as i64, Duration::from_secs(30)).await,
        total as i64
    );

    let claude = Expect {
        what: "claude code",
        dialect: "claude_code",
        service: "claude-code",
        provider: "anthropic",
        prices: &SONNET_4_5,
        reports_cost: true,
    };
    for ((client, protocol), want) in runs.iter().zip(&truth) {
        let e = Expect {
            what: protocol,
            ..claude
        };
        let sessions = check_rows(db, schema, &format!("tenant = 'team-{client}'"), want, &e).await;
        assert_eq!(sessions.len(), 1, "{protocol}: one session: {sessions:?}");
        assert!(
            sessions.iter().all(Option::is_some),
            "{protocol}: the session is the conversation"
        );
    }

    // Every api_request event was read; the other events were accepted and counted.
    let m = scrape(h.running.metrics_addr).await;
    for ((_, protocol), want) in runs.iter().zip(&truth) {
        let transport = if *protocol == "http/json" {
            "http_json"
        } else {
            "http_protobuf"
        };
        assert_log_records(&m, transport, want.len(), 3.0);
    }
    h.stop().await;
}

/// Runs `program args` in `home` (its `HOME`) with only `PATH`, `TERM` and `env` set; it must
/// succeed.
fn run_tool(program: &str, args: &[&str], home: &std::path::Path, env: &[(&str, String)]) {
    let mut cmd = Command::new(cli(program));
    cmd.args(args)
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the tool runs");
    assert!(
        out.status.success(),
        "{program} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(path: &std::path::Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 and Gemini CLI (scripts/test.sh)"]
async fn gemini_cli_calls_over_grpc_become_exactly_priced_model_calls() {
    let h = Harness::start("coding_agents_gemini").await;
    let (db, schema, fake) = (&h.db, &h.schema, &h.fake);
    let home = h.dir.join("home");
    // Gemini CLI's documented telemetry settings, gRPC to llmhub's OTLP/gRPC port.
    let settings = serde_json::json!({
        "security": { "auth": { "selectedType": "gemini-api-key" } },
        "privacy": { "usageStatisticsEnabled": false },
        "telemetry": {
            "enabled": true,
            "target": "local",
            "otlpEndpoint": format!("http://{}", h.running.grpc_addr.expect("grpc")),
            "otlpProtocol": "grpc",
            "logPrompts": false
        }
    });
    write(&home.join(".gemini/settings.json"), &settings.to_string());
    run_tool(
        "gemini",
        &["--skip-trust", "-m", "gemini-2.5-flash", "-p", "say hi"],
        &home,
        &[
            ("GEMINI_API_KEY", "fake-gemini-key".to_owned()),
            ("GOOGLE_GEMINI_BASE_URL", format!("http://127.0.0.1:{}", fake.port)),
        ],
    );
    let want = fake.answered("");
    assert!(!want.is_empty(), "Gemini CLI made a model request");
    assert_eq!(wait_for_calls(db, schema, want.len()).await, want.len());
    let e = Expect {
        what: "gemini cli",
        dialect: "gemini_cli",
        service: "gemini-cli",
        provider: "gcp.gemini",
        prices: &GEMINI_2_5_FLASH,
        reports_cost: false,
    };
    let sessions = check_rows(db, schema, "role = 'model_call'", &want, &e).await;
    assert_eq!(sessions.len(), 1, "one session: {sessions:?}");
    // Gemini CLI also exports an `llm_call` span per call (traces are on whatever `telemetry.traces`
    // says): a workflow step, its usage (present with `traces: true`) never counted again.
    let spans: Vec<(String, String, bool)> = db
        .query(
            &format!("SELECT role, operation, counts_usage FROM {schema}.llm_calls WHERE role <> 'model_call'"),
            &[],
        )
        .await
        .expect("other rows")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(
        spans
            .iter()
            .all(|s| *s == ("workflow".to_owned(), "llm_call".to_owned(), false)),
        "{spans:?}"
    );
    let m = scrape(h.running.metrics_addr).await;
    assert_log_records(&m, "grpc", want.len(), 3.0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 and Codex CLI (scripts/test.sh)"]
async fn codex_cli_calls_become_exactly_priced_model_calls() {
    let h = Harness::start("coding_agents_codex").await;
    let (db, schema, fake) = (&h.db, &h.schema, &h.fake);
    let http = h.running.http_addr.expect("http");
    let home = h.dir.join("home");
    // Codex's documented [otel] settings; it posts to the endpoint exactly as written.
    let config = format!(
        r#"model = "gpt-4o-mini"
model_provider = "fake"

[model_providers.fake]
name = "Fake"
base_url = "http://127.0.0.1:{port}/x/client=codex/v1"
env_key = "FAKE_OPENAI_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[otel]
environment = "test"
exporter = {{ otlp-http = {{ endpoint = "http://{http}/v1/logs", protocol = "binary" }} }}
trace_exporter = "none"
metrics_exporter = "none"
"#,
        port = fake.port
    );
    write(&home.join("codex/config.toml"), &config);
    run_tool(
        "codex",
        &["exec", "--skip-git-repo-check", "say hi"],
        &home,
        &[
            ("CODEX_HOME", home.join("codex").display().to_string()),
            ("FAKE_OPENAI_API_KEY", "sk-fake".to_owned()),
        ],
    );
    let want = fake.answered("codex");
    assert!(!want.is_empty(), "Codex made a model request");
    assert_eq!(wait_for_calls(db, schema, want.len()).await, want.len());
    let e = Expect {
        what: "codex",
        dialect: "codex",
        service: "codex_exec",
        provider: "openai",
        prices: &GPT_4O_MINI,
        reports_cost: false,
    };
    let sessions = check_rows(db, schema, "role = 'model_call'", &want, &e).await;
    assert_eq!(sessions.len(), 1, "one conversation: {sessions:?}");
    let m = scrape(h.running.metrics_addr).await;
    assert_log_records(&m, "http_protobuf", want.len(), 3.0);
    h.stop().await;
}

//! Real, unmodified GenAI instrumentation packages from PyPI and npm (`real-clients/`: the OpenAI
//! and Anthropic SDKs with the official OpenTelemetry, OpenLLMetry, OpenInference and OpenLIT
//! instrumentations, the Anthropic SDK's own spans, pydantic-ai, LangChain, LiteLLM, the Vercel AI
//! SDK 6 and 7), each in its own locked environment, calling a fake provider on loopback that
//! answers like the real APIs (usage with cache reads and writes and reasoning, streams with usage
//! in the last chunk, tool calls, errors) and writes down what it answered: the ground truth.
//!
//! Every client's spans go to llmhub (OTLP/HTTP, with the PostgreSQL sink), and for each client:
//! model calls, errors and tokens in all six buckets through `/metrics`, and every stored call's
//! buckets and exact cost through the database, equal the ground truth — priced here straight from
//! `prices/catalog.yaml`, not through llmhub's pricing code. Where an instrumentation does not
//! report a bucket at all (`LOSSES`), the expectation is what it reports: its tokens in the
//! bucket that contains them, priced as such.
//!
//! `#[ignore]`d for a bare `cargo test` (needs Python, Node.js and the package registries); the
//! README's test command runs it. `scripts/real-clients.sh --latest` runs the same clients on the
//! newest releases.

mod common;

use common::pg::{self, sink_config, with_sink, Server};
use common::{scrape, start, sum, Sample};
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Tokens in llmhub's disjoint buckets (output excludes reasoning).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Buckets {
    input_uncached: i64,
    cache_read: i64,
    cache_write: i64,
    output: i64,
    reasoning: i64,
}

/// One provider request the fake answered.
#[derive(Debug, Clone)]
struct Truth {
    client: String,
    api: String,
    model: String,
    ok: bool,
    expect_span: bool,
    usage: Buckets,
}

/// What an instrumentation does not report, found by reading its spans (real-clients/README.md,
/// observations): (client, API or `*`, what it folds).
const LOSSES: &[(&str, &str, Loss)] = &[
    // opentelemetry-instrumentation-openai-v2 2.4b0: only input (with cached) and output (with
    // reasoning) for chat and embeddings.
    ("openai_v2", "*", Loss::CacheReadAndReasoning),
    // openlit 1.45.0 reports reasoning tokens for the Responses API only.
    ("openlit_openai", "openai.chat", Loss::Reasoning),
    // AI SDK 7's GenAI spans carry no reasoning-token attribute.
    ("vercel_ai_v7", "*", Loss::Reasoning),
];

#[derive(Debug, Clone, Copy)]
enum Loss {
    /// Reasoning reported inside output only.
    Reasoning,
    /// And cache reads inside input only.
    CacheReadAndReasoning,
}

impl Truth {
    /// The buckets llmhub can know: the truth, less what the instrumentation does not report.
    fn reported(&self) -> Buckets {
        let mut b = self.usage;
        let loss = LOSSES
            .iter()
            .find(|(c, api, _)| *c == self.client && (*api == "*" || *api == self.api))
            .map(|l| l.2);
        if let Some(Loss::Reasoning | Loss::CacheReadAndReasoning) = loss {
            b.output += b.reasoning;
            b.reasoning = 0;
        }
        if let Some(Loss::CacheReadAndReasoning) = loss {
            b.input_uncached += b.cache_read;
            b.cache_read = 0;
        }
        b
    }
}

fn read_truth(path: &Path) -> Vec<Truth> {
    std::fs::read_to_string(path)
        .expect("ground truth")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            let n = |k: &str| v["usage"][k].as_i64().expect("a count");
            Truth {
                client: v["client"].as_str().expect("client").to_owned(),
                api: v["api"].as_str().expect("api").to_owned(),
                model: v["model"].as_str().expect("model").to_owned(),
                ok: v["status"] == 200,
                expect_span: v["expect_span"].as_bool().unwrap_or(true),
                usage: Buckets {
                    input_uncached: n("input_uncached"),
                    cache_read: n("cache_read"),
                    cache_write: n("cache_write"),
                    // The ground truth's output includes reasoning; llmhub's does not.
                    output: n("output") - n("reasoning"),
                    reasoning: n("reasoning"),
                },
            }
        })
        .collect()
}

/// Standard-tier prices per million tokens in force today, read from the catalog file.
#[derive(Debug, Clone, Copy, Default)]
struct Prices {
    input: Decimal,
    output: Decimal,
    cache_read: Option<Decimal>,
    cache_write_5m: Option<Decimal>,
}

fn catalog_prices(model: &str) -> Prices {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../prices/catalog.yaml");
    let cat: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("catalog")).expect("yaml");
    let today = chrono_free_today();
    let today = today.as_str();
    let entry = cat["models"]
        .as_sequence()
        .expect("models")
        .iter()
        .find(|m| {
            m["model"].as_str() == Some(model)
                || m["aliases"]
                    .as_sequence()
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(model)))
        })
        .unwrap_or_else(|| panic!("{model} is in prices/catalog.yaml"));
    let period = entry["prices"]
        .as_sequence()
        .expect("prices")
        .iter()
        .filter(|p| p["effective_from"].as_str().is_some_and(|f| f <= today))
        .filter(|p| p["effective_to"].as_str().is_none_or(|t| t > today))
        .max_by_key(|p| p["effective_from"].as_str().unwrap_or_default().to_owned())
        .expect("a price in force");
    assert_eq!(period["unit"].as_str(), Some("per_million_tokens"));
    let dec = |k: &str| period[k].as_str().map(|s| s.parse::<Decimal>().expect("decimal"));
    Prices {
        input: dec("input").expect("input price"),
        output: dec("output").expect("output price"),
        cache_read: dec("cache_read"),
        cache_write_5m: dec("cache_write_5m"),
    }
}

/// Today (UTC) as `YYYY-MM-DD`, without a date crate.
fn chrono_free_today() -> String {
    let days = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        / 86_400) as i64;
    let (y, m, d) = llmhub_core::timefmt::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The cost of one call's buckets: tokens × price per million, reasoning at the output price;
/// cache tokens at the input price when the model has no cache price.
fn cost(p: &Prices, b: &Buckets) -> Decimal {
    let m = Decimal::from(1_000_000);
    (Decimal::from(b.input_uncached) * p.input
        + Decimal::from(b.cache_read) * p.cache_read.unwrap_or(p.input)
        + Decimal::from(b.cache_write) * p.cache_write_5m.unwrap_or(p.input)
        + Decimal::from(b.output + b.reasoning) * p.output)
        / m
}

fn metric(m: &[Sample], name: &str, client: &str, extra: &[(&str, &str)]) -> f64 {
    let mut want = vec![("service_name", client)];
    want.extend_from_slice(extra);
    sum(m, name, &want)
}

fn run_clients(endpoint: &str, out: &Path, latest: bool) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../real-clients/run.py");
    let mut cmd = std::process::Command::new("python3");
    cmd.args([script, "--endpoint", endpoint, "--out", &out.display().to_string()]);
    if latest {
        cmd.arg("--latest");
    }
    let status = cmd.status().expect("python3 runs real-clients/run.py");
    assert!(
        status.success(),
        "real-clients/run.py failed ({status}): see {}/logs and run.json",
        out.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Python, Node.js, the package registries and PostgreSQL 15 (scripts/test.sh)"]
async fn real_clients_are_exact_in_tokens_and_cost() {
    let url = Server::Pg15.url();
    let admin = pg::connect(&url).await;
    let schema = pg::fresh_schema(&admin, "real_clients").await;
    let running = start(&with_sink(sink_config(&url, &schema))).await;
    let out: PathBuf = pg::tmpdir("real-clients");
    let latest = std::env::var_os("LLMHUB_REAL_CLIENTS_LATEST").is_some();
    run_clients(&format!("http://{}", running.http_addr.expect("http")), &out, latest);
    let truth: Vec<Truth> = read_truth(&out.join("ground_truth.jsonl"))
        .into_iter()
        .filter(|t| t.expect_span)
        .collect();
    let mut by_client: BTreeMap<String, Vec<Truth>> = BTreeMap::new();
    for t in truth {
        by_client.entry(t.client.clone()).or_default().push(t);
    }
    assert!(by_client.len() >= 14, "clients run: {:?}", by_client.keys());
    let calls: usize = by_client.values().map(Vec::len).sum();
    // Everything is written (llmhub acknowledged each export before the client exited).
    let rows_wanted = calls as i64;
    let count = format!("SELECT count(*) FROM {schema}.llm_calls WHERE role = 'model_call'");
    let until = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = admin
            .query_one(&count, &[])
            .await
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(-1);
        if n >= rows_wanted || std::time::Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let m = scrape(running.metrics_addr).await;
    let mut report = Vec::new();
    for (client, calls) in &by_client {
        let mut want = Buckets::default();
        let mut errors = 0i64;
        let mut want_calls: Vec<(Buckets, Option<Decimal>)> = Vec::new();
        let mut want_cost = Decimal::ZERO;
        for t in calls {
            if !t.ok {
                errors += 1;
                want_calls.push((Buckets::default(), None));
                continue;
            }
            let b = t.reported();
            want.input_uncached += b.input_uncached;
            want.cache_read += b.cache_read;
            want.cache_write += b.cache_write;
            want.output += b.output;
            want.reasoning += b.reasoning;
            let c = cost(&catalog_prices(&t.model), &b);
            want_cost += c;
            want_calls.push((b, Some(c.normalize())));
        }
        // Through /metrics.
        let got = |bucket: &str| metric(&m, "llmhub_tokens_total", client, &[("llmhub_token_bucket", bucket)]) as i64;
        let have = Buckets {
            input_uncached: got("input_uncached"),
            cache_read: got("cache_read"),
            cache_write: got("cache_write"),
            output: got("output"),
            reasoning: got("reasoning"),
        };
        let requests = metric(&m, "llmhub_requests_total", client, &[]) as i64;
        let errs = metric(&m, "llmhub_errors_total", client, &[]) as i64;
        let cost_metric = metric(&m, "llmhub_cost_usd_total", client, &[]);
        let want_cost_f = want_cost.to_string().parse::<f64>().expect("f64");
        // Through the database: each call's buckets and exact cost.
        let rows = admin
            .query(
                &format!(
                    "SELECT coalesce(input_uncached_tokens, 0), coalesce(cache_read_tokens, 0),
                            coalesce(cache_write_tokens, 0) + coalesce(cache_write_1h_tokens, 0),
                            coalesce(output_tokens, 0), coalesce(reasoning_tokens, 0), cost_usd
                       FROM {schema}.llm_calls WHERE service_name = $1 AND role = 'model_call'"
                ),
                &[client],
            )
            .await
            .expect("rows");
        let mut have_calls: Vec<(Buckets, Option<Decimal>)> = rows
            .iter()
            .map(|r| {
                (
                    Buckets {
                        input_uncached: r.get(0),
                        cache_read: r.get(1),
                        cache_write: r.get(2),
                        output: r.get(3),
                        reasoning: r.get(4),
                    },
                    r.get::<_, Option<Decimal>>(5).map(|d| d.normalize()),
                )
            })
            .collect();
        want_calls.sort();
        have_calls.sort();
        let exact = have == want
            && requests == calls.len() as i64
            && errs == errors
            && (cost_metric - want_cost_f).abs() <= 1e-9 * want_cost_f.max(1.0)
            && have_calls == want_calls;
        report.push(format!(
            "{client:32} {} calls {requests}/{} errors {errs}/{errors} tokens {:?} cost ${cost_metric:.6}/${want_cost_f:.6}{}",
            if exact { "exact" } else { "WRONG" },
            calls.len(),
            have,
            if have_calls == want_calls { "" } else { " (rows differ)" }
        ));
        if !exact {
            report.push(format!(
                "    want {want:?}\n    rows have {have_calls:?}\n    rows want {want_calls:?}"
            ));
        }
    }
    let text = report.join("\n");
    eprintln!("{text}");
    std::fs::write(out.join("report.txt"), &text).expect("report");
    assert!(!text.contains("WRONG"), "{text}");
    running.stop().await.expect("stop");
    let _ = admin.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
}

//! Do the anomaly panels flag the load generator's own incidents? Weeks of `llmhub loadgen`
//! traffic (every dialect, three tenants, its injected cost spike and latency regression) go
//! through llmhub into PostgreSQL; after `llm_refresh_rollups()` the two anomaly panels run as a
//! user would page through them, in 3-day ranges from the third week on, and their flagged hours
//! are scored against the generator's ground-truth file:
//! - recall: the share of incidents with at least one flagged hour inside them;
//! - precision: the share of flagged runs (maximal runs of consecutive flagged hours) that touch
//!   an incident that moves the series, or the day after it (its end is a change back, flagged
//!   as one); any other run is a false alarm.
//!
//! "Hourly spend against its baseline" is scored on the cost spikes (`support-bot`'s output ×10;
//! the error burst and the runaway loop also move spend), "p95 latency anomalies" on the latency
//! regressions (`search-rag`'s claude-sonnet-4-5 ×4; the cost spike also makes calls longer).
//!
//! ```sh
//! eval "$(scripts/servers.sh env)"   # PostgreSQL 15 with llm_analytics installed (scripts/test.sh)
//! cargo bench -p llmhub --bench detector_incidents            # 6 seeds, 6 weeks each
//! ```
//! Under `cargo test` it runs one seed over 16 days at a low rate, and checks only that it runs.

use llmhub::config::Config;
use llmhub_loadgen::scenario::PlanDialect;
use llmhub_loadgen::{run, LoadgenConfig, Progress, Transport};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

async fn connect(url: &str) -> Client {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    c
}

/// One panel's flags over the scored weeks: flagged hour starts (Unix seconds).
async fn flagged(c: &Client, file: &str, title: &str, from: u64, to: u64) -> BTreeSet<u64> {
    let all = llmhub_dashboards::all();
    let d = all.iter().find(|d| d.file == file).expect("dashboard");
    let p = d.panels.iter().find(|p| p.title == title).expect("panel");
    let mut hours = BTreeSet::new();
    let mut start = from;
    while start < to {
        let end = (start + 3 * DAY).min(to);
        let sql = llmhub_dashboards::expand_sql(&p.queries[0].expr, start, end).expect("expands");
        for r in c
            .query(sql.as_str(), &[])
            .await
            .unwrap_or_else(|e| panic!("{title}: {e}"))
        {
            let t: SystemTime = r.get(0);
            let anomaly: Option<f64> = r.get(4);
            if anomaly.is_some() {
                hours.insert(t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs());
            }
        }
        start = end;
    }
    hours
}

/// (incidents, detected, flagged runs, runs that touch an incident) for one panel: `incidents`
/// of its kind (recall), `moving` every incident that moves its series (precision), each with the
/// day after it (its end is a change back).
fn score(flags: &BTreeSet<u64>, incidents: &[(u64, u64)], moving: &[(u64, u64)]) -> (usize, usize, usize, usize) {
    let inside = |h: u64| moving.iter().any(|(s, e)| h + HOUR > *s && h < e + DAY);
    let detected = incidents
        .iter()
        .filter(|(s, e)| flags.iter().any(|h| h + HOUR > *s && h < e))
        .count();
    let mut runs: Vec<Vec<u64>> = Vec::new();
    for &h in flags {
        match runs.last_mut() {
            Some(run) if run.last() == Some(&(h - HOUR)) => run.push(h),
            _ => runs.push(vec![h]),
        }
    }
    let touching = runs.iter().filter(|r| r.iter().any(|h| inside(*h))).count();
    (incidents.len(), detected, runs.len(), touching)
}

/// One seed: (spend score, latency score).
async fn one_seed(base: &str, seed: u64, days: u64, rate: f64) -> [(usize, usize, usize, usize); 2] {
    let name = format!("llmhub_bench_detect_{seed}");
    let admin = connect(base).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create");
    let url = base.replace("/llmhub_test", &format!("/{name}"));
    let c = connect(&url).await;
    c.batch_execute("SET client_min_messages = warning; CREATE EXTENSION llm_analytics")
        .await
        .expect("extension");
    let mut cfg = Config::default();
    if let Some(g) = cfg.receivers.otlp.protocols.grpc.as_mut() {
        g.endpoint = "127.0.0.1:0".into();
    }
    if let Some(h) = cfg.receivers.otlp.protocols.http.as_mut() {
        h.endpoint = "127.0.0.1:0".into();
    }
    cfg.exporters.prometheus.endpoint = "127.0.0.1:0".into();
    cfg.exporters.postgres = Some(llmhub_exporters::postgres::PostgresConfig {
        url: Some(url.clone()),
        ..Default::default()
    });
    cfg.service.pipelines.traces.exporters = vec!["prometheus".into(), "postgres".into()];
    let running = llmhub::service::start(&cfg).await.expect("llmhub starts");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
    let end = now / HOUR * HOUR - HOUR;
    let start = end - days * DAY;
    let truth = std::env::temp_dir().join(format!("llmhub-detect-{seed}-{}.jsonl", std::process::id()));
    let sent = run(
        LoadgenConfig {
            endpoint: format!("http://{}", running.grpc_addr.expect("grpc")),
            transport: Transport::Grpc,
            seed,
            rate,
            duration: None,
            count: None,
            spans: None,
            models: Vec::new(),
            backfill: Some((start * 1_000_000_000, end * 1_000_000_000)),
            start: None,
            dialects: PlanDialect::ALL.to_vec(),
            tenants: 3,
            incidents: true,
            ground_truth: Some(truth.clone()),
            replay: 0,
        },
        Arc::new(Progress::default()),
        CancellationToken::new(),
    )
    .await
    .expect("loadgen");
    // Every row in (the count holds for two seconds), then the rollups.
    let mut last = -1i64;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let n: i64 = c
            .query_one("SELECT count(*) FROM llm_calls", &[])
            .await
            .expect("count")
            .get(0);
        if n == last && n > 0 {
            break;
        }
        last = n;
    }
    running.stop().await.expect("stop");
    c.batch_execute("SELECT llm_refresh_rollups()").await.expect("refresh");
    let incidents: Vec<(String, u64, u64)> = std::fs::read_to_string(&truth)
        .expect("ground truth")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            (
                v["kind"].as_str().expect("kind").to_owned(),
                v["start_unix_nano"].as_u64().expect("start") / 1_000_000_000,
                v["end_unix_nano"].as_u64().expect("end") / 1_000_000_000,
            )
        })
        .collect();
    let _ = std::fs::remove_file(&truth);
    let scored_from = start + 14 * DAY;
    // Incidents in the first two weeks are history, not scored (as the flags are not).
    let of = |kinds: &[&str]| -> Vec<(u64, u64)> {
        incidents
            .iter()
            .filter(|i| kinds.contains(&i.0.as_str()) && i.1 >= scored_from)
            .map(|i| (i.1, i.2))
            .collect()
    };
    let spend = flagged(
        &c,
        "llm-cost.json",
        "Hourly spend against its baseline",
        scored_from,
        end,
    )
    .await;
    let latency = flagged(&c, "llm-performance.json", "p95 latency anomalies", scored_from, end).await;
    eprintln!(
        "seed {seed}: {} traces, {} spans; incidents {incidents:?}; flagged spend hours {}, latency hours {}",
        sent.traces,
        sent.spans,
        spend.len(),
        latency.len()
    );
    if std::env::var_os("LLMHUB_DETECT_RUNS").is_some() {
        for (what, flags) in [("spend", &spend), ("latency", &latency)] {
            for h in flags.iter() {
                let near = incidents
                    .iter()
                    .map(|i| {
                        (
                            i.0.as_str(),
                            (*h as i64 - i.1 as i64) / 3600,
                            (i.2 as i64 - i.1 as i64) / 3600,
                        )
                    })
                    .min_by_key(|x| x.1.abs())
                    .unwrap_or(("", 0, 0));
                eprintln!(
                    "  {what} flag at {h}: nearest {} starts {}h before (lasts {}h)",
                    near.0, near.1, near.2
                );
            }
        }
    }
    drop(c);
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("cleanup");
    // What moves each series: spend, the cost spike, the error burst (failed calls cost nothing)
    // and the runaway loop (40 extra calls); p95 latency, the regression and the cost spike (ten
    // times the output makes those calls about ten times longer).
    [
        score(
            &spend,
            &of(&["cost_spike"]),
            &of(&["cost_spike", "error_burst", "runaway_agent_loop"]),
        ),
        score(
            &latency,
            &of(&["latency_regression"]),
            &of(&["latency_regression", "cost_spike"]),
        ),
    ]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (seeds, days, rate): (u64, u64, f64) = if bench { (6, 42, 0.05) } else { (1, 16, 0.01) };
    let seeds = std::env::var("LLMHUB_DETECT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(seeds);
    let base =
        std::env::var("LLMHUB_TEST_PG15_URL").expect("set LLMHUB_TEST_PG15_URL (eval \"$(scripts/servers.sh env)\")");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut totals = [(0usize, 0usize, 0usize, 0usize); 2];
        for seed in 1..=seeds {
            let s = one_seed(&base, seed, days, rate).await;
            for (t, x) in totals.iter_mut().zip(s) {
                *t = (t.0 + x.0, t.1 + x.1, t.2 + x.2, t.3 + x.3);
            }
        }
        println!("| panel (detector) | incident kind | incidents | recall | flagged runs | precision |");
        println!("|---|---|---|---|---|---|");
        for (name, kind, (n, detected, runs, touching)) in [
            (
                "Hourly spend against its baseline (llm_anomalies_seasonal_trend)",
                "cost_spike",
                totals[0],
            ),
            (
                "p95 latency anomalies (llm_anomalies_seasonal_trend)",
                "latency_regression",
                totals[1],
            ),
        ] {
            let ratio = |a: usize, b: usize| if b == 0 { f64::NAN } else { a as f64 / b as f64 };
            println!(
                "| {name} | {kind} | {n} | {:.2} | {runs} | {:.2} |",
                ratio(detected, n),
                ratio(touching, runs)
            );
        }
    });
}

//! kill -9 of `llmhub serve` (WAL queue) under load, at random moments, combined with fast and
//! immediate restarts of the database, on PostgreSQL 15 and on TimescaleDB: every span whose
//! request was acknowledged is stored, once.
//!
//! The soak runs `LLMHUB_SOAK_CYCLES` rounds (3 in the test command; `scripts/soak.sh N` runs N
//! and prints the totals); `LLMHUB_SOAK_SEED` repeats a run's choices.

use crate::common::pg::{export, grpc_channel, Server};
use crate::support::{dead_letters, serial, totals, Fixture, Totals};
use llmhub_testkit::{realistic_request, spawn_serve_logged, ServeProcess};
use std::time::Duration;

/// How a round ends.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// kill -9 of llmhub only.
    Kill,
    /// The database restarted (fast shutdown), then kill -9.
    FastRestartThenKill,
    /// The database crashed (immediate shutdown: crash recovery at start), kill -9, database up.
    CrashWithKill,
    /// kill -9, then the database restarted (fast) before llmhub comes back.
    KillThenFastRestart,
}

const ENDINGS: [Ending; 4] = [
    Ending::Kill,
    Ending::FastRestartThenKill,
    Ending::CrashWithKill,
    Ending::KillThenFastRestart,
];

fn config(fx: &Fixture) -> std::path::PathBuf {
    let path = fx.dir.join("llmhub.yaml");
    std::fs::write(
        &path,
        format!(
            "exporters:\n  postgres:\n    url: {}\n    schema: {}\n    batch_linger_ms: 50\n    retry_initial_ms: 50\n    retry_max_ms: 1000\n    queue:\n      directory: {}\n      durability: wal\nservice:\n  pipelines:\n    traces:\n      exporters: [prometheus, postgres]\n",
            fx.url,
            fx.schema,
            fx.dir.join("queue").display()
        ),
    )
    .expect("config");
    path
}

fn start(fx: &Fixture, config: &std::path::Path, round: u32) -> ServeProcess {
    let cfg = config.display().to_string();
    let mut args = vec!["--config", cfg.as_str()];
    args.extend(llmhub_testkit::LOOPBACK_EPHEMERAL);
    spawn_serve_logged(
        env!("CARGO_BIN_EXE_llmhub"),
        &args,
        None,
        &[],
        &fx.dir.join(format!("llmhub-{round}.log")),
    )
    .expect("llmhub starts")
}

/// Two clients send 50-span requests until llmhub goes away; each keeps what was acknowledged.
fn clients(
    addr: &str,
    round: u32,
) -> Vec<tokio::task::JoinHandle<Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>>> {
    (0..2u64)
        .map(|c| {
            let addr = addr.to_owned();
            tokio::spawn(async move {
                let mut grpc = grpc_channel(&addr).await;
                let mut acked = Vec::new();
                for k in 0..100_000u64 {
                    let req = realistic_request(50, 10_000_000 + u64::from(round) * 1_000_000 + c * 500_000 + k);
                    match export(&mut grpc, &req).await {
                        Ok(_) => acked.push(req),
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect()
}

/// The soak; returns the totals and the dead-lettered row count.
async fn soak(server: Server, cycles: u32) -> (Totals, usize) {
    let seed = std::env::var("LLMHUB_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut fx = Fixture::new(server, &format!("f_soak_{}", server.script_name())).await;
    let config = config(&fx);
    let mut acked = Vec::new();
    for round in 0..cycles {
        let mut p = start(&fx, &config, round);
        let load = clients(&p.grpc, round);
        let at = Duration::from_millis(rng.u64(300..2_500));
        let ending = ENDINGS[rng.usize(..ENDINGS.len())];
        tokio::time::sleep(at).await;
        match ending {
            Ending::Kill => p.kill(),
            Ending::FastRestartThenKill => {
                server.control("stop");
                server.control("start");
                p.kill();
            }
            Ending::CrashWithKill => {
                server.control("crash");
                p.kill();
                server.control("start");
            }
            Ending::KillThenFastRestart => {
                p.kill();
                server.control("stop");
                server.control("start");
            }
        }
        let mut n = 0;
        for c in load {
            let a = c.await.expect("client");
            n += a.len();
            acked.extend(a);
        }
        eprintln!(
            "soak {} round {round}: {ending:?} after {at:?}, {n} requests acknowledged",
            server.script_name()
        );
    }
    fx.reconnect().await;
    let mut last = start(&fx, &config, cycles);
    let t = totals(&fx, &acked, Duration::from_secs(180)).await;
    last.kill();
    let dead = dead_letters(&fx.dir.join("queue").join("postgres-dead-letters.jsonl")).len();
    println!(
        "soak: server={} cycles={cycles} seed={seed} acknowledged={} stored={} missing={} duplicated={} dead_lettered={dead}",
        server.script_name(),
        t.acknowledged,
        t.stored,
        t.missing,
        t.duplicated
    );
    if t.missing == 0 && t.duplicated == 0 && dead == 0 {
        fx.cleanup().await;
    }
    (t, dead)
}

fn cycles() -> u32 {
    std::env::var("LLMHUB_SOAK_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

fn check((t, dead): (Totals, usize)) {
    assert!(t.acknowledged > 0, "load ran");
    assert_eq!(t.missing, 0, "acknowledged spans lost: {t:?}");
    assert_eq!(t.duplicated, 0, "rows stored twice: {t:?}");
    assert_eq!(dead, 0, "nothing dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh); kills and restarts"]
async fn soak_pg15() {
    let _serial = serial().await;
    check(soak(Server::Pg15, cycles()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 17 + TimescaleDB (scripts/servers.sh); kills and restarts"]
async fn soak_timescale() {
    let _serial = serial().await;
    check(soak(Server::Timescale, cycles()).await);
}

/// Logs take the traces' durability: a logs request acknowledged while the database is down
/// (WAL queue) survives a kill -9 of llmhub and is stored, once, when llmhub and the database
/// are back. The request is Claude Code's export (testdata), as it sent it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh); stops it and kills llmhub"]
async fn an_acknowledged_logs_request_survives_kill_9() {
    let _serial = serial().await;
    let mut fx = crate::support::Fixture::new(Server::Pg15, "kill9_logs").await;
    let cfg = config(&fx);
    let mut llmhub = start(&fx, &cfg, 0);
    // The database stops before the request, so nothing of it can be written before the kill.
    fx.server.control("stop");
    let body = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/coding-agents/claude-code-2.1.337-logs.json"),
    )
    .expect("fixture");
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/logs", llmhub.http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200, "acknowledged with the database down");
    llmhub.kill();
    fx.server.control("start");
    fx.reconnect().await;
    let _llmhub = start(&fx, &cfg, 1);
    let q = format!(
        "SELECT count(*), sum(input_uncached_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(output_tokens)
           FROM {}.llm_calls WHERE dialect = 'claude_code'",
        fx.schema
    );
    crate::support::wait_until(Duration::from_secs(60), "the logged call stored", || {
        let (admin, q) = (&fx.admin, q.clone());
        async move {
            admin
                .query_one(&q, &[])
                .await
                .map(|r| r.get::<_, i64>(0) > 0)
                .unwrap_or(false)
        }
    })
    .await;
    let row = fx.admin.query_one(&q, &[]).await.expect("row");
    let n = |i: usize| row.get::<_, Option<rust_decimal::Decimal>>(i).map(|d| d.to_string());
    assert_eq!(row.get::<_, i64>(0), 1, "once");
    assert_eq!(
        (n(1), n(2), n(3), n(4)),
        (
            Some("1234".to_owned()),
            Some("3456".to_owned()),
            Some("2345".to_owned()),
            Some("456".to_owned())
        )
    );
    fx.cleanup().await;
}

//! SIGTERM in every state the sink can be in: rows it cannot write (database down, memory queue),
//! a write stuck on a connection that went silent, a full queue, the memory limit reached, the
//! database stopping at the same moment. `llmhub serve` must exit 0 within its drain deadline
//! (and a short margin) every time, saying what it could not keep.

use crate::common::pg::{sink_config, with_sink, Server};
use crate::support::{assert_kept, serial, wait_until, Fixture};
use llmhub::config::Config;
use llmhub_exporters::queue::{Durability, QueueConfig};
use llmhub_testkit::pgproxy::{Action, Dir, Message, PgProxy, Rule};
use llmhub_testkit::{realistic_request, spawn_serve_logged, ServeProcess};
use prost::Message as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The drain deadline and a margin for the process to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(12);

/// Starts `llmhub serve` with `cfg` on loopback ports, its log in the fixture's directory.
fn serve(fx: &Fixture, mut cfg: Config, name: &str) -> ServeProcess {
    cfg.receivers.otlp.protocols.grpc.as_mut().expect("grpc").endpoint = "127.0.0.1:0".into();
    cfg.receivers.otlp.protocols.http.as_mut().expect("http").endpoint = "127.0.0.1:0".into();
    cfg.exporters.prometheus.endpoint = "127.0.0.1:0".into();
    let path = fx.dir.join(format!("{name}.yaml"));
    std::fs::write(&path, serde_yaml_ng::to_string(&cfg).expect("yaml")).expect("config");
    spawn_serve_logged(
        env!("CARGO_BIN_EXE_llmhub"),
        &["--config", path.to_str().expect("utf-8")],
        None,
        &[],
        &fx.dir.join(format!("{name}.log")),
    )
    .expect("llmhub serve starts")
}

/// Load over OTLP/HTTP protobuf from a task until stopped: counts answers.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

fn load(http: &str, spans: usize, seed: u64) -> Load {
    let (stop, ok, refused) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let url = format!("http://{http}/v1/traces");
    let (s, o, r) = (stop.clone(), ok.clone(), refused.clone());
    let task = tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let mut k = seed;
        while !s.load(Ordering::Relaxed) {
            let body = realistic_request(spans, k).encode_to_vec();
            k += 1;
            match client
                .post(&url)
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await
            {
                Ok(resp) if resp.status().is_success() => o.fetch_add(1, Ordering::Relaxed),
                Ok(_) => r.fetch_add(1, Ordering::Relaxed),
                Err(_) => break,
            };
        }
    });
    Load {
        stop,
        ok,
        refused,
        task,
    }
}

impl Load {
    async fn end(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        (self.ok.load(Ordering::Relaxed), self.refused.load(Ordering::Relaxed))
    }
}

/// SIGTERM, then the exit status within [`EXIT_WITHIN`] (the test fails otherwise).
fn terminate(p: &mut ServeProcess) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    p.terminate();
    let status = p
        .wait_timeout(EXIT_WITHIN)
        .unwrap_or_else(|| panic!("llmhub still runs {EXIT_WITHIN:?} after SIGTERM"));
    let took = started.elapsed();
    eprintln!("exited {status} {took:?} after SIGTERM");
    assert!(status.success(), "exit status {status}");
    (status, took)
}

fn memory_queue(fx: &Fixture) -> Config {
    with_sink(sink_config(&fx.url, &fx.schema))
}

/// The database is down, rows wait in a memory queue, load keeps coming: SIGTERM ends the process
/// at the drain deadline, and it logs how many rows it lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh); stops it"]
async fn sigterm_with_the_database_down_and_rows_in_memory() {
    let _serial = serial().await;
    let fx = Fixture::new(Server::Pg15, "f_stop_db_down").await;
    fx.server.control("stop");
    let mut p = serve(&fx, memory_queue(&fx), "llmhub");
    let l = load(&p.http, 50, 80_000);
    wait_until(Duration::from_secs(20), "accepted requests", || {
        let ok = l.ok.clone();
        async move { ok.load(Ordering::Relaxed) >= 20 }
    })
    .await;
    terminate(&mut p);
    let (ok, _) = l.end().await;
    assert!(ok >= 20);
    let log = p.log();
    assert!(
        log.contains("they are lost"),
        "the loss is logged:\n{}",
        &log[log.len().saturating_sub(2000)..]
    );
    fx.server.control("start");
    fx.cleanup().await;
}

/// A write stuck on a connection that went silent (the proxy holds it open and passes nothing):
/// SIGTERM still ends the process in time, and the rows, kept in the on-disk queue, are written
/// by the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh)"]
async fn sigterm_with_a_write_stuck_on_a_silent_connection() {
    let _serial = serial().await;
    let fx = Fixture::new(Server::Pg15, "f_stop_silent").await;
    // The table, written directly first.
    let mut direct = serve(&fx, memory_queue(&fx), "direct");
    let warm = crate::support::send_written(&fx, &direct.grpc, 1, 5, 81_000).await;
    terminate(&mut direct);
    let held = Arc::new(AtomicBool::new(false));
    let h = held.clone();
    let rule: Rule = Box::new(move |m: &Message<'_>| {
        if m.dir == Dir::ToServer && m.kind == b'c' && !h.swap(true, Ordering::SeqCst) {
            Action::BlackHoleAfter
        } else {
            Action::Forward
        }
    });
    let proxy = PgProxy::start(fx.server_addr(), rule).await.expect("proxy");
    let mut cfg = sink_config(&fx.url_via(proxy.addr()), &fx.schema);
    cfg.queue = QueueConfig {
        directory: Some(fx.dir.join("queue")),
        durability: Durability::Wal,
        ..QueueConfig::default()
    };
    let mut p = serve(&fx, with_sink(cfg.clone()), "stuck");
    let sent = crate::support::send(&p.grpc, 3, 50, 81_100).await;
    assert_eq!(sent.acked.len(), 3);
    wait_until(Duration::from_secs(20), "the write to go silent", || {
        let held = held.clone();
        async move { held.load(Ordering::SeqCst) }
    })
    .await;
    terminate(&mut p);
    drop(proxy);
    // The next start, straight to the database, writes what the stuck one left queued.
    cfg.url = Some(fx.url.clone());
    let mut again = serve(&fx, with_sink(cfg), "again");
    let acked = [warm, sent.acked].concat();
    assert_kept(&fx, &acked, None).await;
    terminate(&mut again);
    fx.cleanup().await;
}

/// The memory queue is full (the database is down): requests are refused; SIGTERM ends it in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh); stops it"]
async fn sigterm_with_a_full_queue() {
    let _serial = serial().await;
    let fx = Fixture::new(Server::Pg15, "f_stop_full").await;
    fx.server.control("stop");
    let mut sink = sink_config(&fx.url, &fx.schema);
    sink.queue.max_memory_bytes = 256 * 1024;
    let mut p = serve(&fx, with_sink(sink), "llmhub");
    let l = load(&p.http, 50, 82_000);
    wait_until(Duration::from_secs(20), "refusals", || {
        let r = l.refused.clone();
        async move { r.load(Ordering::Relaxed) >= 5 }
    })
    .await;
    terminate(&mut p);
    l.end().await;
    fx.server.control("start");
    fx.cleanup().await;
}

/// At the memory limit (a small limit, large requests, the database down): SIGTERM ends it in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh); stops it"]
async fn sigterm_at_the_memory_limit() {
    let _serial = serial().await;
    let fx = Fixture::new(Server::Pg15, "f_stop_memory").await;
    fx.server.control("stop");
    let mut cfg = memory_queue(&fx);
    cfg.service.memory.limit_mib = 96;
    let mut p = serve(&fx, cfg, "llmhub");
    let loads: Vec<Load> = (0..4).map(|k| load(&p.http, 500, 83_000 + k * 10_000)).collect();
    wait_until(Duration::from_secs(30), "refusals at the memory limit", || {
        let r: Vec<_> = loads.iter().map(|l| l.refused.clone()).collect();
        async move { r.iter().map(|r| r.load(Ordering::Relaxed)).sum::<u64>() >= 5 }
    })
    .await;
    let m = crate::common::scrape(p.metrics.parse().expect("metrics address")).await;
    assert!(
        crate::common::sum(
            &m,
            "llmhub_receiver_spans_refused_total",
            &[("llmhub_reason", "memory_limit")]
        ) > 0.0,
        "refused at the memory limit"
    );
    terminate(&mut p);
    for l in loads {
        l.end().await;
    }
    fx.server.control("start");
    fx.cleanup().await;
}

/// The database is being stopped at the moment SIGTERM comes, while rows are being written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh); stops it"]
async fn sigterm_while_the_database_stops() {
    let _serial = serial().await;
    let fx = Fixture::new(Server::Pg15, "f_stop_db_stopping").await;
    let mut p = serve(&fx, memory_queue(&fx), "llmhub");
    let l = load(&p.http, 50, 84_000);
    wait_until(Duration::from_secs(20), "accepted requests", || {
        let ok = l.ok.clone();
        async move { ok.load(Ordering::Relaxed) >= 20 }
    })
    .await;
    let server = fx.server;
    let stopping = std::thread::spawn(move || server.control("stop"));
    terminate(&mut p);
    let _ = stopping.join();
    l.end().await;
    fx.server.control("start");
    fx.cleanup().await;
}

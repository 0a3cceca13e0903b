//! Fault tests of the PostgreSQL/TimescaleDB sink: they stop and start the real servers, so they
//! live in their own test binary (cargo runs test binaries one at a time; the other database tests
//! are in `postgres_e2e.rs`). `#[ignore]`d for a bare `cargo test`; the README's test command
//! starts the servers and runs them.

mod common;

use common::pg::{self, export, grpc_channel, sink_config, tmpdir, with_sink, Server};
use common::{scrape, start, sum};
use llmhub::testkit::realistic_request;
use llmhub_exporters::queue::QueueConfig;
use std::time::Duration;

/// Stop the database for 30 s under steady load and start it again: every record arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh); stops and restarts it"]
async fn a_30_second_database_outage_loses_and_duplicates_nothing() {
    let server = Server::Pg15;
    let url = server.url();
    let schema = {
        let client = pg::connect(&url).await;
        pg::fresh_schema(&client, "outage").await
    };
    let dir = tmpdir("outage");
    let mut cfg = sink_config(&url, &schema);
    cfg.queue = QueueConfig {
        directory: Some(dir.clone()),
        ..QueueConfig::default()
    };
    let running = start(&with_sink(cfg)).await;
    let addr = running.grpc_addr.expect("grpc").to_string();
    let load = tokio::spawn(async move {
        let mut grpc = grpc_channel(&addr).await;
        let mut sent = Vec::new();
        let started = std::time::Instant::now();
        let mut seed = 50_000;
        while started.elapsed() < Duration::from_secs(42) {
            let req = realistic_request(20, seed);
            seed += 1;
            export(&mut grpc, &req)
                .await
                .expect("every request accepted during the outage");
            sent.push(req);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sent
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let readyz = |addr: std::net::SocketAddr| async move {
        let r = reqwest::get(format!("http://{addr}/readyz"))
            .await
            .expect("readyz answers");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    };
    assert_eq!(
        readyz(running.metrics_addr).await.0,
        200,
        "ready while the database is up"
    );
    server.control("stop");
    let stopped_at = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (status, why) = readyz(running.metrics_addr).await;
    assert_eq!(status, 503, "not ready while the sink cannot write: {why}");
    assert!(why.contains("postgres sink"), "{why}");
    let m = scrape(running.metrics_addr).await;
    let queued = sum(&m, "llmhub_postgres_queue_rows", &[]);
    let disk = sum(&m, "llmhub_postgres_queue_disk_bytes", &[]);
    server.control("start");
    eprintln!(
        "database down for {:?}; {queued} rows queued, {disk} bytes on disk",
        stopped_at.elapsed()
    );
    assert!(queued > 1000.0, "rows waited in the queue: {queued}");
    assert!(disk > 0.0);
    let sent = load.await.expect("load");
    let want = pg::expected_records(&sent);
    let client = pg::connect(&url).await;
    let n = pg::wait_for_rows(&client, &schema, want.len() as i64, Duration::from_secs(90)).await;
    assert_eq!(n, want.len() as i64);
    assert_eq!(readyz(running.metrics_addr).await.0, 200, "ready again once it writes");
    assert_eq!(pg::counts(&client, &schema).await, (n, n), "none duplicated");
    assert_eq!(
        pg::row_ids(&client, &schema).await,
        pg::record_ids(&want),
        "exactly the records sent"
    );
    let m = scrape(running.metrics_addr).await;
    assert!(sum(&m, "llmhub_postgres_retries_total", &[("llmhub_reason", "connection")]) >= 1.0);
    running.stop().await.expect("stop");
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("cleanup");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kill -9 llmhub under load with `durability: wal`, start it again: every span whose request was
/// acknowledged is in the database, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 17 + TimescaleDB (scripts/servers.sh)"]
async fn kill_9_under_load_with_wal_keeps_every_acknowledged_span() {
    let server = Server::Timescale;
    let url = server.url();
    let client = pg::connect(&url).await;
    let schema = pg::fresh_schema(&client, "kill9").await;
    let dir = tmpdir("kill9");
    let config = dir.join("llmhub.yaml");
    std::fs::write(
        &config,
        format!(
            "exporters:\n  postgres:\n    url: {url}\n    schema: {schema}\n    batch_linger_ms: 50\n    retry_initial_ms: 50\n    retry_max_ms: 1000\n    queue:\n      directory: {}\n      durability: wal\nservice:\n  pipelines:\n    traces:\n      exporters: [prometheus, postgres]\n",
            dir.join("queue").display()
        ),
    )
    .expect("config");
    let exe = env!("CARGO_BIN_EXE_llmhub");
    let cfg_arg = config.display().to_string();
    let mut args = vec!["--config", cfg_arg.as_str()];
    args.extend(llmhub::testkit::LOOPBACK_EPHEMERAL);
    let mut first = llmhub::testkit::spawn_serve(exe, &args, None).expect("llmhub starts");
    let addr = first.grpc.clone();
    // Load from two clients; each remembers what was acknowledged.
    let mut clients = Vec::new();
    for c in 0..2u64 {
        let addr = addr.clone();
        clients.push(tokio::spawn(async move {
            let mut grpc = grpc_channel(&addr).await;
            let mut acked = Vec::new();
            for k in 0..100_000u64 {
                let req = realistic_request(50, 900_000 + c * 100_000 + k);
                match export(&mut grpc, &req).await {
                    Ok(_) => acked.push(req),
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    // Half-way the database goes away too, so a backlog builds up that only the log holds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.control("stop");
    tokio::time::sleep(Duration::from_secs(2)).await;
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    server.control("start");
    let mut acked = Vec::new();
    for c in clients {
        acked.extend(c.await.expect("client"));
    }
    assert!(acked.len() > 20, "load ran: {} requests acknowledged", acked.len());
    let client = pg::connect(&url).await;
    let in_db_at_kill = pg::counts(&client, &schema).await.0;

    let second = llmhub::testkit::spawn_serve(exe, &args, None).expect("llmhub restarts");
    let want = pg::expected_records(&acked);
    let want_ids = pg::record_ids(&want);
    let until = std::time::Instant::now() + Duration::from_secs(90);
    let missing = loop {
        let missing = want_ids.difference(&pg::row_ids(&client, &schema).await).count();
        if missing == 0 || std::time::Instant::now() > until {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "{} acknowledged records, {in_db_at_kill} rows in the database at the kill, {missing} missing after the restart",
        want_ids.len()
    );
    assert_eq!(missing, 0, "acknowledged spans lost");
    assert!(
        (in_db_at_kill as usize) + 1000 < want_ids.len(),
        "a real backlog was replayed from the log"
    );
    let (n, distinct) = pg::counts(&client, &schema).await;
    assert_eq!(n, distinct, "no row twice");
    let mut second = second;
    let _ = second.child.kill();
    let _ = second.child.wait();
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("cleanup");
    let _ = std::fs::remove_dir_all(&dir);
}

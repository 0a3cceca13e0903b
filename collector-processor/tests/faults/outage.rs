//! A database outage of 30 s under steady load: rows wait in the on-disk queue, `/readyz` says
//! the sink cannot write, and once the database is back every record arrives once.

use crate::common::pg::{self, export, grpc_channel, sink_config, tmpdir, with_sink, Server};
use crate::common::{scrape, start, sum};
use llmhub_exporters::queue::QueueConfig;
use llmhub_testkit::realistic_request;
use std::time::Duration;

/// Stop the database for 30 s under steady load and start it again: every record arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh); stops and restarts it"]
async fn a_30_second_database_outage_loses_and_duplicates_nothing() {
    let _serial = crate::support::serial().await;
    let server = Server::Pg15;
    server.control("start");
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

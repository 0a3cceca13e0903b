//! The queue's directory full (a small tmpfs) or unwritable (`chattr +i`): requests are
//! refused with a retryable status, and a refused request leaves no trace, so that its retry,
//! once the disk has room again, is stored (before the fix the deduplicator remembered the
//! refused spans and answered the retry as a duplicate, storing nothing).

use crate::common::pg::{export, grpc_channel, sink_config, with_sink, Server};
use crate::common::{scrape, start, sum};
use crate::support::{assert_kept, send_until_acked, send_written, serial, wait_until, Fixture, SmallDisk, Unwritable};
use llmhub_exporters::queue::{Durability, QueueConfig};
use llmhub_testkit::realistic_request;
use std::time::Duration;

fn wal_on(fx: &Fixture, dir: &std::path::Path) -> llmhub::config::Config {
    let mut cfg = sink_config(&fx.url, &fx.schema);
    cfg.queue = QueueConfig {
        directory: Some(dir.to_owned()),
        durability: Durability::Wal,
        segment_bytes: 1024 * 1024,
        // More than the disk holds: the disk fills first.
        max_disk_bytes: 1024 * 1024 * 1024,
        ..QueueConfig::default()
    };
    with_sink(cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh) and root (mount)"]
async fn a_full_queue_disk_refuses_retryably_and_the_retry_is_stored() {
    let _serial = serial().await;
    let mut fx = Fixture::new(Server::Pg15, "f_disk_full").await;
    let disk = SmallDisk::mount(&fx.dir.join("queue"), "3m");
    let running = start(&wal_on(&fx, &disk.dir)).await;
    let addr = running.grpc_addr.expect("grpc").to_string();
    // Rows pile up on disk while the database is down, until the disk is full.
    let warm = send_written(&fx, &addr, 1, 10, 75_000).await;
    fx.server.control("stop");
    let mut grpc = grpc_channel(&addr).await;
    let mut acked = warm;
    let mut refused = None;
    for k in 1..2_000u64 {
        let req = realistic_request(50, 75_000 + k);
        match export(&mut grpc, &req).await {
            Ok(_) => acked.push(req),
            Err(s) => {
                assert_eq!(
                    s.code(),
                    tonic::Code::Unavailable,
                    "a full disk is a retryable refusal: {s:?}"
                );
                assert!(s.message().contains("could not write to disk"), "{}", s.message());
                refused = Some(req);
                break;
            }
        }
    }
    let refused = refused.expect("the 3 MiB disk filled up");
    assert!(
        acked.len() > 10,
        "{} requests fit before the disk was full",
        acked.len()
    );
    // Still full: refused again, and again nothing of it is remembered.
    assert!(export(&mut grpc, &refused).await.is_err(), "still no room");
    let m = scrape(running.metrics_addr).await;
    assert!(
        sum(
            &m,
            "llmhub_receiver_spans_refused_total",
            &[("llmhub_reason", "queue_error")]
        ) >= 100.0
    );
    fx.server.control("start");
    fx.reconnect().await;
    // The backlog is written, its segments deleted, and the retry goes in.
    let refusals = send_until_acked(&addr, &refused, Duration::from_secs(60)).await;
    eprintln!(
        "the refused request was refused {} more times before it was taken",
        refusals.len()
    );
    acked.push(refused);
    assert_kept(&fx, &acked, Some(running.metrics_addr)).await;
    running.stop().await.expect("stop");
    drop(disk);
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh) and root (chattr)"]
async fn an_unwritable_queue_directory_refuses_retryably_and_the_retry_is_stored() {
    let _serial = serial().await;
    let fx = Fixture::new(Server::Pg15, "f_disk_ro").await;
    let queue = fx.dir.join("queue");
    let running = start(&wal_on(&fx, &queue)).await;
    let addr = running.grpc_addr.expect("grpc").to_string();
    let before = send_written(&fx, &addr, 3, 50, 76_000).await;
    let req = realistic_request(50, 76_100);
    let mut grpc = grpc_channel(&addr).await;
    {
        let _frozen = Unwritable::make(&queue);
        let e = export(&mut grpc, &req).await.expect_err("an unwritable queue refuses");
        assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
        assert!(e.message().contains("could not write to disk"), "{}", e.message());
    }
    let refusals = send_until_acked(&addr, &req, Duration::from_secs(30)).await;
    assert!(refusals.is_empty(), "taken at the first retry: {refusals:?}");
    let acked = [before, vec![req]].concat();
    assert_kept(&fx, &acked, Some(running.metrics_addr)).await;
    // Nothing queued is left behind.
    wait_until(Duration::from_secs(10), "an empty queue", || async {
        sum(&scrape(running.metrics_addr).await, "llmhub_postgres_queue_rows", &[]) == 0.0
    })
    .await;
    running.stop().await.expect("stop");
    fx.cleanup().await;
}

//! One exporter's outage holds up no other: the span forwarding target is down and its queue
//! full, and yet every request is acknowledged, counted in `/metrics` and stored by the database
//! sink; the requests not forwarded are counted (`on_full: drop`, the default). With
//! `on_full: refuse` the same outage refuses requests instead, retryably.

use crate::common::pg::{sink_config, Server};
use crate::common::{scrape, start, sum};
use crate::support::{assert_kept, records_counted, send, serial, Fixture};
use llmhub_exporters::forward::ForwardConfig;
use llmhub_exporters::queue::{OnFull, QueueConfig};

fn with_dead_forwarding(fx: &Fixture, on_full: OnFull) -> llmhub::config::Config {
    // A port nothing listens on: every forwarding attempt fails and is retried.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut c = crate::common::pg::with_sink(sink_config(&fx.url, &fx.schema));
    c.exporters.otlp = Some(ForwardConfig {
        endpoint: format!("http://127.0.0.1:{port}"),
        queue: QueueConfig {
            max_memory_bytes: 64 * 1024,
            ..QueueConfig::default()
        },
        on_full,
        ..ForwardConfig::default()
    });
    c.service.pipelines.traces.exporters.push("otlp".into());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh)"]
async fn a_forwarding_outage_leaves_metrics_and_the_database_working() {
    let _serial = serial().await;
    let fx = Fixture::new(Server::Pg15, "f_iso_drop").await;
    let running = start(&with_dead_forwarding(&fx, OnFull::Drop)).await;
    let addr = running.grpc_addr.expect("grpc").to_string();
    let sent = send(&addr, 20, 50, 85_000).await;
    assert!(
        sent.refused.is_empty(),
        "nothing refused: {:?}",
        sent.refused.iter().map(|r| r.1).collect::<Vec<_>>()
    );
    let t = assert_kept(&fx, &sent.acked, Some(running.metrics_addr)).await;
    let m = scrape(running.metrics_addr).await;
    assert_eq!(records_counted(&m) as usize, t.stored);
    assert_eq!(sum(&m, "llmhub_receiver_spans_accepted_total", &[]), 1000.0);
    let dropped = sum(&m, "llmhub_forward_dropped_total", &[("llmhub_reason", "queue_full")]);
    assert!(dropped >= 1.0, "requests not forwarded are counted: {dropped}");
    assert!(dropped < 20.0, "the queue took some before it was full: {dropped}");
    running.stop().await.expect("stop");
    fx.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh)"]
async fn with_on_full_refuse_a_forwarding_outage_refuses_retryably() {
    let _serial = serial().await;
    let fx = Fixture::new(Server::Pg15, "f_iso_refuse").await;
    let running = start(&with_dead_forwarding(&fx, OnFull::Refuse)).await;
    let addr = running.grpc_addr.expect("grpc").to_string();
    let sent = send(&addr, 20, 50, 86_000).await;
    assert!(!sent.refused.is_empty(), "the full forwarding queue refuses");
    assert!(
        sent.refused.iter().all(|(_, c)| *c == tonic::Code::ResourceExhausted),
        "retryable (RESOURCE_EXHAUSTED with RetryInfo)"
    );
    // What was acknowledged is stored and counted; the refused requests left no trace.
    assert_kept(&fx, &sent.acked, Some(running.metrics_addr)).await;
    let m = scrape(running.metrics_addr).await;
    assert_eq!(sum(&m, "llmhub_forward_dropped_total", &[]), 0.0);
    running.stop().await.expect("stop");
    fx.cleanup().await;
}

//! Connections broken at chosen protocol messages, by the wire-protocol proxy of the test kit
//! (`llmhub_testkit::pgproxy`) between the sink and PostgreSQL 15: mid-COPY, after CopyDone,
//! after the COPY's CommandComplete but before the commit is confirmed, after COMMIT is sent but
//! before its answer, and a connection that goes silent without closing. Each rule fires once (on
//! the first COPY); the retry goes through.

use crate::common::pg::{sink_config, with_sink, Server};
use crate::common::{scrape, start, sum};
use crate::support::{assert_kept, send, send_written, serial, Fixture};
use llmhub_exporters::queue::{Durability, QueueConfig};
use llmhub_testkit::pgproxy::{Action, Dir, Message, PgProxy, Rule};

/// Tracks whether a connection is inside a `COPY ... FROM STDIN` (after CopyInResponse), so rules
/// only touch the sink's data path, not its set-up queries.
#[derive(Default)]
struct CopyState {
    in_copy: bool,
    copy_done: bool,
    fired: bool,
}

impl CopyState {
    fn observe(&mut self, m: &Message<'_>) {
        match (m.dir, m.kind) {
            (Dir::ToClient, b'G') => {
                self.in_copy = true;
                self.copy_done = false;
            }
            (Dir::ToServer, b'c') => self.copy_done = true,
            (Dir::ToClient, b'Z') => {
                self.in_copy = false;
                self.copy_done = false;
            }
            _ => {}
        }
    }
}

/// A rule that fires `action` once, at the first message for which `at` holds (given the COPY
/// state seen before that message).
fn once(at: impl Fn(&Message<'_>, &CopyState) -> bool + Send + 'static, action: Action) -> Rule {
    let mut st = CopyState::default();
    Box::new(move |m: &Message<'_>| {
        let hit = !st.fired && at(m, &st);
        st.observe(m);
        if hit {
            st.fired = true;
            action
        } else {
            Action::Forward
        }
    })
}

/// Runs one case: llmhub (WAL queue, 2 s write deadline) writes through a proxy applying `rule`,
/// which must answer `faults` messages with something other than forwarding; two requests are
/// sent; every acknowledged span must be stored once and counted once.
async fn case(name: &str, rule: Rule, retry_reason: &str, faults: u64) {
    let _serial = serial().await;
    let fx = Fixture::new(Server::Pg15, name).await;
    // The table first, directly: the case is about writes.
    let direct = start(&with_sink(sink_config(&fx.url, &fx.schema))).await;
    send_written(&fx, &direct.grpc_addr.expect("grpc").to_string(), 1, 5, 74_000).await;
    direct.stop().await.expect("stop");
    fx.admin
        .batch_execute(&format!("TRUNCATE {}.llm_calls", fx.schema))
        .await
        .expect("truncate");

    let proxy = PgProxy::start(fx.server_addr(), rule).await.expect("proxy");
    let mut cfg = sink_config(&fx.url_via(proxy.addr()), &fx.schema);
    cfg.write_timeout_ms = 2_000;
    cfg.queue = QueueConfig {
        directory: Some(fx.dir.join("queue")),
        durability: Durability::Wal,
        ..QueueConfig::default()
    };
    let running = start(&with_sink(cfg)).await;
    let addr = running.grpc_addr.expect("grpc").to_string();
    let sent = send(&addr, 2, 50, 74_100).await;
    assert_eq!(sent.acked.len(), 2);
    assert_kept(&fx, &sent.acked, Some(running.metrics_addr)).await;
    assert_eq!(proxy.faults(), faults, "the fault was injected (once)");
    let m = scrape(running.metrics_addr).await;
    assert!(
        sum(&m, "llmhub_postgres_retries_total", &[("llmhub_reason", retry_reason)]) >= 1.0,
        "the broken write was retried ({retry_reason})"
    );
    assert!(proxy.connections() >= 2, "a new connection after the fault");
    running.stop().await.expect("stop");
    drop(proxy);
    fx.cleanup().await;
}

/// Cut after the COPY's CommandComplete reached the client, before ReadyForQuery: the client
/// has no answer to the COMMIT that follows. (The loss this once caused — a commit that failed
/// after CommandComplete — is reproduced at the server by `commit::*`: without a Sync the server
/// sends no CommandComplete, so a proxy cannot make a commit fail after it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh)"]
async fn cut_after_the_copys_command_complete_before_ready_for_query() {
    let rule = once(
        |m, st| st.in_copy && m.dir == Dir::ToClient && m.kind == b'C' && m.text().starts_with("COPY"),
        Action::CutAfter,
    );
    case("f_wire_after_complete", rule, "connection", 1).await;
}

/// Cut in the middle of the COPY: the server got rows but not CopyDone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh)"]
async fn cut_in_the_middle_of_the_copy() {
    let rule = once(
        |m, st| st.in_copy && m.dir == Dir::ToServer && m.kind == b'd',
        Action::CutAfter,
    );
    case("f_wire_mid_copy", rule, "connection", 1).await;
}

/// Cut right after CopyDone reached the server, before its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh)"]
async fn cut_after_copy_done() {
    let rule = once(|m, _| m.dir == Dir::ToServer && m.kind == b'c', Action::CutAfter);
    case("f_wire_copy_done", rule, "connection", 1).await;
}

/// COMMIT reaches the server (which commits) and the connection is cut before its answer: the
/// outcome is unknown to the sink, which writes the batch again; the rows already there are
/// skipped, none is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh)"]
async fn cut_after_commit_is_sent_before_its_answer() {
    let rule = once(
        |m, _| m.dir == Dir::ToServer && m.kind == b'Q' && m.text() == "COMMIT",
        Action::CutAfter,
    );
    case("f_wire_commit", rule, "connection", 1).await;
}

/// After CopyDone the connection goes silent without closing (a partition, a frozen server): the
/// write deadline drops it and the batch goes again on a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh)"]
async fn a_connection_that_goes_silent_mid_write() {
    let rule = once(|m, _| m.dir == Dir::ToServer && m.kind == b'c', Action::BlackHoleAfter);
    case("f_wire_black_hole", rule, "connection", 1).await;
}

//! What every fault test shares: one test at a time (they stop servers, mount filesystems and
//! fill them), a fresh schema, load that remembers what was acknowledged, and the one check every
//! case ends with: acknowledged ⊆ stored, nothing twice, and the counters agree with the table.

use crate::common::pg::{self, export, grpc_channel, Server};
use crate::common::{scrape, sum, Sample};
use llmhub_testkit::realistic_request;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Held for a whole test: fault tests stop the servers and change the machine, so they never
/// overlap (each test has its runtime; a tokio mutex waits across them).
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// A fresh schema on a server, a scratch directory, and an admin connection.
pub struct Fixture {
    pub server: Server,
    pub url: String,
    pub schema: String,
    pub dir: PathBuf,
    pub admin: Client,
}

impl Fixture {
    pub async fn new(server: Server, name: &str) -> Fixture {
        server.control("start");
        let url = server.url();
        let admin = pg::connect(&url).await;
        let schema = pg::fresh_schema(&admin, name).await;
        let dir = pg::tmpdir(name);
        Fixture {
            server,
            url,
            schema,
            dir,
            admin,
        }
    }

    /// The server's address (for a proxy in front of it).
    pub fn server_addr(&self) -> SocketAddr {
        let port = match self.server {
            Server::Pg15 => std::env::var("LLMHUB_PG15_PORT"),
            Server::Timescale => std::env::var("LLMHUB_TS_PORT"),
        }
        .expect("scripts/servers.sh env exports the ports");
        format!("127.0.0.1:{port}").parse().expect("address")
    }

    /// The server's URL with another host and port (a proxy), TLS off so the proxy can read it.
    pub fn url_via(&self, addr: SocketAddr) -> String {
        format!("postgres://postgres@{addr}/llmhub_test?sslmode=disable")
    }

    /// Reconnects the admin connection (after the server restarted).
    pub async fn reconnect(&mut self) {
        self.admin = pg::connect(&self.url).await;
    }

    pub async fn cleanup(self) {
        let _ = self
            .admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a client sent and what became of it.
#[derive(Default)]
pub struct Sent {
    pub acked: Vec<ExportTraceServiceRequest>,
    pub refused: Vec<(ExportTraceServiceRequest, tonic::Code)>,
}

/// Sends `count` requests of `spans` spans (seeds from `seed`) one after another over OTLP/gRPC.
pub async fn send(addr: &str, count: u64, spans: usize, seed: u64) -> Sent {
    let mut grpc = grpc_channel(addr).await;
    let mut sent = Sent::default();
    for k in 0..count {
        let req = realistic_request(spans, seed + k);
        match export(&mut grpc, &req).await {
            Ok(_) => sent.acked.push(req),
            Err(status) => sent.refused.push((req, status.code())),
        }
    }
    sent
}

/// Sends `count` requests and waits until their records are rows: the table exists and the sink is
/// writing before a case injects its fault.
pub async fn send_written(
    fx: &Fixture,
    addr: &str,
    count: u64,
    spans: usize,
    seed: u64,
) -> Vec<ExportTraceServiceRequest> {
    let sent = send(addr, count, spans, seed).await;
    assert_eq!(sent.acked.len() as u64, count, "acknowledged before any fault");
    let n = pg::expected_records(&sent.acked).len() as i64;
    assert_eq!(
        pg::wait_for_rows(&fx.admin, &fx.schema, n, Duration::from_secs(30)).await,
        n,
        "written before any fault"
    );
    sent.acked
}

/// Sends one request until it is acknowledged (every refusal must be retryable), for at most
/// `timeout`; returns the refusals seen.
pub async fn send_until_acked(addr: &str, req: &ExportTraceServiceRequest, timeout: Duration) -> Vec<tonic::Code> {
    let mut grpc = grpc_channel(addr).await;
    let until = Instant::now() + timeout;
    let mut refusals = Vec::new();
    loop {
        match export(&mut grpc, req).await {
            Ok(_) => return refusals,
            Err(s) => {
                assert!(
                    matches!(s.code(), tonic::Code::Unavailable | tonic::Code::ResourceExhausted),
                    "a refusal must be retryable: {s:?}"
                );
                refusals.push(s.code());
                assert!(
                    Instant::now() < until,
                    "not acknowledged within {timeout:?}: {refusals:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Polls `probe` until it returns true, for at most `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + timeout;
    while !probe().await {
        assert!(Instant::now() < until, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (trace id, span id) of every row, or none while the sink has not created the table yet.
async fn row_ids(fx: &Fixture) -> BTreeSet<(Vec<u8>, Vec<u8>)> {
    match fx
        .admin
        .query(&format!("SELECT trace_id, span_id FROM {}.llm_calls", fx.schema), &[])
        .await
    {
        Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => BTreeSet::new(),
        Err(e) => panic!("reading the rows: {e}"),
    }
}

/// The totals a case (or a soak) reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Records of acknowledged requests.
    pub acknowledged: usize,
    /// Rows in the table.
    pub stored: usize,
    /// Acknowledged records not in the table.
    pub missing: usize,
    /// Rows beyond the first of their (trace, span).
    pub duplicated: usize,
}

/// Waits (up to `timeout`) until every record of `acked` is in the table, then counts.
pub async fn totals(fx: &Fixture, acked: &[ExportTraceServiceRequest], timeout: Duration) -> Totals {
    let want: BTreeSet<_> = pg::record_ids(&pg::expected_records(acked));
    let until = Instant::now() + timeout;
    loop {
        let have = row_ids(fx).await;
        let missing = want.difference(&have).count();
        if missing == 0 || Instant::now() > until {
            let (n, distinct) = pg::counts(&fx.admin, &fx.schema).await;
            return Totals {
                acknowledged: want.len(),
                stored: n as usize,
                missing,
                duplicated: (n - distinct) as usize,
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The end of every case: every acknowledged record stored once, nothing else stored (beyond
/// `extra` records sent but not acknowledged, which may or may not be there), and llmhub's own
/// counters agreeing with the table.
pub async fn assert_kept(fx: &Fixture, acked: &[ExportTraceServiceRequest], metrics: Option<SocketAddr>) -> Totals {
    let t = totals(fx, acked, Duration::from_secs(60)).await;
    eprintln!("{t:?}");
    assert_eq!(t.missing, 0, "acknowledged spans missing: {t:?}");
    assert_eq!(t.duplicated, 0, "rows stored twice: {t:?}");
    assert_eq!(
        t.stored, t.acknowledged,
        "exactly the acknowledged records are stored: {t:?}"
    );
    if let Some(addr) = metrics {
        // The rows can be in the table before the sink has counted them: a batch whose COMMIT
        // went through but whose answer was lost is written again (after its backoff) and then
        // found already there, counted as duplicates. Wait for the counters to settle.
        let counters = || async {
            let m = scrape(addr).await;
            (
                (written(&m) + sum(&m, "llmhub_postgres_rows_duplicate_total", &[])) as usize,
                records_counted(&m) as usize,
            )
        };
        let until = Instant::now() + Duration::from_secs(30);
        let mut seen = counters().await;
        while seen != (t.stored, t.stored) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            seen = counters().await;
        }
        assert_eq!(
            seen.0, t.stored,
            "llmhub_postgres_rows_written_total (+ rows_duplicate_total) agrees with the table"
        );
        assert_eq!(seen.1, t.stored, "records counted once each, as stored");
    }
    t
}

/// Records (model calls, agent and tool steps) llmhub counted in its metrics.
pub fn records_counted(m: &[Sample]) -> f64 {
    sum(m, "llmhub_processor_spans_total", &[])
        - sum(m, "llmhub_processor_spans_total", &[("llmhub_span_role", "not_genai")])
}

/// Rows written, as llmhub counts them.
pub fn written(m: &[Sample]) -> f64 {
    sum(m, "llmhub_postgres_rows_written_total", &[])
}

/// Lines of a dead-letter file (0 when there is none).
pub fn dead_letters(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Runs a command that must succeed (mount and friends).
pub fn run(cmd: &str, args: &[&str]) {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small tmpfs mounted on `dir` (root only), unmounted when dropped.
pub struct SmallDisk {
    pub dir: PathBuf,
}

impl SmallDisk {
    pub fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("mount point");
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
                &dir.display().to_string(),
            ],
        );
        SmallDisk { dir: dir.to_owned() }
    }
}

/// A directory (on the machine's ext4 disk) whose files and entries are made immutable
/// (`chattr +i`): every write, even by root through a file already open, fails with EPERM, and no
/// file can be created in it. Undone when dropped.
pub struct Unwritable {
    dir: PathBuf,
}

impl Unwritable {
    pub fn make(dir: &Path) -> Unwritable {
        run("chattr", &["-R", "+i", &dir.display().to_string()]);
        Unwritable { dir: dir.to_owned() }
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .args(["-R", "-i", &self.dir.display().to_string()])
            .status();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l", &self.dir.display().to_string()])
            .status();
    }
}

//! The sink at work: records are encoded and queued as the OTLP request is handled; `pool_size`
//! writers, each with its own connection, take batches from the queue and COPY them into
//! `llm_calls`.
//!
//! A batch is first sent as a plain binary COPY (the fastest path). If a row of it already exists
//! (a retry after a lost acknowledgement, or a replay after a crash) the batch goes again through
//! a temporary table and `INSERT ... ON CONFLICT DO NOTHING`, so retries never duplicate. If the
//! database rejects a row's values, the batch is split in halves until the rejected rows are
//! alone; those go to the dead-letter file with the database's message, the rest are written.
//! Connection failures are retried with exponential backoff and full jitter, forever: the queue
//! holds the rows meanwhile and refuses new spans once full.

mod copy;
mod setup;
mod writer;

use copy::*;
use setup::*;
use writer::*;

use super::config::{Partitioning, PostgresConfig};
use super::connect::Connector;
use super::error::{classify, Failure, SinkError};
use super::metrics::SinkMetrics;
use super::row::{self, COPY_HEADER, COPY_TRAILER};
use super::schema::{self, Layout, MIGRATIONS, SCHEMA_LOCK};
use crate::delivery::{backoff, now_ms, DeadLetters};
use crate::queue::{PushError, Queue};
use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use llmhub_core::LlmCall;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Where the table lives and how it is laid out, learned once per process.
#[derive(Debug, Clone)]
struct Target {
    table: String,
    schema: String,
    layout: Layout,
    /// Row-level security applies to the sink's role, and PostgreSQL refuses `COPY FROM` into such a
    /// table: every batch goes through the staging table and `INSERT`.
    staged_only: bool,
    /// The extension's `llm_rollup_pending`, when the sink's role may insert into it: each batch
    /// notes the hours it wrote there in its own transaction, so the rollups pick up late rows and
    /// backfills.
    pending: Option<String>,
}

struct Shared {
    cfg: PostgresConfig,
    connector: Connector,
    queue: Arc<Queue>,
    metrics: Arc<SinkMetrics>,
    target: tokio::sync::Mutex<Option<Target>>,
    /// Days (since the epoch) whose partition is known to exist.
    partitions: Mutex<HashSet<i64>>,
    dead_letters: DeadLetters,
    copy_sql: Mutex<Option<(String, String)>>,
    healthy: AtomicBool,
}

/// The running sink.
pub struct PostgresSink {
    shared: Arc<Shared>,
    writers: Mutex<Vec<JoinHandle<()>>>,
    stop: CancellationToken,
}

/// A refused push, for the receivers to answer with a retryable status.
pub type Refusal = PushError;

impl PostgresSink {
    /// Opens the queue (replaying what an earlier run left) and starts the writers. Does not
    /// wait for the database: while it is unreachable, rows wait in the queue.
    pub fn start(cfg: &PostgresConfig, metrics: Arc<SinkMetrics>) -> Result<Arc<PostgresSink>, SinkError> {
        let connector = Connector::new(cfg)?;
        let queue = Queue::open("postgres", &cfg.queue)?;
        let dead_letters = DeadLetters::new(
            cfg.dead_letter_file.as_deref(),
            cfg.queue.directory.as_deref(),
            "postgres-dead-letters.jsonl",
        );
        tracing::info!(target = %connector.describe(), writers = cfg.pool_size,
            queue = ?cfg.queue.directory, durability = ?cfg.queue.durability, "PostgreSQL sink starting");
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            connector,
            queue,
            metrics,
            target: tokio::sync::Mutex::new(None),
            partitions: Mutex::new(HashSet::new()),
            dead_letters,
            copy_sql: Mutex::new(None),
            // Healthy until a write fails: an idle sink has nothing to report.
            healthy: AtomicBool::new(true),
        });
        let stop = CancellationToken::new();
        let mut writers = Vec::new();
        for id in 0..cfg.pool_size {
            writers.push(tokio::spawn(writer(shared.clone(), id, stop.clone())));
        }
        writers.push(tokio::spawn(monitor(shared.clone(), stop.clone())));
        Ok(Arc::new(PostgresSink {
            shared,
            writers: Mutex::new(writers),
            stop,
        }))
    }

    /// Counts the memory queue's rows against the process-wide memory budget.
    pub fn use_budget(&self, budget: Arc<llmhub_server::budget::MemoryBudget>) {
        self.shared.queue.use_budget(budget);
    }

    /// Whether the queue can take another request (checked before the request is processed,
    /// so a refused request leaves no trace and its retry is not mistaken for a duplicate).
    pub fn admit(&self) -> Result<(), Refusal> {
        self.shared.queue.admit()
    }

    /// Encodes and queues the records; with `durability: wal`, returns once they are on disk.
    /// Records that cannot be encoded go to the dead-letter file.
    pub async fn submit(&self, records: &[LlmCall]) -> Result<(), Refusal> {
        self.push(self.encode(records)?).await
    }

    /// Encodes records as COPY tuples for [`PostgresSink::push`]; records that cannot be encoded
    /// go to the dead-letter file (synced). Fails only when such a dead letter cannot be written:
    /// the request is then refused with a retryable status rather than acknowledged.
    pub fn encode(&self, records: &[LlmCall]) -> Result<Vec<Bytes>, Refusal> {
        let mut buf = BytesMut::with_capacity(1024);
        let mut items = Vec::with_capacity(records.len());
        for r in records {
            buf.clear();
            match row::encode(r, &mut buf) {
                // Each row in an allocation of its own size: rows wait in the queue as long as
                // the database takes, and small allocations of like sizes are reused as rows come
                // and go. One large allocation per request, held until its last row is written,
                // fragments the heap under a long backlog (TESTING.md, overload).
                Ok(()) => items.push(Bytes::copy_from_slice(&buf)),
                Err(e) => self
                    .shared
                    .dead_letter_record(r, &e.to_string())
                    .map_err(|source| PushError::Io {
                        queue: "postgres dead letters".to_owned(),
                        source,
                    })?,
            }
        }
        Ok(items)
    }

    /// Queues encoded rows; with `durability: wal`, returns once they are on disk.
    pub async fn push(&self, items: Vec<Bytes>) -> Result<(), Refusal> {
        self.shared.queue.push(items).await
    }

    /// Rows inserted since start.
    pub fn rows_written(&self) -> u64 {
        self.shared.metrics.rows_written.get()
    }

    /// Whether the last write attempt succeeded, or none was made yet.
    pub fn healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
    }

    /// Why `/readyz` should say the sink is not ready: its queue cannot take rows (requests are
    /// refused), or its last write failed (it is retrying). `None` while neither holds.
    pub fn problem(&self) -> Option<String> {
        if let Err(e) = self.admit() {
            return Some(e.to_string());
        }
        (!self.healthy()).then(|| "the last write failed; retrying".to_owned())
    }

    /// Stops taking rows and lets the writers drain the queue until `deadline`; what is left
    /// stays in the on-disk queue for the next start (a memory queue loses it, and says so).
    pub async fn shutdown(&self, deadline: Duration) {
        self.shared.queue.close();
        let handles: Vec<_> = match self.writers.lock() {
            Ok(mut w) => w.drain(..).collect(),
            Err(p) => p.into_inner().drain(..).collect(),
        };
        let until = tokio::time::Instant::now() + deadline;
        let drained = async {
            while self.shared.queue.stats().items > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let _ = tokio::time::timeout_at(until, drained).await;
        // Writers give up their leases at once when stopped (a write in progress is abandoned;
        // its rows stay queued); one more second for them to do so, then they are aborted.
        self.stop.cancel();
        let joined = tokio::time::Instant::now() + Duration::from_secs(1);
        for mut h in handles {
            if tokio::time::timeout_at(joined, &mut h).await.is_err() {
                h.abort();
            }
        }
        let left = self.shared.queue.stats().items;
        if left > 0 {
            if self.shared.cfg.queue.directory.is_some() {
                tracing::warn!(
                    rows = left,
                    "PostgreSQL sink stopped with rows queued on disk; they are written at the next start"
                );
            } else {
                self.shared.metrics.rows_lost.inc_by(left);
                tracing::error!(rows = left, "PostgreSQL sink stopped with rows in its memory queue; they are lost (set queue.directory to keep them)");
            }
        }
    }
}

impl Shared {
    fn dead_letter_record(&self, record: &LlmCall, reason: &str) -> std::io::Result<()> {
        self.write_dead_letter(serde_json::json!({
            "reason": reason,
            "record": record.to_json(),
        }))
    }

    fn dead_letter_row(&self, tuple: &[u8], sqlstate: &str, reason: &str) -> std::io::Result<()> {
        let key = row::key(tuple);
        self.write_dead_letter(serde_json::json!({
            "sqlstate": sqlstate,
            "reason": reason,
            "trace_id": key.as_ref().map(|k| hex::encode(&k.trace_id)),
            "span_id": key.as_ref().map(|k| hex::encode(&k.span_id)),
            "time_unix_us": key.as_ref().map(|k| k.time_us),
            "copy_tuple_hex": hex::encode(tuple),
        }))
    }

    fn write_dead_letter(&self, line: serde_json::Value) -> std::io::Result<()> {
        self.dead_letters.write(line)?;
        self.metrics.dead_letters.inc();
        Ok(())
    }

    fn copy_statements(&self, t: &Target) -> (String, String) {
        let mut g = match self.copy_sql.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.get_or_insert_with(|| {
            let cols = schema::column_list();
            (
                format!("COPY {} ({cols}) FROM STDIN WITH (FORMAT binary)", t.table),
                format!(
                    "INSERT INTO {} ({cols}) SELECT {cols} FROM llmhub_stage ON CONFLICT {}DO NOTHING",
                    t.table,
                    // Naming the conflict target makes PostgreSQL apply the SELECT policies to the
                    // new rows, which a role under row-level security fails; prepare() made sure
                    // the primary key is the only unique index then.
                    if t.staged_only {
                        ""
                    } else {
                        "(trace_id, span_id, time) "
                    }
                ),
            )
        })
        .clone()
    }
}

/// Keeps the queue gauges current (partitions ahead of the clock are made with each batch).
async fn monitor(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => shared.metrics.observe_queue(&shared.queue.stats()),
        }
    }
}

impl std::fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSink")
            .field("target", &self.shared.connector)
            .finish()
    }
}

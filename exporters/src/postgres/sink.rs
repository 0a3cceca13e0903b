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

use super::config::{Partitioning, PostgresConfig};
use super::connect::Connector;
use super::error::{classify, Failure, SinkError};
use super::metrics::SinkMetrics;
use super::row::{self, COPY_HEADER, COPY_TRAILER};
use super::schema::{self, Layout, MIGRATIONS};
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
/// Advisory lock key serializing schema changes between replicas ("llmhub" in ASCII).
/// Advisory lock for migrations and partitions; the extension's `llm_create_partitions` takes the
/// same one (119212947830114).
const SCHEMA_LOCK: i64 = 0x6c6c_6d68_7562;

/// Where the table lives and how it is laid out, learned once per process.
#[derive(Debug, Clone)]
struct Target {
    table: String,
    schema: String,
    layout: Layout,
    /// The `llm_analytics` extension owns the table: partitions are made by its
    /// `llm_create_partitions` (a security-definer function, so the sink's role needs no ownership).
    extension: bool,
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

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Finds (or creates and migrates) `llm_calls`. Runs on a writer's connection.
async fn prepare(shared: &Shared, client: &Client) -> Result<Target, Retry> {
    let mut guard = shared.target.lock().await;
    if let Some(t) = guard.as_ref() {
        return Ok(t.clone());
    }
    // The extension's schema owns llm_calls once the extension provides the table; an extension
    // without it (an older version) leaves the table to the sink's own migrations.
    let ext_schema: Option<String> = client
        .query_opt(
            "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
             WHERE e.extname = 'llm_analytics'
               AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'llm_calls')",
            &[],
        )
        .await?
        .map(|r| r.get(0));
    let has_timescale = client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'", &[])
        .await?
        .is_some();
    let schema = match &ext_schema {
        Some(s) => s.clone(),
        None => shared.cfg.schema.clone(),
    };
    let qs = quote_ident(&schema);
    if ext_schema.is_none() {
        migrate(shared, client, &qs, has_timescale).await?;
    } else {
        tracing::info!(schema = %schema, "llm_analytics extension installed: writing into its llm_calls");
    }
    let layout = detect_layout(client, &schema, has_timescale).await?;
    let table = format!("{qs}.llm_calls");
    let staged_only: bool = client
        .query_one("SELECT row_security_active($1::text::regclass)", &[&table])
        .await?
        .get(0);
    if staged_only {
        let other_unique: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_index WHERE indrelid = $1::text::regclass AND indisunique AND NOT indisprimary",
                &[&table],
            )
            .await?
            .get(0);
        if other_unique > 0 {
            tracing::error!(table = %table, "llm_calls has a unique index besides its primary key, and row-level security applies to the sink's role: \
                the sink cannot name its conflict target and could drop rows that differ; it will not write until the index is dropped \
                (or the role owns the table or has BYPASSRLS)");
            return Err(Retry(
                Failure::Transient,
                "llm_calls has a unique index besides its primary key, and row-level security applies to the sink's role".to_owned(),
            ));
        }
    }
    let pending = match &ext_schema {
        None => None,
        Some(_) => {
            let name = format!("{qs}.llm_rollup_pending");
            let row = client
                .query_one(
                    "SELECT to_regclass($1) IS NOT NULL, to_regclass($1) IS NOT NULL AND has_table_privilege($1, 'INSERT')",
                    &[&name],
                )
                .await?;
            let (exists, may): (bool, bool) = (row.get(0), row.get(1));
            if exists && !may {
                tracing::warn!(table = %name, "the sink's role may not insert into llm_rollup_pending: rows older than the rollups' late window \
                    (late arrivals, backfills) will not reach the rollups until llm_refresh_rollups_range covers them; run llm_grant_writer for the role");
            }
            may.then_some(name)
        }
    };
    let t = Target {
        table,
        schema: qs,
        layout,
        extension: ext_schema.is_some(),
        staged_only,
        pending,
    };
    tracing::info!(table = %t.table, layout = ?layout, staged_only, "PostgreSQL sink target ready");
    *guard = Some(t.clone());
    Ok(t)
}

async fn migrate(shared: &Shared, client: &Client, qs: &str, has_timescale: bool) -> Result<(), tokio_postgres::Error> {
    let layout = match shared.cfg.partitioning {
        Partitioning::Auto if has_timescale => Layout::Hypertable,
        Partitioning::Auto | Partitioning::Native => Layout::NativePartitions,
        Partitioning::Timescaledb => Layout::Hypertable,
    };
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({SCHEMA_LOCK});
             CREATE SCHEMA IF NOT EXISTS {qs};
             CREATE TABLE IF NOT EXISTS {qs}.llmhub_schema_migrations (
                 version integer PRIMARY KEY,
                 description text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now());"
        ))
        .await?;
    let result = async {
        let applied: Vec<i32> = client
            .query(&format!("SELECT version FROM {qs}.llmhub_schema_migrations"), &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for m in MIGRATIONS {
            if applied.contains(&m.version) {
                continue;
            }
            let sql = (m.sql)(layout).replace("{schema}", qs);
            let desc = m.description.replace('\'', "''");
            client
                .batch_execute(&format!(
                    "BEGIN;\n{sql}\nINSERT INTO {qs}.llmhub_schema_migrations (version, description) VALUES ({}, '{desc}');\nCOMMIT;",
                    m.version
                ))
                .await?;
            tracing::info!(version = m.version, description = m.description, ?layout, "migration applied");
        }
        Ok(())
    }
    .await;
    let _ = client
        .batch_execute(&format!("ROLLBACK; SELECT pg_advisory_unlock({SCHEMA_LOCK});"))
        .await;
    result
}

async fn detect_layout(client: &Client, schema: &str, has_timescale: bool) -> Result<Layout, tokio_postgres::Error> {
    let kind: Option<i8> = client
        .query_opt(
            "SELECT c.relkind::\"char\" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'llm_calls'",
            &[&schema],
        )
        .await?
        .map(|r| r.get(0));
    if kind == Some(b'p' as i8) {
        return Ok(Layout::NativePartitions);
    }
    if has_timescale {
        let hyper = client
            .query_opt(
                "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = $1 AND hypertable_name = 'llm_calls'",
                &[&schema],
            )
            .await?
            .is_some();
        if hyper {
            return Ok(Layout::Hypertable);
        }
    }
    Ok(Layout::Plain)
}

/// Creates the daily partitions for `days` (and the days ahead of today) that are not known to exist.
async fn ensure_partitions(
    shared: &Shared,
    client: &Client,
    t: &Target,
    days: impl IntoIterator<Item = i64>,
) -> Result<(), tokio_postgres::Error> {
    if t.layout != Layout::NativePartitions {
        return Ok(());
    }
    let today = (now_ms() / 86_400_000) as i64;
    let ahead = (today..=today + i64::from(shared.cfg.partitions_ahead_days)).collect::<Vec<_>>();
    let missing: Vec<i64> = {
        let known = match shared.partitions.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut m: Vec<i64> = days.into_iter().chain(ahead).filter(|d| !known.contains(d)).collect();
        m.sort_unstable();
        m.dedup();
        m
    };
    if missing.is_empty() {
        return Ok(());
    }
    if t.extension {
        let days: Vec<String> = missing.iter().map(|d| schema::iso_date(*d)).collect();
        client
            .execute(
                &format!(
                    "SELECT {}.llm_create_partitions(d, d) FROM unnest($1::text[]::date[]) d",
                    t.schema
                ),
                &[&days],
            )
            .await?;
    } else {
        let mut sql = format!("BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK});\n");
        for d in &missing {
            sql.push_str(&schema::partition_sql(&t.schema, *d));
            sql.push_str(";\n");
        }
        sql.push_str("COMMIT;");
        client.batch_execute(&sql).await?;
    }
    let mut known = match shared.partitions.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    known.extend(missing);
    Ok(())
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

/// Result of writing one batch.
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    inserted: u64,
    duplicates: u64,
    dead: u64,
}

/// An error that stops the current attempt (the batch is retried as a whole).
struct Retry(Failure, String);

impl From<tokio_postgres::Error> for Retry {
    fn from(e: tokio_postgres::Error) -> Retry {
        Retry(classify(&e), describe(&e))
    }
}

struct Conn {
    client: Client,
    staged: bool,
    /// The direct `COPY ... FROM STDIN` statement, prepared once per connection.
    copy: Option<tokio_postgres::Statement>,
    /// The server process serving this connection.
    backend_pid: i32,
}

async fn writer(shared: Arc<Shared>, id: usize, stop: CancellationToken) {
    let linger = Duration::from_millis(shared.cfg.batch_linger_ms);
    let mut conn: Option<Conn> = None;
    // The server process of a connection given up at the write deadline: it may still hold an
    // open transaction (and the locks of the rows it inserted) for as long as the server does not
    // notice the connection is gone, which would block the retry of those very rows. It is ended
    // from the next connection.
    let mut stale: Option<i32> = None;
    loop {
        let lease = match shared.queue.pop(shared.cfg.batch_max_rows, linger, &stop).await {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                tracing::error!(writer = id, error = %e, "cannot read the queue; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut attempt: u32 = 0;
        let deadline = Duration::from_millis(shared.cfg.write_timeout_ms);
        loop {
            let started = Instant::now();
            // Bounded by the write deadline (a connection that stops answering without closing),
            // and given up at once when the sink stops: the lease goes back (a disk queue keeps
            // it for the next start; the database never confirmed it, and whatever it did commit
            // is skipped as a duplicate then).
            let outcome = tokio::select! {
                r = tokio::time::timeout(deadline, write_batch(&shared, &mut conn, &mut stale, &lease.items)) => match r {
                    Ok(r) => r,
                    Err(_) => {
                        stale = conn.take().map(|c| c.backend_pid);
                        Err(Retry(
                            Failure::Connection,
                            format!("no answer from the database within write_timeout_ms ({} ms); reconnecting", shared.cfg.write_timeout_ms),
                        ))
                    }
                },
                _ = stop.cancelled() => {
                    shared.queue.release(lease);
                    return;
                }
            };
            match outcome {
                Ok(w) => {
                    shared.metrics.batch_duration.observe(started.elapsed().as_secs_f64());
                    shared.metrics.rows_written.inc_by(w.inserted);
                    shared.metrics.rows_duplicate.inc_by(w.duplicates);
                    shared.healthy.store(true, Ordering::Relaxed);
                    shared.queue.ack(lease);
                    break;
                }
                Err(Retry(kind, msg)) => {
                    shared.healthy.store(false, Ordering::Relaxed);
                    if matches!(kind, Failure::Connection | Failure::Transient) {
                        conn = None;
                    }
                    shared.metrics.retry(kind);
                    attempt = attempt.saturating_add(1);
                    let delay = backoff(shared.cfg.retry_initial_ms, shared.cfg.retry_max_ms, attempt);
                    if attempt == 1 || attempt.is_power_of_two() {
                        tracing::warn!(writer = id, attempt, error = %msg, retry_in = ?delay, rows = lease.items.len(),
                            "PostgreSQL write failed; retrying");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.cancelled() => {
                            shared.queue.release(lease);
                            return;
                        }
                    }
                }
            }
        }
    }
}

async fn write_batch(
    shared: &Shared,
    conn: &mut Option<Conn>,
    stale: &mut Option<i32>,
    rows: &[Bytes],
) -> Result<Written, Retry> {
    if conn.as_ref().is_some_and(|c| c.client.is_closed()) {
        *conn = None;
    }
    if conn.is_none() {
        let client = shared.connector.connect().await.map_err(|e| {
            Retry(
                Failure::Connection,
                format!("connect to {}: {e}", shared.connector.describe()),
            )
        })?;
        // The server gives up on a statement at the same deadline as the writer does.
        let backend_pid: i32 = client
            .simple_query(&format!(
                "SET statement_timeout = {}; SELECT pg_backend_pid()",
                shared.cfg.write_timeout_ms
            ))
            .await
            .map_err(|e| Retry(classify(&e), format!("setting up the connection: {}", describe(&e))))?
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
                _ => None,
            })
            .unwrap_or(0);
        *conn = Some(Conn {
            client,
            staged: false,
            copy: None,
            backend_pid,
        });
    }
    let Some(c) = conn.as_mut() else {
        return Err(Retry(Failure::Connection, "no connection".to_owned()));
    };
    if let Some(pid) = stale.take() {
        // A role may end its own sessions; if this one is gone already, nothing happens.
        match c.client.query_one("SELECT pg_terminate_backend($1)", &[&pid]).await {
            Ok(r) if r.get::<_, bool>(0) => {
                tracing::warn!(
                    backend_pid = pid,
                    "ended the server session of a connection that stopped answering"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(backend_pid = pid, error = %describe(&e),
                "cannot end the server session of a connection that stopped answering; its open transaction may delay this write"),
        }
    }
    let target = prepare(shared, &c.client)
        .await
        .map_err(|Retry(kind, msg)| Retry(kind, format!("preparing llm_calls: {msg}")))?;
    let days: HashSet<i64> = rows
        .iter()
        .filter_map(|r| row::time_us(r))
        .map(|t| t.div_euclid(MICROS_PER_DAY))
        .collect();
    ensure_partitions(shared, &c.client, &target, days)
        .await
        .map_err(|e| Retry(classify(&e), format!("creating partitions: {}", describe(&e))))?;
    // Bisect iteratively: a stack of slices still to write.
    let mut written = Written::default();
    let mut todo: Vec<&[Bytes]> = vec![rows];
    while let Some(part) = todo.pop() {
        match copy(shared, c, &target, part, target.staged_only).await {
            Ok(n) => {
                // (Only the staged path can skip rows: a plain COPY inserts all or fails.)
                written.inserted += n;
                written.duplicates += part.len() as u64 - n;
            }
            Err(e) => match classify(&e) {
                Failure::Duplicate => match copy(shared, c, &target, part, true).await {
                    Ok(n) => {
                        written.inserted += n;
                        written.duplicates += part.len() as u64 - n;
                    }
                    Err(e2) if classify(&e2) == Failure::RowRejected => {
                        split(shared, part, &e2, &mut todo, &mut written)?
                    }
                    Err(e2) => return Err(retry(shared, &e2)),
                },
                Failure::RowRejected => split(shared, part, &e, &mut todo, &mut written)?,
                _ => return Err(retry(shared, &e)),
            },
        }
    }
    Ok(written)
}

/// A batch-level failure to retry; a missing partition (dropped by someone else) also makes the sink
/// forget which partitions it believed exist, so they are created again.
fn retry(shared: &Shared, e: &tokio_postgres::Error) -> Retry {
    let kind = classify(e);
    if kind == Failure::MissingPartition {
        if let Ok(mut g) = shared.partitions.lock() {
            g.clear();
        }
    }
    Retry(kind, describe(e))
}

/// Bisects a rejected part, or dead-letters its one row. A dead letter that cannot be written
/// fails the attempt: the batch stays queued and is tried again (rows written meanwhile are then
/// skipped as duplicates).
fn split<'a>(
    shared: &Shared,
    part: &'a [Bytes],
    e: &tokio_postgres::Error,
    todo: &mut Vec<&'a [Bytes]>,
    w: &mut Written,
) -> Result<(), Retry> {
    if part.len() == 1 {
        let (code, msg) = match e.as_db_error() {
            Some(db) => (db.code().code().to_owned(), describe(e)),
            None => (String::new(), e.to_string()),
        };
        shared
            .dead_letter_row(&part[0], &code, &msg)
            .map_err(|io| Retry(Failure::Transient, format!("cannot write the dead-letter file: {io}")))?;
        w.dead += 1;
    } else {
        let (a, b) = part.split_at(part.len() / 2);
        todo.push(b);
        todo.push(a);
    }
    Ok(())
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(": ");
                s.push_str(d);
            }
            s
        }
        None => e.to_string(),
    }
}

/// One COPY of `rows`: straight into the table, or (`dedup`) through the staging table with
/// `ON CONFLICT DO NOTHING`. Returns the rows inserted.
async fn copy(
    shared: &Shared,
    c: &mut Conn,
    t: &Target,
    rows: &[Bytes],
    dedup: bool,
) -> Result<u64, tokio_postgres::Error> {
    let (copy_sql, insert_sql) = shared.copy_statements(t);
    let data = copy_chunks(rows);
    let commit = commit_noting_hours(t, rows);
    if !dedup {
        return copy_committed(c, &copy_sql, data, &commit).await;
    }
    if !c.staged {
        // The columns spelled out rather than LIKE llm_calls, which needs SELECT on the whole
        // table: the extension's writer role may select only the key columns.
        c.client
            .batch_execute(&format!(
                "CREATE TEMP TABLE IF NOT EXISTS llmhub_stage ({}) ON COMMIT DELETE ROWS",
                schema::column_definitions()
            ))
            .await?;
        c.staged = true;
    }
    let stage_copy = format!(
        "COPY llmhub_stage ({}) FROM STDIN WITH (FORMAT binary)",
        schema::column_list()
    );
    let client = &c.client;
    client.batch_execute("BEGIN").await?;
    let result = async {
        let sink = client.copy_in::<_, Bytes>(stage_copy.as_str()).await?;
        futures_util::pin_mut!(sink);
        send_chunks(sink.as_mut(), data).await?;
        sink.finish().await?;
        let n = client.execute(insert_sql.as_str(), &[]).await?;
        // The notes and COMMIT in one message.
        client.batch_execute(&commit).await?;
        Ok(n)
    }
    .await;
    if result.is_err() && !client.is_closed() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result
}

/// `COMMIT`, preceded (when the extension keeps `llm_rollup_pending` and the role may write it)
/// by the note of the UTC hours `rows` fall in: one simple-query message, so the note costs no
/// round trip, and it commits with the rows or not at all (an error stops the message before
/// `COMMIT`).
fn commit_noting_hours(t: &Target, rows: &[Bytes]) -> String {
    const MICROS_PER_HOUR: i64 = 3_600_000_000;
    let Some(pending) = &t.pending else {
        return "COMMIT".to_owned();
    };
    let hours: std::collections::BTreeSet<i64> = rows
        .iter()
        .filter_map(|r| row::time_us(r))
        .map(|us| us.div_euclid(MICROS_PER_HOUR))
        .collect();
    if hours.is_empty() {
        return "COMMIT".to_owned();
    }
    let values: Vec<String> = hours.iter().map(|h| format!("(to_timestamp({}))", h * 3600)).collect();
    format!("INSERT INTO {pending} (hour) VALUES {}; COMMIT", values.join(", "))
}

/// Size of one CopyData message: under the allocator's mmap threshold (so the buffers are reused,
/// not mapped and zeroed afresh), and over tokio-postgres's 4 KiB, under which it copies items
/// into a buffer of its own.
const COPY_CHUNK: usize = 64 * 1024;

/// The binary COPY data of `rows` (header, tuples, trailer) in chunks of about [`COPY_CHUNK`].
fn copy_chunks(rows: &[Bytes]) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut buf = BytesMut::with_capacity(COPY_CHUNK);
    buf.extend_from_slice(COPY_HEADER);
    for r in rows {
        if buf.len() + r.len() > COPY_CHUNK && !buf.is_empty() {
            chunks.push(buf.split().freeze());
            buf.reserve(COPY_CHUNK);
        }
        buf.extend_from_slice(r);
    }
    buf.extend_from_slice(COPY_TRAILER);
    chunks.push(buf.freeze());
    chunks
}

/// Sends COPY data chunk by chunk.
async fn send_chunks<S>(sink: std::pin::Pin<&mut S>, chunks: Vec<Bytes>) -> Result<(), tokio_postgres::Error>
where
    S: futures_util::Sink<Bytes, Error = tokio_postgres::Error> + ?Sized,
{
    let mut sink = sink;
    for chunk in chunks {
        sink.as_mut().feed(chunk).await?;
    }
    sink.flush().await
}

/// The direct path: `BEGIN`, binary COPY, `COMMIT`, confirmed by COMMIT's answer.
///
/// A COPY on its own runs in an implicit transaction that commits at the Sync following CopyDone,
/// and tokio-postgres reports success at the COPY's CommandComplete, before that commit: a failure
/// at commit (a deferred constraint, a serialization failure, a server shutting down, the
/// connection lost) went unseen and the batch was counted as written. In an explicit transaction,
/// COMMIT's own answer is the confirmation.
///
/// Two round trips per batch: `BEGIN` goes out with the COPY's Bind/Execute (the statement is
/// prepared once per connection), and `COMMIT` right behind CopyDone. The connection sends a
/// request only once the one before it is complete, so the order on the wire is fixed. COMMIT of
/// a transaction a failed COPY aborted answers ROLLBACK without an error, which is why the COPY's
/// own result decides first.
async fn copy_committed(
    c: &mut Conn,
    copy_sql: &str,
    data: Vec<Bytes>,
    commit: &str,
) -> Result<u64, tokio_postgres::Error> {
    let stmt = match &c.copy {
        Some(s) => s.clone(),
        None => {
            let s = c.client.prepare(copy_sql).await?;
            c.copy = Some(s.clone());
            s
        }
    };
    let client = &c.client;
    let (begun, sink) = tokio::join!(client.batch_execute("BEGIN"), client.copy_in::<_, Bytes>(&stmt));
    let result = async {
        // Nothing is sent into a COPY outside the transaction: dropped unfinished, it fails.
        begun?;
        let sink = sink?;
        futures_util::pin_mut!(sink);
        send_chunks(sink.as_mut(), data).await?;
        let (copied, committed) = tokio::join!(sink.finish(), client.batch_execute(commit));
        let n = copied?;
        committed?;
        Ok(n)
    }
    .await;
    if result.is_err() && !client.is_closed() {
        // Whatever state the failure left (a transaction aborted, or none), the connection is
        // clean for the next statement.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result
}

impl std::fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSink")
            .field("target", &self.shared.connector)
            .finish()
    }
}

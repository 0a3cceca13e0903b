//! The writers: each takes batches from the queue, writes them in one transaction, and decides
//! what a failure means (retry on the same or a new connection, bisect, dead-letter).

use super::*;

/// Result of writing one batch.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Written {
    pub(super) inserted: u64,
    pub(super) duplicates: u64,
    pub(super) dead: u64,
}

/// An error that stops the current attempt (the batch is retried as a whole).
pub(super) struct Retry(pub(super) Failure, pub(super) String);

impl From<tokio_postgres::Error> for Retry {
    fn from(e: tokio_postgres::Error) -> Retry {
        Retry(classify(&e), describe(&e))
    }
}

pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) staged: bool,
    /// The direct `COPY ... FROM STDIN` statement, prepared once per connection.
    pub(super) copy: Option<tokio_postgres::Statement>,
    /// The server process serving this connection.
    pub(super) backend_pid: i32,
}

pub(super) async fn writer(shared: Arc<Shared>, id: usize, stop: CancellationToken) {
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

pub(super) async fn write_batch(
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
pub(super) fn retry(shared: &Shared, e: &tokio_postgres::Error) -> Retry {
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
pub(super) fn split<'a>(
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

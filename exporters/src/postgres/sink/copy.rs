//! One batch on the wire: `BEGIN`, binary `COPY` in 64 KiB chunks and `COMMIT`, pipelined, and
//! the deduplicating fallback; counted only on `COMMIT`'s answer.

use super::*;

pub(super) fn describe(e: &tokio_postgres::Error) -> String {
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
pub(super) async fn copy(
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
pub(super) fn commit_noting_hours(t: &Target, rows: &[Bytes]) -> String {
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
pub(super) const COPY_CHUNK: usize = 64 * 1024;

/// The binary COPY data of `rows` (header, tuples, trailer) in chunks of about [`COPY_CHUNK`].
pub(super) fn copy_chunks(rows: &[Bytes]) -> Vec<Bytes> {
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
pub(super) async fn send_chunks<S>(sink: std::pin::Pin<&mut S>, chunks: Vec<Bytes>) -> Result<(), tokio_postgres::Error>
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
pub(super) async fn copy_committed(
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

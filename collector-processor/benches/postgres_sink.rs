//! PostgreSQL sink throughput beside the database's own limit, from the same run.
//!
//! Rows: the records llmhub makes of `realistic_request(512, seed)` batches. Two cases, each into
//! a fresh `llm_calls` created by the sink's own migration (same layout, same indexes), on the
//! server at `LLMHUB_TEST_PG15_URL` (or `LLMHUB_BENCH_PG_URL`):
//!
//! - **raw COPY (baseline)**: the rows pre-encoded, sent as binary COPY in batches of the sink's
//!   batch size over as many connections as the sink uses: what the server can take.
//! - **sink**: `PostgresSink::submit` of the same records in 512-record requests, as the receivers
//!   call it (encode, queue, batch, COPY), timed until the sink reports every row written.
//!
//! `cargo bench -p llmhub --bench postgres_sink` (rows: `LLMHUB_BENCH_ROWS`, default 200000;
//! rounds, each raw then sink: `LLMHUB_BENCH_ROUNDS`, default 3).
//! Under `cargo test` it runs a small smoke pass.

use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use llmhub_core::LlmCall;
use llmhub_exporters::postgres::row::{self, COPY_HEADER, COPY_TRAILER};
use llmhub_exporters::postgres::schema::column_list;
use llmhub_exporters::postgres::{PostgresConfig, PostgresSink, SinkMetrics};
use llmhub_testkit::env_num;
use llmhub_testkit::realistic_request;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

#[path = "../tests/common/mod.rs"]
mod common;
use common::pg;

fn records(n: usize) -> Vec<LlmCall> {
    let p = pg::expected_processor();
    let mut out = Vec::with_capacity(n);
    let mut seed = 0;
    while out.len() < n {
        out.extend(
            p.process(&realistic_request(512, 10_000 + seed), llmhub::metrics::Transport::Grpc)
                .records,
        );
        seed += 1;
    }
    out.truncate(n);
    out
}

async fn sink_for(url: &str, schema: &str) -> (Arc<PostgresSink>, Arc<SinkMetrics>) {
    let cfg = PostgresConfig {
        url: Some(url.to_owned()),
        schema: schema.to_owned(),
        ..PostgresConfig::default()
    };
    let metrics = Arc::new(SinkMetrics::new(&mut Registry::default()));
    (
        PostgresSink::start(&cfg, metrics.clone()).expect("sink starts"),
        metrics,
    )
}

async fn wait_written(m: &SinkMetrics, n: u64) {
    while m.rows_written.get() + m.rows_duplicate.get() < n {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Creates `schema.llm_calls` through the sink's migration (with partitions for every day the
/// rows touch), then empties it.
async fn prepare(url: &str, schema: &str, rows: &[LlmCall]) {
    let client = pg::connect(url).await;
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .expect("drop");
    let (sink, m) = sink_for(url, schema).await;
    // One record per distinct day, so every partition exists before timing starts.
    let mut days = std::collections::BTreeMap::new();
    for r in rows {
        days.entry(r.start_unix_nano / 86_400_000_000_000)
            .or_insert_with(|| r.clone());
    }
    let warm: Vec<LlmCall> = days.into_values().collect();
    sink.submit(&warm).await.expect("warm-up");
    wait_written(&m, warm.len() as u64).await;
    sink.shutdown(Duration::from_secs(5)).await;
    client
        .batch_execute(&format!("TRUNCATE {schema}.llm_calls"))
        .await
        .expect("truncate");
    client.batch_execute("CHECKPOINT").await.expect("checkpoint");
}

async fn raw_copy(url: &str, schema: &str, tuples: &[Bytes], batch: usize, conns: usize) -> f64 {
    let chunks: Vec<Vec<Bytes>> = tuples.chunks(batch).map(|c| c.to_vec()).collect();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let chunks = Arc::new(chunks);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
        tokio::spawn(conn);
        let (next, chunks) = (next.clone(), chunks.clone());
        let sql = format!(
            "COPY {schema}.llm_calls ({}) FROM STDIN WITH (FORMAT binary)",
            column_list()
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(chunk) = chunks.get(k) else { break };
                let mut data = BytesMut::new();
                data.extend_from_slice(COPY_HEADER);
                for t in chunk {
                    data.extend_from_slice(t);
                }
                data.extend_from_slice(COPY_TRAILER);
                let sink = client.copy_in::<_, Bytes>(sql.as_str()).await.expect("copy");
                futures_util::pin_mut!(sink);
                sink.send(data.freeze()).await.expect("send");
                sink.finish().await.expect("finish");
            }
        }));
    }
    for t in tasks {
        t.await.expect("copy task");
    }
    tuples.len() as f64 / started.elapsed().as_secs_f64()
}

async fn through_sink(url: &str, schema: &str, recs: &[LlmCall]) -> f64 {
    let (sink, m) = sink_for(url, schema).await;
    let started = Instant::now();
    for chunk in recs.chunks(512) {
        sink.submit(chunk).await.expect("queued");
    }
    wait_written(&m, recs.len() as u64).await;
    let rate = recs.len() as f64 / started.elapsed().as_secs_f64();
    sink.shutdown(Duration::from_secs(5)).await;
    rate
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = if bench {
        env_num("LLMHUB_BENCH_ROWS", 200_000)
    } else {
        5_000
    } as usize;
    // Both sides without TLS (the baseline's client has none), so the ratio is the sink's own cost.
    let url = std::env::var("LLMHUB_BENCH_PG_URL")
        .or_else(|_| std::env::var("LLMHUB_TEST_PG15_URL"))
        .map(|u| format!("{u}{}sslmode=disable", if u.contains('?') { '&' } else { '?' }))
        .expect("set LLMHUB_TEST_PG15_URL (scripts/servers.sh env) or LLMHUB_BENCH_PG_URL");
    let recs = records(n);
    let tuples: Vec<Bytes> = recs
        .iter()
        .map(|r| {
            let mut b = BytesMut::new();
            row::encode(r, &mut b).expect("encodes");
            b.freeze()
        })
        .collect();
    let avg = tuples.iter().map(Bytes::len).sum::<usize>() / tuples.len();
    let defaults = PostgresConfig::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let rounds = if bench { env_num("LLMHUB_BENCH_ROUNDS", 3) } else { 1 };
        println!(
            "postgres_sink: {n} rows ({avg} bytes each as COPY tuples), batch {}, {} connections, {rounds} rounds",
            defaults.batch_max_rows, defaults.pool_size
        );
        let mut ratios = Vec::new();
        for round in 1..=rounds {
            prepare(&url, "bench_raw", &recs).await;
            let raw = raw_copy(&url, "bench_raw", &tuples, defaults.batch_max_rows, defaults.pool_size).await;
            prepare(&url, "bench_sink", &recs).await;
            let sink = through_sink(&url, "bench_sink", &recs).await;
            let client = pg::connect(&url).await;
            let (rows, distinct) = pg::counts(&client, "bench_sink").await;
            assert_eq!((rows, distinct), (n as i64, n as i64), "every row written once");
            println!(
                "round {round}: raw binary COPY {raw:>9.0} rows/s | sink {sink:>9.0} rows/s | ratio {:.3}",
                sink / raw
            );
            ratios.push(sink / raw);
        }
        let client = pg::connect(&url).await;
        // What the last round's rows take on disk, table, TOAST and indexes, over every partition
        // or chunk (docs/scaling.md: bytes per million calls).
        let bytes: i64 = client
            .query_one(
                "SELECT (CASE WHEN c.relkind = 'p' \
                    THEN (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(c.oid)) \
                    ELSE pg_total_relation_size(c.oid) + coalesce((SELECT sum(pg_total_relation_size(inhrelid)) \
                         FROM pg_inherits WHERE inhparent = c.oid), 0) END)::bigint \
                 FROM pg_class c WHERE c.oid = 'bench_sink.llm_calls'::regclass",
                &[],
            )
            .await
            .expect("size")
            .get(0);
        println!(
            "on disk: {bytes} bytes for {n} rows, {:.0} bytes per row, {:.2} GB per million rows",
            bytes as f64 / n as f64,
            bytes as f64 / n as f64 * 1e6 / 1e9
        );
        client
            .batch_execute("DROP SCHEMA bench_raw CASCADE; DROP SCHEMA bench_sink CASCADE")
            .await
            .expect("cleanup");
        ratios.sort_by(f64::total_cmp);
        println!("median ratio {:.3}", ratios[ratios.len() / 2]);
    });
}

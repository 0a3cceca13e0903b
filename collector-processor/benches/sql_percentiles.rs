//! Approximate percentiles in SQL beside the exact and the established ones, same server, same run:
//! `approx_percentile(p, quantile_summary_agg(v))` (llm_analytics) vs `percentile_cont` (exact,
//! PostgreSQL) vs `tdigest_percentile` (the tdigest extension, Debian `postgresql-15-tdigest`), over
//! the same table of skewed values, reporting the median time of five runs of each and the
//! relative error of each estimate at p50, p95 and p99 against `percentile_cont`. The runs are
//! interleaved (one of each method per round, each after 2 s of quiet), so a slow spell of a shared
//! machine falls on all methods rather than on one; `sum(v)` over the same rows is timed beside
//! them as the floor any aggregate over the column pays.
//!
//! ```sh
//! (cd pg-extension && cargo pgrx install --release --pg-config /usr/bin/pg_config)
//! eval "$(scripts/servers.sh env)"
//! cargo bench -p llmhub --bench sql_percentiles          # 10 000 000 rows (LLMHUB_BENCH_ROWS)
//! ```
//! Under `cargo test` it runs once over 100 000 rows (with whatever build of the extension
//! `cargo pgrx test` installed).

use llmhub_testkit::env_num;
use std::time::Instant;
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> Client {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    c
}

/// For each query, the median wall time (s) of `runs` executions and its three values; each round
/// runs every query once, in order, each after `settle` of quiet (the exact sort writes and
/// removes temporary files whose write-back would otherwise land on the query after it).
async fn timed<const N: usize>(
    c: &Client,
    sqls: [&str; N],
    runs: usize,
    settle: std::time::Duration,
) -> [(f64, [f64; 3]); N] {
    let mut times: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    let mut values = [[0.0; 3]; N];
    for _ in 0..runs {
        for (k, sql) in sqls.iter().enumerate() {
            tokio::time::sleep(settle).await;
            let t = Instant::now();
            let row = c.query_one(*sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            times[k].push(t.elapsed().as_secs_f64());
            values[k] = [row.get(0), row.get(1), row.get(2)];
        }
    }
    std::array::from_fn(|k| {
        times[k].sort_by(f64::total_cmp);
        (times[k][times[k].len() / 2], values[k])
    })
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rows = if bench {
        env_num("LLMHUB_BENCH_ROWS", 10_000_000)
    } else {
        100_000
    };
    let runs = if bench { 5 } else { 1 };
    let base = std::env::var("LLMHUB_BENCH_PG_URL")
        .or_else(|_| std::env::var("LLMHUB_TEST_PG15_URL"))
        .expect("set LLMHUB_TEST_PG15_URL (scripts/servers.sh env) or LLMHUB_BENCH_PG_URL");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let admin = connect(&base).await;
        admin
            .batch_execute("DROP DATABASE IF EXISTS llmhub_bench WITH (FORCE)")
            .await
            .expect("drop");
        admin.batch_execute("CREATE DATABASE llmhub_bench").await.expect("create");
        let c = connect(&base.replace("/llmhub_test", "/llmhub_bench")).await;
        c.batch_execute("CREATE EXTENSION llm_analytics; CREATE EXTENSION tdigest;")
            .await
            .expect("extensions (install llm_analytics with cargo pgrx, tdigest with apt)");
        let t = Instant::now();
        // Lognormal latencies (median ≈ 0.8 s, long right tail) from a deterministic generator.
        c.batch_execute(&format!(
            "CREATE UNLOGGED TABLE lat AS
             SELECT exp(-0.2 + 0.9 * sqrt(-2 * ln(((g * 7919) % 100003 + 0.5) / 100003.0))
                        * cos(2 * pi() * (((g * 104729) % 99991 + 0.5) / 99991.0))) AS v
             FROM generate_series(1::bigint, {rows}) g"
        ))
        .await
        .expect("data");
        c.batch_execute("VACUUM ANALYZE lat").await.expect("vacuum");
        println!("sql_percentiles: {rows} rows loaded in {:.1} s; median of {runs} runs each", t.elapsed().as_secs_f64());
        let [(exact_t, exact), (ours_t, ours), (td_t, td), (scan_t, _)] = timed(
            &c,
            [
                "SELECT x[1], x[2], x[3] FROM (SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY v) x FROM lat) q",
                "SELECT approx_percentile(0.5, s), approx_percentile(0.95, s), approx_percentile(0.99, s)
                 FROM (SELECT quantile_summary_agg(v) s FROM lat) q",
                "SELECT x[1], x[2], x[3] FROM (SELECT tdigest_percentile(v, 100, ARRAY[0.5, 0.95, 0.99]) x FROM lat) q",
                // The floor any aggregate over the column pays: the same scan with a built-in sum.
                "SELECT sum(v), 0::float8, 0::float8 FROM lat",
            ],
            runs,
            std::time::Duration::from_secs(if bench { 2 } else { 0 }),
        )
        .await;
        let err = |v: [f64; 3]| -> [f64; 3] { [0, 1, 2].map(|k| (v[k] - exact[k]).abs() / exact[k]) };
        let (e_ours, e_td) = (err(ours), err(td));
        println!("| method | time (s) | vs percentile_cont | rel. error p50 | p95 | p99 |");
        println!("|---|---|---|---|---|---|");
        println!("| percentile_cont (exact) | {exact_t:.3} | 1.0x | 0 | 0 | 0 |");
        println!(
            "| approx_percentile(quantile_summary_agg) | {ours_t:.3} | {:.1}x faster | {:.4}% | {:.4}% | {:.4}% |",
            exact_t / ours_t,
            e_ours[0] * 100.0,
            e_ours[1] * 100.0,
            e_ours[2] * 100.0
        );
        println!(
            "| tdigest_percentile (compression 100) | {td_t:.3} | {:.1}x faster | {:.4}% | {:.4}% | {:.4}% |",
            exact_t / td_t,
            e_td[0] * 100.0,
            e_td[1] * 100.0,
            e_td[2] * 100.0
        );
        println!("| sum(v) (the scan alone, reference) | {scan_t:.3} | {:.1}x faster | | | |", exact_t / scan_t);
        println!("llm_analytics vs tdigest: {:.2}x faster", td_t / ours_t);
        assert!(e_ours.iter().all(|e| *e <= 0.01), "relative error above 1%: {e_ours:?}");
        drop(c);
        admin
            .batch_execute("DROP DATABASE llmhub_bench WITH (FORCE)")
            .await
            .expect("cleanup");
    });
}

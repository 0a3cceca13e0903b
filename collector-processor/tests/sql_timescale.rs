//! The `llm_analytics` extension inside real PostgreSQL 17 + TimescaleDB (the Debian 13 chroot):
//! built on the host against the chroot's headers and installed into it by the README's test
//! command (`scripts/pg17-config`), then used on a hypertable with parallel plans forced.
//!
//! `#[ignore]`d for a bare `cargo test`; the README's test command installs the extension, starts
//! the server and runs it.

mod common;

use common::pg::{self, Server};

/// A database of its own per test, so the sink tests' database never sees the extension.
async fn fresh_database(name: &str) -> tokio_postgres::Client {
    let admin = pg::connect(&Server::Timescale.url()).await;
    // Two statements: a multi-statement string runs as one transaction, which these refuse.
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop database");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let url = Server::Timescale.url().replace("/llmhub_test", &format!("/{name}"));
    let c = pg::connect(&url).await;
    c.batch_execute(
        "SET client_min_messages = warning;
         CREATE EXTENSION timescaledb; CREATE EXTENSION llm_analytics;",
    )
    .await
    .expect("CREATE EXTENSION llm_analytics (installed by scripts/test.sh into the chroot)");
    c
}

const DATA: &str = "
    CREATE TABLE calls (time timestamptz NOT NULL, model text NOT NULL, latency_s double precision);
    SELECT create_hypertable('calls', 'time', chunk_time_interval => interval '6 hours');
    INSERT INTO calls
    SELECT timestamptz '2026-11-20 00:00:00+00' + (g * interval '1 second'),
           (ARRAY['gpt-4o', 'claude-sonnet-4', 'gemini-2.5-pro'])[1 + g % 3],
           exp(-0.2 + 0.9 * sqrt(-2 * ln(((g * 7919) % 100003 + 0.5) / 100003.0))
               * cos(2 * pi() * (((g * 104729) % 99991 + 0.5) / 99991.0)))
    FROM generate_series(1::bigint, 172800) g;
    ANALYZE calls;";

const PARALLEL: &str = "
    SET debug_parallel_query = on; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
    SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 17 + TimescaleDB with llm_analytics installed (scripts/test.sh)"]
async fn summaries_on_a_hypertable_in_parallel_plans() {
    let c = fresh_database("llmhub_sql_parallel").await;
    c.batch_execute(DATA).await.expect("hypertable with data");
    let chunks: i64 = c
        .query_one("SELECT count(*) FROM show_chunks('calls')", &[])
        .await
        .expect("chunks")
        .get(0);
    assert!(chunks >= 8, "{chunks} chunks");
    c.batch_execute(PARALLEL).await.expect("parallel settings");
    let plan: Vec<String> = c
        .query(
            "EXPLAIN SELECT model, quantile_summary_agg(latency_s) FROM calls GROUP BY model",
            &[],
        )
        .await
        .expect("explain")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("Partial") && plan.contains("Gather"),
        "not a parallel plan:\n{plan}"
    );
    // Per model: within 1% of percentile_cont at p50, p95, p99.
    let rows = c
        .query(
            "SELECT model, p,
                    approx_percentile(p, quantile_summary_agg(latency_s)) AS approx,
                    percentile_cont(p) WITHIN GROUP (ORDER BY latency_s) AS exact
             FROM calls, unnest(ARRAY[0.5, 0.95, 0.99]::float8[]) p GROUP BY model, p",
            &[],
        )
        .await
        .expect("percentiles");
    assert_eq!(rows.len(), 9);
    for r in &rows {
        let (model, p, approx, exact): (String, f64, f64, f64) = (r.get(0), r.get(1), r.get(2), r.get(3));
        let rel = (approx - exact).abs() / exact;
        assert!(
            rel <= 0.01,
            "{model} p{p}: approx {approx}, exact {exact}, relative error {rel}"
        );
    }
    // Hourly summaries (time_bucket) rolled up give the percentiles of one summary over the rows.
    let same: bool = c
        .query_one(
            "WITH hourly AS (
               SELECT time_bucket('1 hour', time) AS hour, quantile_summary_agg(latency_s) AS s FROM calls GROUP BY 1)
             SELECT bool_and(approx_percentile(p, (SELECT rollup(s) FROM hourly))
                           = approx_percentile(p, (SELECT quantile_summary_agg(latency_s) FROM calls)))
             FROM unnest(ARRAY[0.01, 0.5, 0.9, 0.95, 0.99, 0.999]::float8[]) p",
            &[],
        )
        .await
        .expect("rollup")
        .get(0);
    assert!(same);
}

/// Continuous aggregates: the Apache edition shipped by Debian refuses them for any aggregate, so
/// here the test can only check that refusal is TimescaleDB's licence, not the summary; with the
/// Timescale-licensed edition it checks the continuous aggregate's percentiles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 17 + TimescaleDB with llm_analytics installed (scripts/test.sh)"]
async fn continuous_aggregates_take_the_summary_where_the_edition_allows() {
    let c = fresh_database("llmhub_sql_cagg").await;
    c.batch_execute(DATA).await.expect("hypertable with data");
    let made = c
        .batch_execute(
            "CREATE MATERIALIZED VIEW calls_hourly WITH (timescaledb.continuous) AS
             SELECT time_bucket('1 hour', time) AS hour, model, quantile_summary_agg(latency_s) AS latency
             FROM calls GROUP BY 1, 2 WITH NO DATA;
             CALL refresh_continuous_aggregate('calls_hourly', NULL, NULL);",
        )
        .await;
    match made {
        Err(e) => {
            let msg = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
            assert!(
                msg.contains("not supported under the current \"apache\" license"),
                "continuous aggregate refused for another reason than the edition: {msg}"
            );
            eprintln!("TimescaleDB Apache edition: continuous aggregates unavailable ({msg})");
        }
        Ok(()) => {
            let n: i64 = c
                .query_one("SELECT num_vals(rollup(latency)) FROM calls_hourly", &[])
                .await
                .expect("query the continuous aggregate")
                .get(0);
            assert_eq!(n, 172_800);
        }
    }
}

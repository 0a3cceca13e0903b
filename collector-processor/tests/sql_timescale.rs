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
    let c = pg::connect(&pg::fresh_database(Server::Timescale, name).await).await;
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

/// `n` model calls in the last half hour (at least a minute old, so inside complete minutes), with
/// random ids; tenants, models and errors vary.
fn insert_recent_calls(n: u32) -> String {
    format!(
        "INSERT INTO llm_calls (time, end_time, trace_id, span_id, tenant, service_name, environment, dialect, scope_name,
            role, operation, provider, request_model, response_model, model, finish_reasons, status,
            usage_reported, counts_usage, input_uncached_tokens, cache_read_tokens, cache_write_tokens,
            cache_write_1h_tokens, output_tokens, reasoning_tokens, duration_s, ttft_s,
            ttft_from_server, tpot_from_server, price_status, cost_usd)
         SELECT t, t + d * interval '1 second', decode(md5(random()::text || g), 'hex'), decode(substr(md5(random()::text), 1, 16), 'hex'),
                (ARRAY['acme', 'globex'])[1 + g % 2], 'svc', 'prod', 'otel_genai', 'test', 'model_call', 'chat', 'openai',
                m, m, m, '{{stop}}', CASE WHEN g % 13 = 0 THEN 'error' ELSE 'ok' END, true, true,
                1000 + g % 700, 0, 0, 0, 50 + g % 400, 0, d, d / 5, false, false, 'priced', (1000 + g % 700) * 0.0000025
           FROM (SELECT g, (ARRAY['gpt-4o', 'gpt-4o-mini'])[1 + g % 2] AS m,
                        now() - (60 + random() * 1740) * interval '1 second' AS t, 0.05 + random() * 3 AS d
                   FROM generate_series(1, {n}) g) s"
    )
}

/// The extension's `llm_calls` is a hypertable here; rollup refreshes racing concurrent inserts
/// end, after a final refresh, with exactly the raw rows' totals in every rollup table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 17 + TimescaleDB with llm_analytics installed (scripts/test.sh)"]
async fn rollup_refreshes_racing_inserts_on_the_hypertable_end_exact() {
    let c = fresh_database("llmhub_sql_rollups").await;
    let url = Server::Timescale.url().replace("/llmhub_test", "/llmhub_sql_rollups");
    let hyper: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'llm_calls')",
            &[],
        )
        .await
        .expect("hypertables")
        .get(0);
    assert!(hyper, "llm_calls is a hypertable when TimescaleDB is installed first");
    c.batch_execute(
        "CREATE TABLE other_calls (time timestamptz NOT NULL, v int);
         INSERT INTO other_calls SELECT now() - g * interval '1 hour', g FROM generate_series(1, 100) g;",
    )
    .await
    .expect("plain table");
    let convert = "SELECT llm_to_hypertable('other_calls')";
    let first: bool = c.query_one(convert, &[]).await.expect("convert").get(0);
    let second: bool = c.query_one(convert, &[]).await.expect("convert again").get(0);
    assert!(first && !second, "an existing table becomes a hypertable once");
    let moved: i64 = c
        .query_one("SELECT count(*) FROM other_calls", &[])
        .await
        .expect("rows")
        .get(0);
    assert_eq!(moved, 100, "its rows moved into chunks");

    c.batch_execute(&insert_recent_calls(5_000)).await.expect("first rows");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..2 {
        let (url, stop) = (url.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let w = pg::connect(&url).await;
            let mut inserted = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                w.batch_execute(&insert_recent_calls(300)).await.expect("insert");
                inserted += 300;
            }
            inserted
        }));
    }
    let refresher = {
        let url = url.clone();
        tokio::spawn(async move {
            let r = pg::connect(&url).await;
            for _ in 0..6 {
                r.batch_execute("SELECT llm_refresh_rollups()").await.expect("refresh");
            }
        })
    };
    // A second refresher at the same time: the advisory lock queues them.
    for _ in 0..6 {
        c.batch_execute("SELECT llm_refresh_rollups()").await.expect("refresh");
    }
    refresher.await.expect("refresher");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut inserted = 5_000;
    for w in writers {
        inserted += w.await.expect("writer");
    }
    assert!(inserted > 5_000, "inserts ran while refreshing");
    c.batch_execute("SELECT llm_refresh_rollups()")
        .await
        .expect("final refresh");
    let raw = "SELECT concat_ws(' ', count(*), count(*) FILTER (WHERE status = 'error'), sum(input_uncached_tokens), sum(cost_usd), count(ttft_s))
               FROM llm_calls WHERE time < date_trunc('minute', now(), 'UTC')";
    let want: String = c.query_one(raw, &[]).await.expect("raw").get(0);
    for table in ["llm_rollup_1m", "llm_rollup_1h", "llm_rollup_1d"] {
        let got: String = c
            .query_one(
                &format!(
                    "SELECT concat_ws(' ', sum(calls), sum(errors), sum(input_uncached_tokens), sum(cost_usd), num_vals(rollup(ttft_s))) FROM {table}"
                ),
                &[],
            )
            .await
            .expect("rollup totals")
            .get(0);
        assert_eq!(got, want, "{table} against the raw rows ({inserted} inserted)");
    }
}

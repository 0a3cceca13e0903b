//! Rollup refresh time per million new rows: `llm_refresh_rollups_range` (minute rollups with four
//! quantile summaries per group, then hours merged from minutes and days from hours) over a day of
//! new `llm_calls` rows, beside the baseline of one plain `GROUP BY` of the same rows into the same
//! minute groups with the same sums and no summaries, same server, same run.
//!
//! ```sh
//! (cd pg-extension && cargo pgrx install --release --pg-config /usr/bin/pg_config)
//! eval "$(scripts/servers.sh env)"
//! cargo bench -p llmhub --bench sql_rollups          # 1 000 000 rows (LLMHUB_BENCH_ROWS)
//! ```
//! Under `cargo test` it runs once over 20 000 rows and checks the rollups' totals.

use llmhub_testkit::env_num;
use std::time::Instant;
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> Client {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    c
}

/// `rows` model calls over the 24 hours before the last complete minute: 3 tenants × 2 services ×
/// 2 environments × 4 models, lognormal latencies.
fn insert(rows: u64) -> String {
    format!(
        "INSERT INTO llm_calls (time, end_time, trace_id, span_id, tenant, service_name, environment, dialect, scope_name,
            role, operation, provider, request_model, response_model, model, finish_reasons, status,
            usage_reported, counts_usage, input_uncached_tokens, cache_read_tokens, cache_write_tokens,
            cache_write_1h_tokens, output_tokens, reasoning_tokens, duration_s, ttft_s, output_tokens_per_s,
            ttft_from_server, tpot_from_server, price_status, cost_usd)
         SELECT t, t + d * interval '1 second', decode(lpad(to_hex(g), 32, '0'), 'hex'), decode(lpad(to_hex(g), 16, '0'), 'hex'),
                (ARRAY['acme', 'globex', 'initech'])[1 + g % 3], 'svc-' || (g % 2), (ARRAY['prod', 'staging'])[1 + (g / 7) % 2],
                'otel_genai', 'bench', 'model_call', 'chat', 'openai', m, m, m, '{{stop}}',
                CASE WHEN g % 41 = 0 THEN 'error' ELSE 'ok' END, true, true,
                800 + g % 900, g % 300, 0, 0, 80 + g % 500, 0, d, d / 5, (80 + g % 500) / d, false, false, 'priced',
                ((800 + g % 900) * 2.5 + (80 + g % 500) * 10) / 1000000
           FROM (SELECT g, (ARRAY['gpt-4o', 'gpt-4o-mini', 'o3', 'gpt-4.1'])[1 + (g / 3) % 4] AS m,
                        date_trunc('minute', now()) - interval '1 minute' - (g::double precision / {rows}) * interval '24 hours' AS t,
                        exp(-0.2 + 0.9 * sqrt(-2 * ln(((g * 7919) % 100003 + 0.5) / 100003.0))
                            * cos(2 * pi() * (((g * 104729) % 99991 + 0.5) / 99991.0))) AS d
                   FROM generate_series(1::bigint, {rows}) g) s"
    )
}

const BASELINE: &str = "
    CREATE TEMP TABLE plain_1m AS
    SELECT date_trunc('minute', time, 'UTC') AS bucket, tenant, service_name, environment, provider, model, operation,
           count(*) AS calls, count(*) FILTER (WHERE status = 'error') AS errors,
           sum(input_uncached_tokens) AS input_uncached_tokens, sum(cache_read_tokens) AS cache_read_tokens,
           sum(output_tokens) AS output_tokens, sum(cost_usd) AS cost_usd, sum(duration_s) AS duration_s_sum
      FROM llm_calls GROUP BY 1, 2, 3, 4, 5, 6, 7";

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rows = if bench {
        env_num("LLMHUB_BENCH_ROWS", 1_000_000)
    } else {
        20_000
    };
    let runs = if bench { 3 } else { 1 };
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
            .batch_execute("DROP DATABASE IF EXISTS llmhub_bench_rollups WITH (FORCE)")
            .await
            .expect("drop");
        admin
            .batch_execute("CREATE DATABASE llmhub_bench_rollups")
            .await
            .expect("create");
        let c = connect(&base.replace("/llmhub_test", "/llmhub_bench_rollups")).await;
        c.batch_execute("CREATE EXTENSION llm_analytics; SELECT llm_create_partitions(current_date - 2, current_date);")
            .await
            .expect("extension (install llm_analytics with cargo pgrx)");
        let t = Instant::now();
        c.batch_execute(&insert(rows)).await.expect("rows");
        c.batch_execute("VACUUM ANALYZE llm_calls").await.expect("analyze");
        eprintln!("{rows} rows in llm_calls in {:.1} s", t.elapsed().as_secs_f64());
        let (mut ours, mut plain) = (Vec::new(), Vec::new());
        let mut minute_rows = 0i64;
        for _ in 0..runs {
            let t = Instant::now();
            minute_rows = c
                .query_one(
                    "SELECT llm_refresh_rollups_range(now() - interval '25 hours', now())",
                    &[],
                )
                .await
                .expect("refresh")
                .get(0);
            ours.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            c.batch_execute(BASELINE).await.expect("baseline");
            plain.push(t.elapsed().as_secs_f64());
            c.batch_execute("DROP TABLE plain_1m").await.expect("drop baseline");
        }
        ours.sort_by(f64::total_cmp);
        plain.sort_by(f64::total_cmp);
        let (o, p) = (ours[ours.len() / 2], plain[plain.len() / 2]);
        let per_million = o / (rows as f64 / 1e6);
        println!("rows: {rows}, minute groups: {minute_rows}, runs: {runs} (median)");
        println!("| what | time (s) | per million rows (s) | vs plain GROUP BY |");
        println!("|---|---|---|---|");
        println!(
            "| plain GROUP BY into minute groups, sums only (**baseline**) | {p:.3} | {:.3} | 1.00x |",
            p / (rows as f64 / 1e6)
        );
        println!(
            "| `llm_refresh_rollups_range` (1m with 4 summaries, 1h, 1d) | {o:.3} | {per_million:.3} | {:.2}x the time |",
            o / p
        );
        let check: (i64, i64) = {
            let r = c
                .query_one(
                    "SELECT (SELECT sum(calls)::bigint FROM llm_rollup_1d), (SELECT num_vals(rollup(duration_s)) FROM llm_rollup_1h)",
                    &[],
                )
                .await
                .expect("totals");
            (r.get(0), r.get(1))
        };
        assert_eq!(check, (rows as i64, rows as i64), "day calls and hour summaries hold every row");
        drop(c);
        admin
            .batch_execute("DROP DATABASE llmhub_bench_rollups WITH (FORCE)")
            .await
            .expect("cleanup");
    });
}

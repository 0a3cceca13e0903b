//! llm_analytics: analytic SQL over LLM calls on PostgreSQL and TimescaleDB.
//!
//! Each SQL function is a thin layer over pure Rust in the workspace's crates (`llmhub-sketch` for
//! quantile summaries), so the extension computes what the processor computes.

::pgrx::pg_module_magic!(name, version);

pub mod analytics;
pub mod budgets;
pub mod catalog;
pub mod cost;
pub mod retention;
pub mod rollups;
pub mod schema;
pub mod summary;

/// The first column of a one-row query as text (tests).
#[cfg(any(test, feature = "pg_test"))]
pub fn sql_text(sql: &str) -> Option<String> {
    pgrx::Spi::get_one::<String>(sql).expect("query runs")
}

/// Test data for `llm_calls`: model calls spread over the last `hours` hours (ending one minute
/// ago), tenants acme/globex/NULL, three models, lognormal-ish latencies, every 17th an error.
#[cfg(any(test, feature = "pg_test"))]
pub fn insert_calls_sql(n: u32, hours: u32) -> String {
    insert_calls_ending_sql(1, n, hours, "date_trunc('minute', now()) - interval '1 minute'")
}

/// Like [`insert_calls_sql`], with ids from `first` and the newest call at `end` (an SQL
/// timestamptz expression).
#[cfg(any(test, feature = "pg_test"))]
pub fn insert_calls_ending_sql(first: u64, n: u32, hours: u32, end: &str) -> String {
    let last = first + u64::from(n) - 1;
    format!(
        "INSERT INTO llm_calls (time, end_time, trace_id, span_id, tenant, service_name, environment, dialect, scope_name,
            role, operation, provider, request_model, response_model, model, finish_reasons, status, error_class,
            usage_reported, counts_usage, input_uncached_tokens, cache_read_tokens, cache_write_tokens,
            cache_write_1h_tokens, output_tokens, reasoning_tokens, duration_s, ttft_s, output_tokens_per_s,
            ttft_from_server, tpot_from_server, price_status, cost_usd)
         SELECT t, t + d * interval '1 second', decode(lpad(to_hex(g), 32, '0'), 'hex'), decode(lpad(to_hex(g), 16, '0'), 'hex'),
                (ARRAY['acme', 'globex', NULL])[g % 3 + 1], 'svc-' || (g % 2), 'prod', 'otel_genai', 'test',
                'model_call', 'chat', 'openai', m, m, m, '{{stop}}', CASE WHEN g % 17 = 0 THEN 'error' ELSE 'ok' END,
                CASE WHEN g % 17 = 0 THEN 'rate_limited' END,
                true, true, 1000 + g % 500, g % 200, 0, 0, 100 + g % 300, 0, d, d / 4, (100 + g % 300) / d,
                false, false, 'priced', ((1000 + g % 500) * 2.5 + (100 + g % 300) * 10) / 1000000
           FROM (SELECT g, (ARRAY['gpt-4o', 'gpt-4o-mini', 'o3'])[g % 3 + 1] AS m,
                        {end} - (((g - {first})::double precision / {n}) * {hours} * interval '1 hour') AS t,
                        exp(-0.5 + 0.8 * sqrt(-2 * ln(((g * 7919) % 100003 + 0.5) / 100003.0))
                            * cos(2 * pi() * (((g * 104729) % 99991 + 0.5) / 99991.0))) AS d
                   FROM generate_series({first}::bigint, {last}) g) s"
    )
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn one_f64(sql: &str) -> Option<f64> {
        Spi::get_one::<f64>(sql).expect("query runs")
    }

    /// Skewed data: lognormal latencies made from a deterministic generator in SQL.
    const SETUP: &str = "
        CREATE TEMP TABLE lat AS
        SELECT g AS id, (g % 24) AS hour,
               exp(-0.2 + 0.9 * sqrt(-2 * ln(((g * 7919) % 100003 + 0.5) / 100003.0))
                   * cos(2 * pi() * (((g * 104729) % 99991 + 0.5) / 99991.0))) AS v
        FROM generate_series(1::bigint, 200000) g;";

    #[pg_test]
    fn percentiles_are_within_the_declared_error_of_percentile_cont() {
        Spi::run(SETUP).expect("setup");
        for p in [0.5, 0.95, 0.99] {
            let exact = one_f64(&format!(
                "SELECT percentile_cont({p}) WITHIN GROUP (ORDER BY v) FROM lat"
            ))
            .unwrap();
            let approx = one_f64(&format!(
                "SELECT approx_percentile({p}, quantile_summary_agg(v)) FROM lat"
            ))
            .unwrap();
            let rel = (approx - exact).abs() / exact;
            assert!(
                rel <= 0.01,
                "p{p}: approx {approx}, exact {exact}, relative error {rel}"
            );
        }
        let n = Spi::get_one::<i64>("SELECT num_vals(quantile_summary_agg(v)) FROM lat").unwrap();
        assert_eq!(n, Some(200_000));
    }

    /// Bimodal (fast cache hits and slow misses) and heavy-tailed (Pareto, shape 1.2) data.
    #[pg_test]
    fn percentiles_of_bimodal_and_heavy_tailed_data_are_within_the_declared_error() {
        Spi::run(
            "CREATE TEMP TABLE skewed AS
             SELECT 'bimodal' AS shape,
                    (CASE WHEN g % 10 < 7 THEN 0.05 + ((g * 7919) % 1000) / 20000.0 ELSE 2.0 + ((g * 104729) % 1000) / 250.0 END)::float8 AS v
               FROM generate_series(1::bigint, 100000) g
             UNION ALL
             SELECT 'pareto', 0.1 * power(((g * 7919) % 100003 + 0.5) / 100003.0, -1 / 1.2)
               FROM generate_series(1::bigint, 100000) g",
        )
        .expect("setup");
        for shape in ["bimodal", "pareto"] {
            for p in [0.5, 0.95, 0.99] {
                let exact = one_f64(&format!(
                    "SELECT percentile_disc({p}) WITHIN GROUP (ORDER BY v) FROM skewed WHERE shape = '{shape}'"
                ))
                .unwrap();
                let approx = one_f64(&format!(
                    "SELECT approx_percentile({p}, quantile_summary_agg(v)) FROM skewed WHERE shape = '{shape}'"
                ))
                .unwrap();
                let rel = (approx - exact).abs() / exact;
                assert!(
                    rel <= 0.005,
                    "{shape} p{p}: approx {approx}, exact {exact}, relative error {rel}"
                );
            }
        }
    }

    #[pg_test]
    fn a_rollup_of_hourly_summaries_equals_one_summary_of_all_rows() {
        Spi::run(SETUP).expect("setup");
        let same = Spi::get_one::<bool>(
            "WITH h AS (SELECT hour, quantile_summary_agg(v) s FROM lat GROUP BY hour)
             SELECT bool_and(approx_percentile(p, (SELECT rollup(s) FROM h)) = approx_percentile(p, (SELECT quantile_summary_agg(v) FROM lat)))
             FROM unnest(ARRAY[0.01, 0.5, 0.9, 0.95, 0.99, 0.999]) p",
        )
        .unwrap();
        assert_eq!(same, Some(true));
    }

    #[pg_test]
    fn parallel_plans_give_the_same_summary() {
        // A plain table: temporary tables are never scanned by parallel workers.
        Spi::run(&SETUP.replace("CREATE TEMP TABLE lat", "CREATE TABLE lat_par")).expect("setup");
        let serial = Spi::get_one::<Vec<u8>>("SELECT quantile_summary_agg(v)::bytea FROM lat_par").unwrap();
        Spi::run(
            "DO $$ BEGIN
               IF current_setting('server_version_num')::int >= 160000 THEN
                 SET LOCAL debug_parallel_query = on;
               ELSE
                 SET LOCAL force_parallel_mode = on;
               END IF;
             END $$;
             SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
             SET LOCAL min_parallel_table_scan_size = 0; SET LOCAL max_parallel_workers_per_gather = 2;",
        )
        .expect("settings");
        let plan: String = Spi::connect(|c| {
            c.select("EXPLAIN SELECT quantile_summary_agg(v) FROM lat_par", None, &[])
                .expect("explain")
                .map(|row| row.get::<String>(1).ok().flatten().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        });
        assert!(
            plan.contains("Partial Aggregate") && plan.contains("Gather"),
            "not parallel:\n{plan}"
        );
        let parallel = Spi::get_one::<Vec<u8>>("SELECT quantile_summary_agg(v)::bytea FROM lat_par").unwrap();
        let a = llmhub_sketch::QuantileSketch::from_bytes(&serial.unwrap()).unwrap();
        let b = llmhub_sketch::QuantileSketch::from_bytes(&parallel.unwrap()).unwrap();
        assert_eq!(a.buckets().collect::<Vec<_>>(), b.buckets().collect::<Vec<_>>());
        assert_eq!(a.count(), b.count());
        // rollup in a parallel plan too.
        let rolled = Spi::get_one::<i64>(
            "SELECT num_vals(rollup(s)) FROM (SELECT hour, quantile_summary_agg(v) s FROM lat_par GROUP BY hour) h",
        )
        .unwrap();
        assert_eq!(rolled, Some(200_000));
    }

    #[pg_test]
    fn null_input_is_skipped() {
        let s =
            Spi::get_one::<i64>("SELECT num_vals(quantile_summary_agg(v)) FROM unnest(ARRAY[1, NULL, 2]::float8[]) v")
                .unwrap();
        assert_eq!(s, Some(2), "NULL values are skipped");
        let empty =
            Spi::get_one::<Vec<u8>>("SELECT quantile_summary_agg(v)::bytea FROM unnest('{}'::float8[]) v").unwrap();
        assert_eq!(empty, None, "no values: NULL");
    }

    /// Every example in docs/sql.md, with the result documented under it.
    #[pg_test]
    fn the_sql_reference_examples_give_their_documented_results() {
        let doc = include_str!("../../docs/sql.md");
        let mut rest = doc;
        let mut checked = 0;
        while let Some(i) = rest.find("```sql\n") {
            let after = &rest[i + 7..];
            let end = after.find("```").expect("closed sql block");
            let sql = after[..end].trim().trim_end_matches(';');
            rest = &after[end + 3..];
            let Some(out) = rest.trim_start().strip_prefix("```output\n") else {
                // A setup step (rows, roles, settings): run it, nothing to compare. The extension
                // itself is already created.
                if !sql.starts_with("CREATE EXTENSION") {
                    Spi::run(sql).unwrap_or_else(|e| panic!("docs/sql.md setup step fails: {e}\n{sql}"));
                }
                continue;
            };
            let want = out[..out.find("```").expect("closed output block")].trim();
            let got = Spi::get_one::<String>(&format!("SELECT json_agg(t)::text FROM ({sql}) t"))
                .expect("example runs")
                .unwrap_or_default();
            assert_eq!(got, want, "docs/sql.md example gives another result:\n{sql}");
            checked += 1;
        }
        assert!(checked >= 12, "{checked} examples checked");
    }

    #[pg_test(
        error = "quantile_summary_agg: value must be a finite number >= 0, got -3 (a summary holds latencies, token counts and rates; leave other values out, e.g. FILTER (WHERE value >= 0))"
    )]
    fn a_negative_value_in_a_summary_is_an_error_naming_it() {
        Spi::run("SELECT quantile_summary_agg(v) FROM unnest(ARRAY[1, NULL, -3, 2]::float8[]) v").unwrap();
    }

    #[pg_test(
        error = "quantile_summary_agg: value must be a finite number >= 0, got NaN (a summary holds latencies, token counts and rates; leave other values out, e.g. FILTER (WHERE value >= 0))"
    )]
    fn a_nan_in_a_summary_is_an_error_naming_it() {
        // The first value: no summary exists yet.
        Spi::run("SELECT quantile_summary_agg(v) FROM unnest(ARRAY['NaN', 1]::float8[]) v").unwrap();
    }

    #[pg_test]
    fn llm_calls_refuses_timings_and_tokens_a_summary_cannot_hold() {
        Spi::run("SELECT llm_create_partitions(current_date, current_date)").expect("partitions");
        for (column, value) in [
            ("duration_s", "-1"),
            ("ttft_s", "'NaN'"),
            ("output_tokens_per_s", "'Infinity'"),
            ("output_tokens", "-5"),
        ] {
            // Refused by one of the table's own constraints, whose name the block checks.
            let sql = format!(
                "DO $$ DECLARE c text; BEGIN
                   INSERT INTO llm_calls (time, end_time, trace_id, span_id, service_name, dialect, scope_name, role, operation,
                       finish_reasons, status, usage_reported, counts_usage, ttft_from_server, tpot_from_server, price_status, {column})
                   VALUES (now(), now(), '\\x01', '\\x02', 's', 'otel_genai', 't', 'model_call', 'chat', '{{}}', 'ok', true, true,
                           false, false, 'priced', {value});
                   RAISE EXCEPTION 'the row was inserted';
                 EXCEPTION WHEN check_violation THEN
                   GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
                   IF c NOT IN ('llm_calls_timings_valid', 'llm_calls_tokens_valid') THEN RAISE EXCEPTION 'refused by %', c; END IF;
                 END $$"
            );
            Spi::run(&sql).unwrap_or_else(|e| panic!("{column} = {value}: {e}"));
        }
        // The same row with valid values goes in.
        Spi::run(
            "INSERT INTO llm_calls (time, end_time, trace_id, span_id, service_name, dialect, scope_name, role, operation,
                 finish_reasons, status, usage_reported, counts_usage, ttft_from_server, tpot_from_server, price_status, duration_s, output_tokens)
             VALUES (now(), now(), '\\x01', '\\x02', 's', 'otel_genai', 't', 'model_call', 'chat', '{}', 'ok', true, true,
                     false, false, 'priced', 0, 0)",
        )
        .expect("a valid row");
    }

    #[pg_test(error = "percentile must be between 0 and 1, got 1.5")]
    fn a_percentile_outside_0_1_is_an_error_naming_it() {
        Spi::run("SELECT approx_percentile(1.5, quantile_summary_agg(v)) FROM unnest(ARRAY[1.0, 2.0]) v").unwrap();
    }

    #[pg_test(
        error = "summary: summaries with logarithmic buckets (format 1) and binary buckets (format 2) cannot be merged; rebuild the older ones from their rows"
    )]
    fn a_rollup_over_format_1_and_format_2_summaries_is_an_error_naming_both() {
        Spi::run(
            "SELECT rollup(s) FROM (VALUES ('\\x4c485153010000007b14ae47e17a743f00080000080000000000000001000000000000009a999999995932400000000000000000000000000000284006000000d504019602019402027e018a0101960201'::quantile_summary),
                                           ((SELECT quantile_summary_agg(1.0)))) v(s)",
        )
        .unwrap();
    }

    #[pg_test(error = "summary: not an llmhub quantile summary (bad magic)")]
    fn a_corrupt_summary_is_an_error_naming_the_argument() {
        Spi::run("SELECT num_vals('\\x00010203'::quantile_summary)").unwrap();
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    /// Runs once before the tests.
    pub fn setup(_options: Vec<&str>) {}

    /// Extra `postgresql.conf` settings for the test server.
    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}

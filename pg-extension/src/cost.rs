//! Cost in SQL from the same pure pricing crate as the processor (`llmhub-pricing`), on the
//! catalogs loaded into `llm_price_catalogs`: `llm_cost(...)` prices one call, `llm_price(...)`
//! gives its breakdown as the sink stores it, and `llm_reprice(from, to)` prices the rows of a time
//! range again after a catalog change, recording the catalog version on each row.

use crate::catalog::{matcher, numeric};
use llmhub_core::{LlmCall, PriceStatus, SpanRole, Usage};
use llmhub_pricing::price_call;
use pgrx::prelude::*;
use pgrx::AnyNumeric;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

fn tokens(arg: &str, v: i64) -> u64 {
    u64::try_from(v).unwrap_or_else(|_| error!("{arg} must not be negative, got {v}"))
}

/// Nanoseconds since the Unix epoch, when `at` is between 1970-01-01 and 2262-04-11 (the range
/// of the processor's span times).
fn unix_nanos(at: TimestampWithTimeZone) -> Option<u64> {
    if !at.is_finite() {
        return None;
    }
    let micros: i64 = pg_sys::TimestampTz::from(at);
    micros
        .checked_add(PG_EPOCH_US)
        .and_then(|us| us.checked_mul(1000))
        .and_then(|ns| u64::try_from(ns).ok())
}

/// The version of the active price catalog (`llm_price_catalogs`).
#[pg_extern(stable, parallel_safe)]
fn llm_price_catalog_version() -> String {
    matcher(None).catalog().version.clone()
}

/// Prices one call: USD as an exact `numeric`, or NULL when the catalog has no price for the model
/// at that time (never 0). Token counts are the disjoint buckets of `llm_calls`. `catalog_version`
/// NULL: the active catalog.
#[allow(clippy::too_many_arguments)]
#[pg_extern(stable, parallel_safe)]
fn llm_cost(
    provider: Option<&str>,
    model: &str,
    at: TimestampWithTimeZone,
    input_uncached: default!(i64, 0),
    cache_read: default!(i64, 0),
    cache_write: default!(i64, 0),
    cache_write_1h: default!(i64, 0),
    output: default!(i64, 0),
    reasoning: default!(i64, 0),
    service_tier: default!(Option<&str>, "NULL"),
    catalog_version: default!(Option<&str>, "NULL"),
) -> Option<AnyNumeric> {
    let unix_ns =
        unix_nanos(at).unwrap_or_else(|| error!("at must be a time between 1970-01-01 and 2262-04-11, got {at}"));
    let mut call = LlmCall {
        start_unix_nano: unix_ns,
        end_unix_nano: unix_ns,
        provider: provider.map(str::to_owned),
        request_model: Some(model.to_owned()),
        service_tier: service_tier.map(str::to_owned),
        counts_usage: true,
        usage: Some(Usage {
            input_uncached: tokens("input_uncached", input_uncached),
            cache_read: tokens("cache_read", cache_read),
            cache_write: tokens("cache_write", cache_write),
            cache_write_1h: tokens("cache_write_1h", cache_write_1h),
            output: tokens("output", output),
            reasoning: tokens("reasoning", reasoning),
        }),
        ..LlmCall::default()
    };
    price_call(&matcher(catalog_version), &mut call);
    match (call.price_status, call.cost) {
        (PriceStatus::Priced, Some(c)) => Some(numeric(c.total)),
        _ => None,
    }
}

/// Prices a call from the columns of `llm_calls` and returns what the sink stores for it: status,
/// total and per-bucket costs, catalog version and the matching rule. Token counts all NULL means
/// the call reported no usage. Agent, tool and workflow steps (`role`) and aggregate spans
/// (`counts_usage` false) are `not_priced`.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(stable, parallel_safe)]
fn llm_price(
    provider: Option<&str>,
    request_model: Option<&str>,
    response_model: Option<&str>,
    at: TimestampWithTimeZone,
    input_uncached: Option<i64>,
    cache_read: Option<i64>,
    cache_write: Option<i64>,
    cache_write_1h: Option<i64>,
    output: Option<i64>,
    reasoning: Option<i64>,
    service_tier: default!(Option<&str>, "NULL"),
    role: default!(&str, "'model_call'"),
    counts_usage: default!(bool, true),
    catalog_version: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(price_status, String),
        name!(cost_usd, Option<AnyNumeric>),
        name!(cost_input_uncached_usd, Option<AnyNumeric>),
        name!(cost_cache_read_usd, Option<AnyNumeric>),
        name!(cost_cache_write_usd, Option<AnyNumeric>),
        name!(cost_cache_write_1h_usd, Option<AnyNumeric>),
        name!(cost_output_usd, Option<AnyNumeric>),
        name!(cost_reasoning_usd, Option<AnyNumeric>),
        name!(cost_request_usd, Option<AnyNumeric>),
        name!(catalog_version, Option<String>),
        name!(price_rule, Option<String>),
    ),
> {
    let role = match role {
        "model_call" => SpanRole::ModelCall,
        "agent" => SpanRole::Agent,
        "tool" => SpanRole::Tool,
        "workflow" => SpanRole::Workflow,
        other => error!("role must be one of model_call, agent, tool, workflow; got {other:?}"),
    };
    let buckets = [
        input_uncached,
        cache_read,
        cache_write,
        cache_write_1h,
        output,
        reasoning,
    ];
    let usage = if buckets.iter().all(Option::is_none) {
        None
    } else {
        let t = |name: &str, v: Option<i64>| tokens(name, v.unwrap_or(0));
        Some(Usage {
            input_uncached: t("input_uncached", input_uncached),
            cache_read: t("cache_read", cache_read),
            cache_write: t("cache_write", cache_write),
            cache_write_1h: t("cache_write_1h", cache_write_1h),
            output: t("output", output),
            reasoning: t("reasoning", reasoning),
        })
    };
    // A row whose time is outside the span-time range (a bad client clock) has no price at that
    // date, like any other unpriceable row, instead of aborting a whole repricing.
    let Some(unix_ns) = unix_nanos(at) else {
        let status = if role == SpanRole::ModelCall && counts_usage && usage.is_some() {
            PriceStatus::NoPriceAtDate
        } else if role == SpanRole::ModelCall && counts_usage {
            PriceStatus::NoUsage
        } else {
            PriceStatus::NotPriced
        };
        return TableIterator::once((
            status.as_str().to_owned(),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ));
    };
    let mut call = LlmCall {
        start_unix_nano: unix_ns,
        end_unix_nano: unix_ns,
        role,
        provider: provider.map(str::to_owned),
        request_model: request_model.map(str::to_owned),
        response_model: response_model.map(str::to_owned),
        service_tier: service_tier.map(str::to_owned),
        counts_usage,
        usage,
        ..LlmCall::default()
    };
    price_call(&matcher(catalog_version), &mut call);
    let status = call.price_status.as_str().to_owned();
    let row = match call.cost {
        Some(c) => (
            status,
            Some(numeric(c.total)),
            Some(numeric(c.input_uncached)),
            Some(numeric(c.cache_read)),
            Some(numeric(c.cache_write)),
            Some(numeric(c.cache_write_1h)),
            Some(numeric(c.output)),
            Some(numeric(c.reasoning)),
            Some(numeric(c.request)),
            Some(c.catalog_version),
            Some(c.rule),
        ),
        None => (status, None, None, None, None, None, None, None, None, None, None),
    };
    TableIterator::once(row)
}

extension_sql!(
    r#"
CREATE TABLE llm_reprice_log (
    repriced_at timestamptz NOT NULL DEFAULT now(),
    from_time timestamptz NOT NULL,
    to_time timestamptz NOT NULL,
    catalog_version text NOT NULL,
    rows_repriced bigint NOT NULL,
    rows_changed bigint NOT NULL
);
COMMENT ON TABLE llm_reprice_log IS 'Each llm_reprice run: the range, the catalog used and how many rows it priced and changed.';
SELECT pg_catalog.pg_extension_config_dump('llm_reprice_log', '');

CREATE FUNCTION llm_reprice(from_time timestamptz, to_time timestamptz, catalog_version text DEFAULT NULL)
RETURNS TABLE (rows_repriced bigint, rows_changed bigint, catalog_used text)
LANGUAGE plpgsql AS $fn$
DECLARE
    v text := coalesce(llm_reprice.catalog_version, @extschema@.llm_price_catalog_version());
    n bigint;
    changed bigint;
BEGIN
    IF from_time IS NULL OR to_time IS NULL OR NOT isfinite(from_time) OR NOT isfinite(to_time) THEN
        RAISE EXCEPTION 'from_time and to_time must be finite times, got % and %', from_time, to_time;
    END IF;
    IF to_time <= from_time THEN
        RAISE EXCEPTION 'to_time (%) must be after from_time (%)', to_time, from_time;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.llm_price_catalogs c WHERE c.version = v) THEN
        RAISE EXCEPTION 'catalog_version: no price catalog % is loaded (see llm_price_catalogs)', v;
    END IF;
    WITH priced AS (
        SELECT c.trace_id, c.span_id, c.time, p.*,
               (c.price_status, c.cost_usd, c.cost_input_uncached_usd, c.cost_cache_read_usd, c.cost_cache_write_usd,
                c.cost_cache_write_1h_usd, c.cost_output_usd, c.cost_reasoning_usd, c.cost_request_usd, c.price_rule)
               IS DISTINCT FROM
               (p.price_status, p.cost_usd, p.cost_input_uncached_usd, p.cost_cache_read_usd, p.cost_cache_write_usd,
                p.cost_cache_write_1h_usd, p.cost_output_usd, p.cost_reasoning_usd, p.cost_request_usd, p.price_rule) AS differs
          FROM @extschema@.llm_calls c,
               LATERAL @extschema@.llm_price(c.provider, c.request_model, c.response_model, c.time,
                   c.input_uncached_tokens, c.cache_read_tokens, c.cache_write_tokens, c.cache_write_1h_tokens,
                   c.output_tokens, c.reasoning_tokens, c.service_tier, c.role, c.counts_usage, v) p
         WHERE c.time >= from_time AND c.time < to_time AND c.role = 'model_call' AND c.counts_usage
    ), upd AS (
        UPDATE @extschema@.llm_calls c
           SET price_status = q.price_status, cost_usd = q.cost_usd,
               cost_input_uncached_usd = q.cost_input_uncached_usd, cost_cache_read_usd = q.cost_cache_read_usd,
               cost_cache_write_usd = q.cost_cache_write_usd, cost_cache_write_1h_usd = q.cost_cache_write_1h_usd,
               cost_output_usd = q.cost_output_usd, cost_reasoning_usd = q.cost_reasoning_usd,
               cost_request_usd = q.cost_request_usd, catalog_version = q.catalog_version, price_rule = q.price_rule
          FROM priced q
         WHERE c.trace_id = q.trace_id AND c.span_id = q.span_id AND c.time = q.time
           AND c.time >= from_time AND c.time < to_time
        RETURNING q.differs
    )
    SELECT count(*), count(*) FILTER (WHERE differs) INTO n, changed FROM upd;
    INSERT INTO @extschema@.llm_reprice_log (from_time, to_time, catalog_version, rows_repriced, rows_changed)
    VALUES (from_time, to_time, v, n, changed);
    -- The rollups hold costs too: rebuild the buckets of the range.
    IF to_regprocedure('@extschema@.llm_refresh_rollups_range(timestamptz, timestamptz)') IS NOT NULL THEN
        PERFORM @extschema@.llm_refresh_rollups_range(from_time, to_time);
    END IF;
    RETURN QUERY SELECT n, changed, v;
END
$fn$;
COMMENT ON FUNCTION llm_reprice(timestamptz, timestamptz, text) IS 'Prices the model calls of [from_time, to_time) again with a catalog (default: the active one), records the version on each row and in llm_reprice_log, and rebuilds the rollups of the range.';
"#,
    name = "llm_reprice",
    requires = [
        "llm_calls_management",
        "price_catalog_tables",
        llm_price,
        llm_price_catalog_version
    ]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::sql_text as text;

    #[pg_test]
    fn the_embedded_catalog_is_loaded_as_effective_dated_rows() {
        let version = llmhub_pricing::embedded().unwrap().version;
        assert_eq!(text("SELECT llm_price_catalog_version()"), Some(version.clone()));
        assert_eq!(
            text(
                "SELECT string_agg(valid_from || '..' || coalesce(valid_to::text, '') || ' ' || input_per_mtok || '/' || output_per_mtok, '; ' ORDER BY valid_from)
                   FROM llm_prices WHERE provider = 'openai' AND model = 'gpt-4o' AND tier_kind = 'base'"
            ),
            Some("2024-05-13..2024-10-02 5/15; 2024-10-02.. 2.5/10".to_owned())
        );
        assert_eq!(
            text("SELECT llm_price_catalog_load()"),
            Some(version),
            "loading the same catalog again is a no-op"
        );
    }

    #[pg_test]
    fn llm_price_breaks_a_call_down_as_the_sink_stores_it() {
        assert_eq!(
            text(
                "SELECT concat_ws(' ', price_status, cost_usd, cost_input_uncached_usd, cost_cache_read_usd, cost_output_usd, price_rule)
                   FROM llm_price('openai', 'gpt-4o', 'gpt-4o-2024-08-06', '2025-01-01', 1000, 2000, 0, 0, 500, 0)"
            ),
            // 1000 × 2.50/M + 2000 × 1.25/M + 500 × 10/M
            // (the scale is the pricing crate's, as the sink stores it)
            Some("priced 0.01000000 0.0025000 0.00250000 0.00500 exact openai/gpt-4o-2024-08-06".to_owned())
        );
        let status = |args: &str| text(&format!("SELECT price_status FROM llm_price({args})")).unwrap();
        assert_eq!(
            status("'openai', 'gpt-4o', NULL, '2025-01-01', 1, 1, 0, 0, 1, 0, role => 'agent'"),
            "not_priced"
        );
        assert_eq!(
            status("'openai', 'gpt-4o', NULL, '2025-01-01', 1, 1, 0, 0, 1, 0, counts_usage => false"),
            "not_priced"
        );
        assert_eq!(
            status("'openai', 'gpt-4o', NULL, '2025-01-01', NULL, NULL, NULL, NULL, NULL, NULL"),
            "no_usage"
        );
        assert_eq!(
            status("'openai', 'no-such-model', NULL, '2025-01-01', 1, 0, 0, 0, 1, 0"),
            "unknown_model"
        );
        assert_eq!(
            status("'openai', 'gpt-4o', NULL, '2020-01-01', 1, 0, 0, 0, 1, 0"),
            "no_price_at_date"
        );
    }

    #[pg_test(error = "output must not be negative, got -5")]
    fn negative_tokens_are_an_error_naming_the_argument() {
        Spi::run("SELECT * FROM llm_price('openai', 'gpt-4o', NULL, '2025-01-01', 1, 0, 0, 0, -5, 0)").unwrap();
    }

    #[pg_test(error = "catalog_version: no price catalog \"nope\" is loaded (see llm_price_catalogs)")]
    fn an_unknown_catalog_version_is_an_error_naming_it() {
        Spi::run("SELECT llm_cost('openai', 'gpt-4o', '2025-01-01', 1, catalog_version => 'nope')").unwrap();
    }

    /// The embedded catalog with gpt-4o's current input price raised from 2.50 to 3.00, as version
    /// `test.2`.
    fn changed_catalog() -> String {
        let c = llmhub_pricing::EMBEDDED_CATALOG;
        let version_line = c.lines().find(|l| l.starts_with("catalog_version:")).unwrap();
        let old =
            "        input: \"2.50\"\n        output: \"10.00\"\n        cache_read: \"1.25\"\n        service_tiers:";
        assert!(c.contains(old));
        c.replacen(version_line, "catalog_version: \"test.2\"", 1).replacen(
            old,
            "        input: \"3.00\"\n        output: \"10.00\"\n        cache_read: \"1.25\"\n        service_tiers:",
            1,
        )
    }

    #[pg_test]
    fn repricing_a_range_uses_the_new_catalog_and_records_its_version() {
        Spi::run("SELECT llm_create_partitions(current_date - 2, current_date)").expect("partitions");
        Spi::run(&crate::insert_calls_sql(300, 2)).expect("insert");
        // Price everything with the shipped catalog first: costs as the processor computes them.
        Spi::run("SELECT llm_reprice(now() - interval '1 day', now())").expect("reprice");
        let before = text("SELECT sum(cost_usd)::text FROM llm_calls WHERE model = 'gpt-4o'").unwrap();
        let v: Option<String> = Spi::get_one_with_args(
            "SELECT llm_price_catalog_load($1, activate => false)",
            &[changed_catalog().into()],
        )
        .unwrap();
        assert_eq!(v.as_deref(), Some("test.2"));
        let result = text(
            "SELECT concat_ws(' ', rows_repriced, rows_changed, catalog_used) FROM llm_reprice(now() - interval '1 day', now(), 'test.2')",
        );
        assert_eq!(
            result.as_deref(),
            Some("300 100 test.2"),
            "only the gpt-4o calls change price"
        );
        assert_eq!(
            text("SELECT string_agg(DISTINCT catalog_version, ',') FROM llm_calls"),
            Some("test.2".into())
        );
        // Each gpt-4o call: input × (3.00 − 2.50)/M more.
        let delta = text(&format!(
            "SELECT (sum(cost_usd) - {before} = sum(input_uncached_tokens) * 0.5 / 1000000)::text FROM llm_calls WHERE model = 'gpt-4o'"
        ));
        assert_eq!(delta.as_deref(), Some("true"));
        assert_eq!(
            text("SELECT concat_ws(' ', count(*), max(rows_changed)) FROM llm_reprice_log WHERE catalog_version = 'test.2'"),
            Some("1 100".into())
        );
        assert_eq!(
            text("SELECT (sum(cost_usd) = (SELECT sum(cost_usd) FROM llm_calls))::text FROM llm_rollup_1d"),
            Some("true".into()),
            "the rollups were rebuilt with the new costs"
        );
    }

    #[pg_test(
        error = "source: catalog version \"test.2\" is already loaded with other content; give the changed catalog its own catalog_version"
    )]
    fn a_version_cannot_be_loaded_twice_with_different_content() {
        Spi::run_with_args("SELECT llm_price_catalog_load($1)", &[changed_catalog().into()]).unwrap();
        let other = changed_catalog().replacen("input: \"3.00\"", "input: \"3.50\"", 1);
        Spi::run_with_args("SELECT llm_price_catalog_load($1)", &[other.into()]).unwrap();
    }
}

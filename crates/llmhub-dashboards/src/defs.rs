//! The five dashboards: what each panel asks, in PromQL over llmhub's metrics or SQL over the
//! `llm_analytics` rollups.

use super::{Dashboard, Field, Panel, Query, Source, Viz};

/// PromQL label filter from the template variables.
const PF: &str = r#"service_name=~"$service",gen_ai_provider_name=~"$provider",gen_ai_request_model=~"$model",deployment_environment_name=~"$environment""#;

/// The same plus the tenant, for llmhub's own counters (the semantic-convention histograms carry
/// no tenant label).
const PFT: &str = r#"llmhub_tenant=~"$tenant",service_name=~"$service",gen_ai_provider_name=~"$provider",gen_ai_request_model=~"$model",deployment_environment_name=~"$environment""#;

/// A filter variable's regex-formatted value as an SQL string. Grafana inserts a custom "All"
/// value (`.*`) as is in every format and has no format for a string literal that also escapes
/// regex metacharacters, so the value is dollar-quoted: the regex format puts a backslash before
/// every `$`, and a `#` (cut off again) keeps a trailing one from meeting the closing `$$`, so no
/// value can end the literal.
fn var_sql(var: &str) -> String {
    format!("left($$${{{var}:regex}}#$$, -1)")
}

/// SQL filter on one column from a template variable: "All" passes every row (NULL columns
/// included), a selection matches by anchored regex.
fn sql_filter(var: &str, col: &str) -> String {
    let v = var_sql(var);
    format!("({v} = '.*' OR {col} ~ ('^(' || {v} || ')$'))")
}

/// SQL filter from the template variables; without provider and model for the tables that have
/// neither (traces, conversations, agents).
fn sf(with_model: bool) -> String {
    let mut vars = vec![("tenant", "tenant"), ("service", "service_name")];
    if with_model {
        vars.extend([("provider", "provider"), ("model", "model")]);
    }
    vars.push(("environment", "environment"));
    vars.iter()
        .map(|(v, c)| sql_filter(v, c))
        .collect::<Vec<_>>()
        .join("\n   AND ")
}

/// The tenant for the one-tenant functions (budget, burn rate): the selected value with the regex
/// format's escapes removed; NULL (every tenant) for "All" and for several tenants (Grafana's
/// `(a|b)`; one value's parenthesis is escaped).
fn one_tenant() -> String {
    let v = var_sql("tenant");
    format!("CASE WHEN {v} = '.*' OR left({v}, 1) = '(' THEN NULL ELSE regexp_replace({v}, '\\\\(.)', '\\1', 'g') END")
}

fn sql_no_model(s: &str) -> String {
    s.replace("{F}", &sf(false))
}

/// Hourly buckets of the whole UTC days in the range that have ended: a forecast fed a cut first
/// day or today's partial day would read low at its edges.
const WHOLE_DAYS: &str =
    "bucket >= date_trunc('day', $__timeFrom()::timestamptz - interval '1 microsecond', 'UTC') + interval '24 hours'
   AND bucket < date_trunc('day', least($__timeTo()::timestamptz, now()), 'UTC')";

/// The start of the range's last whole day that has ended.
const LAST_WHOLE_DAY: &str = "date_trunc('day', least($__timeTo()::timestamptz, now()), 'UTC') - interval '24 hours'";

/// The start of the range's last whole hour that has ended.
const LAST_WHOLE_HOUR: &str = "date_trunc('hour', least($__timeTo()::timestamptz, now()), 'UTC') - interval '1 hour'";

/// The start of the range's first whole hour.
const FIRST_WHOLE_HOUR: &str =
    "date_trunc('hour', $__timeFrom()::timestamptz - interval '1 microsecond', 'UTC') + interval '1 hour'";

/// Hourly buckets of the whole hours in the range that have ended, and of the 28 days before it
/// (the history of a baseline with a weekly cycle).
const WHOLE_HOURS_WITH_HISTORY: &str =
    "bucket >= date_trunc('hour', $__timeFrom()::timestamptz - interval '1 microsecond', 'UTC') + interval '1 hour' - interval '28 days'
   AND bucket < date_trunc('hour', least($__timeTo()::timestamptz, now()), 'UTC')";

/// Ranges up to this read hourly rollups; longer ones daily rollups (whole UTC days), so a month
/// merges 30 summaries per group instead of 720.
const HOURLY_UP_TO: &str = "interval '3 days'";

/// The same query over `llm_rollup_1h` for short ranges and `llm_rollup_1d` (daily points) for
/// long ones; the branch not taken is cut by a one-time filter before it reads anything.
fn adaptive(q1h: &str, order: &str) -> String {
    let q1d = q1h.replace("llm_rollup_1h", "llm_rollup_1d").replace("'1h'", "'1d'");
    format!(
        "SELECT * FROM ({q1h}) hourly WHERE $__timeTo()::timestamptz - $__timeFrom()::timestamptz <= {HOURLY_UP_TO}
UNION ALL
SELECT * FROM ({q1d}) daily WHERE $__timeTo()::timestamptz - $__timeFrom()::timestamptz > {HOURLY_UP_TO}
ORDER BY {order}"
    )
}

fn q(expr: impl Into<String>, legend: &'static str) -> Query {
    Query {
        expr: expr.into(),
        legend,
    }
}

#[allow(clippy::too_many_arguments)]
fn panel(
    title: &'static str,
    description: &'static str,
    viz: Viz,
    unit: &'static str,
    source: Source,
    width: u32,
    height: u32,
    queries: Vec<Query>,
) -> Panel {
    Panel {
        title,
        description,
        viz,
        unit,
        source,
        width,
        height,
        queries,
        fields: Vec::new(),
    }
}

impl Panel {
    /// The panel with `f` drawn its own way.
    fn field(mut self, f: Field) -> Self {
        self.fields.push(f);
        self
    }
}

/// A column with a unit of its own.
fn unit(name: &'static str, unit: &'static str) -> Field {
    Field {
        name,
        unit: Some(unit),
        ..Field::default()
    }
}

/// The SRE workbook's burn-rate steps: 6 (a ticket: 5% of a 30-day budget in 6 h) and 14.4 (a page:
/// 2% in 1 h).
const BURN_STEPS: &[(f64, &str)] = &[(f64::NEG_INFINITY, "green"), (6.0, "orange"), (14.4, "red")];

/// Share of the budget: orange from 80%, red from 100%.
const BUDGET_STEPS: &[(f64, &str)] = &[(f64::NEG_INFINITY, "green"), (0.8, "orange"), (1.0, "red")];

/// An interval drawn as a band: `upper` filled down to `lower`, both without a line of their own.
fn band(upper: &'static str, lower: &'static str) -> Field {
    Field {
        name: upper,
        fill_to: Some(lower),
        ..Field::default()
    }
}

/// A trace id that opens the trace in the tracing backend (`$trace_url` followed by the id).
fn trace_link(name: &'static str) -> Field {
    Field {
        name,
        link: Some(("Open the trace", "${trace_url}${__value.raw}")),
        ..Field::default()
    }
}

/// A model name that opens the tracing backend's search for that model's calls: the URL is
/// `$model_url`, the model name, then `$model_url_end` (Jaeger's defaults search the
/// `gen_ai.request.model` tag; Tempo users set a TraceQL query around the name instead).
fn model_link(name: &'static str) -> Field {
    Field {
        name,
        link: Some((
            "Search this model's calls in the tracing backend",
            "${model_url}${__value.raw}${model_url_end}",
        )),
        ..Field::default()
    }
}

fn p(s: &str) -> String {
    s.replace("{F}", PF).replace("{T}", PFT)
}

fn sql(s: &str) -> String {
    s.replace("{F}", &sf(true))
}

/// Model calls only in the duration histogram, which also holds agent and tool steps, always
/// under `invoke_agent`, `create_agent` or `execute_tool` (workflow steps are not recorded in it).
const CALLS_ONLY: &str = r#",gen_ai_operation_name!~"invoke_agent|create_agent|execute_tool""#;

/// Model calls only in the rollups (not agent, tool or workflow steps).
const MODEL_CALLS: &str = "role = 'model_call'";

fn overview() -> Dashboard {
    use Source::Prometheus as P;
    use Viz::*;
    let lat = |quantile: &str| {
        p(&format!(
            "histogram_quantile({quantile}, sum by (le) (rate(gen_ai_client_operation_duration_seconds_bucket{{{{F}}{CALLS_ONLY}}}[$__rate_interval])))"
        ))
    };
    let ttft = |quantile: &str| {
        p(&format!(
            "histogram_quantile({quantile}, sum by (le) (rate(gen_ai_client_operation_time_to_first_chunk_seconds_bucket{{{{F}}}}[$__rate_interval])))"
        ))
    };
    let tpot = |quantile: &str| {
        p(&format!(
            "histogram_quantile({quantile}, sum by (le) (rate(gen_ai_server_time_per_output_token_seconds_bucket{{{{F}}}}[$__rate_interval])))"
        ))
    };
    Dashboard {
        uid: "llmhub-overview",
        file: "llm-overview.json",
        title: "LLM overview",
        description: "Requests, errors, tokens, cost and latency of every model call llmhub saw, by provider, model, service and environment.",
        from: "now-6h",
        panels: vec![
            panel("Model calls", "How many model calls were made in the selected range?", Stat, "short", P, 6, 4,
                vec![q(p("sum(increase(llmhub_requests_total{{T}}[$__range]))"), "calls")]),
            panel("Error rate", "Which share of model calls failed in the selected range?", Stat, "percentunit", P, 6, 4,
                vec![q(p("(sum(increase(llmhub_errors_total{{T}}[$__range])) or vector(0)) / sum(increase(llmhub_requests_total{{T}}[$__range]))"), "error rate")]),
            panel("Cost", "How much did the model calls cost in the selected range (catalog prices, USD)?", Stat, "currencyUSD", P, 6, 4,
                vec![q(p("sum(increase(llmhub_cost_usd_total{{T}}[$__range]))"), "cost")]),
            panel("Cache-hit ratio", "Which share of input tokens was served from the prompt cache?", Stat, "percentunit", P, 6, 4,
                vec![q(p(r#"sum(increase(llmhub_tokens_total{{T},llmhub_token_bucket="cache_read"}[$__range])) / sum(increase(llmhub_tokens_total{{T},llmhub_token_bucket=~"input_uncached|cache_read|cache_write|cache_write_1h"}[$__range]))"#), "cache hits")]),
            panel("Model calls per second by model", "Which models carry the traffic?", TimeSeries, "reqps", P, 12, 8,
                vec![q(p("sum by (gen_ai_request_model) (rate(llmhub_requests_total{{T}}[$__rate_interval]))"), "{{gen_ai_request_model}}")]),
            panel("Errors per second by class", "What fails, and how (rate limits, timeouts, context length, content filter...)?", TimeSeries, "reqps", P, 12, 8,
                vec![q(p("sum by (error_type) (rate(llmhub_errors_total{{T}}[$__rate_interval]))"), "{{error_type}}")]),
            panel("Tokens per second by bucket", "How many tokens flow, split into uncached input, cache reads and writes, output and reasoning?", TimeSeries, "short", P, 12, 8,
                vec![q(p("sum by (llmhub_token_bucket) (rate(llmhub_tokens_total{{T}}[$__rate_interval]))"), "{{llmhub_token_bucket}}")]),
            panel("Cost per hour by provider", "At what rate is money being spent, per provider (USD per hour at the current rate)?", TimeSeries, "currencyUSD", P, 12, 8,
                vec![q(p("sum by (gen_ai_provider_name) (rate(llmhub_cost_usd_total{{T}}[$__rate_interval])) * 3600"), "{{gen_ai_provider_name}}")]),
            panel("Latency p50 / p95 / p99", "How long do model calls take (from the duration histogram, model calls only)?", TimeSeries, "s", P, 12, 8,
                vec![q(lat("0.5"), "p50"), q(lat("0.95"), "p95"), q(lat("0.99"), "p99")]),
            panel("Time to first token p50 / p95", "How long do streamed responses take to start?", TimeSeries, "s", P, 12, 8,
                vec![q(ttft("0.5"), "p50"), q(ttft("0.95"), "p95")]),
            panel("Time per output token p50 / p95", "How long does each output token take after the first (the semantic conventions' gen_ai.server.time_per_output_token, from emitters that report it)?", TimeSeries, "s", P, 12, 8,
                vec![q(tpot("0.5"), "p50"), q(tpot("0.95"), "p95")]),
            panel("Output tokens per second p50", "How fast do models generate, per model (the inverse of the time per output token)?", TimeSeries, "short", P, 12, 8,
                vec![q(p("histogram_quantile(0.5, sum by (le, gen_ai_request_model) (rate(llmhub_output_tokens_per_second_bucket{{F}}[$__rate_interval])))"), "{{gen_ai_request_model}}")]),
            panel("Cost by service and model", "Who spends on what in the selected range?", BarGauge, "currencyUSD", P, 12, 8,
                vec![q(p("sort_desc(sum by (service_name, gen_ai_request_model) (increase(llmhub_cost_usd_total{{T}}[$__range])))"), "{{service_name}} / {{gen_ai_request_model}}")]),
            panel("Calls without a price", "Which model calls had usage the catalog cannot price (unknown model, no price at that date)? They have no cost, never a cost of 0.", Stat, "short", P, 12, 4,
                vec![q(r#"sum(increase(llmhub_cost_unknown_price_total{llmhub_tenant=~"$tenant",service_name=~"$service",gen_ai_provider_name=~"$provider",gen_ai_request_model=~"$model"}[$__range])) or vector(0)"#, "unpriced")]),
            panel("Calls without usage", "Which model calls reported no token usage (never counted as zero tokens)?", Stat, "short", P, 12, 4,
                vec![q(p("sum(increase(llmhub_usage_missing_total{{T}}[$__range])) or vector(0)"), "no usage")]),
        ],
    }
}

fn health() -> Dashboard {
    use Source::Prometheus as P;
    use Viz::*;
    Dashboard {
        uid: "llmhub-health",
        file: "llmhub-health.json",
        title: "llmhub health",
        description: "llmhub itself: ingest, refusals, processing, the PostgreSQL sink's and the span forwarder's queues and lag, dead letters, memory, CPU and open files.",
        from: "now-1h",
        panels: vec![
            panel("Spans received per second", "How much is arriving, by transport?", TimeSeries, "short", P, 12, 8,
                vec![q("sum by (llmhub_transport) (rate(llmhub_receiver_spans_total[$__rate_interval]))", "{{llmhub_transport}}")]),
            panel("Spans refused per second by reason", "Is llmhub refusing data (invalid spans, a full or closing queue)?", TimeSeries, "short", P, 12, 8,
                vec![q("sum by (llmhub_reason) (rate(llmhub_receiver_spans_refused_total[$__rate_interval])) or vector(0)", "{{llmhub_reason}}")]),
            panel("Export requests by outcome", "Do clients' export requests succeed (ok, partial, invalid, too large, refused)?", TimeSeries, "reqps", P, 12, 8,
                vec![q("sum by (llmhub_outcome) (rate(llmhub_receiver_requests_total[$__rate_interval]))", "{{llmhub_outcome}}")]),
            panel("Request processing p99", "How long does llmhub take to decode and process an export request?", TimeSeries, "s", P, 12, 8,
                vec![q("histogram_quantile(0.99, sum by (le, llmhub_transport) (rate(llmhub_receiver_request_duration_seconds_bucket[$__rate_interval])))", "{{llmhub_transport}}")]),
            panel("Spans by role", "What do the accepted spans describe (model calls, agents, tools, workflows, other)?", TimeSeries, "short", P, 12, 8,
                vec![q("sum by (llmhub_span_role) (rate(llmhub_processor_spans_total[$__rate_interval]))", "{{llmhub_span_role}}")]),
            panel("Sink rows written per second", "Is the PostgreSQL sink keeping up?", TimeSeries, "short", P, 12, 8,
                vec![q("sum(rate(llmhub_postgres_rows_written_total[$__rate_interval]))", "rows/s")]),
            panel("Sink queue depth", "How many rows wait for the database?", TimeSeries, "short", P, 8, 8,
                vec![q("sum(llmhub_postgres_queue_rows)", "rows")]),
            panel("Sink lag", "How old is the oldest row not yet in the database?", TimeSeries, "s", P, 8, 8,
                vec![q("max(llmhub_postgres_queue_oldest_age_seconds)", "lag")]),
            panel("Sink retries per second by reason", "Why did batch writes have to be retried (connection, missing partition, transient)?", TimeSeries, "short", P, 8, 8,
                vec![q("sum by (llmhub_reason) (rate(llmhub_postgres_retries_total[$__rate_interval])) or vector(0)", "{{llmhub_reason}}")]),
            panel("Dead letters", "How many rows did the database reject for good (see the dead-letter file)?", Stat, "short", P, 8, 4,
                vec![q("sum(increase(llmhub_postgres_dead_letters_total[$__range])) or vector(0)", "dead letters")]),
            panel("Duplicate calls removed", "How many model calls were reported twice and counted once?", Stat, "short", P, 8, 4,
                vec![q("sum(increase(llmhub_calls_duplicate_total[$__range])) or vector(0)", "duplicates")]),
            panel("Cardinality overflow", "Did a label hit its cardinality limit (values folded into __overflow__)?", Stat, "short", P, 8, 4,
                vec![q("sum(increase(llmhub_cardinality_overflow_total[$__range])) or vector(0)", "overflow")]),
            panel("Forwarded requests per second by outcome", "Does the span forwarder get its requests to the tracing backend (sent, partial, dead_letter)? Zero without a forwarder.", TimeSeries, "reqps", P, 8, 8,
                vec![q("sum by (llmhub_outcome) (rate(llmhub_forward_requests_total[$__rate_interval])) or vector(0)", "{{llmhub_outcome}}")]),
            panel("Forwarding queue depth", "How many export requests wait for the tracing backend?", TimeSeries, "short", P, 8, 8,
                vec![q("sum(llmhub_forward_queue_requests) or vector(0)", "requests")]),
            panel("Forwarding lag", "How old is the oldest request not yet forwarded?", TimeSeries, "s", P, 8, 8,
                vec![q("max(llmhub_forward_queue_oldest_age_seconds) or vector(0)", "lag")]),
            panel("Requests not forwarded", "How many requests did the forwarder skip (on_full: drop, a full queue or the memory limit)?", Stat, "short", P, 12, 4,
                vec![q("sum(increase(llmhub_forward_dropped_total[$__range])) or vector(0)", "not forwarded")]),
            panel("Uptime", "How long has the most recently started llmhub process been running (a reset is a restart)? Process metrics are matched to llmhub by its build info, so other jobs' processes stay out.", Stat, "s", P, 12, 4,
                vec![q("min(time() - (process_start_time_seconds * on (instance, job) group_left llmhub_build_info))", "uptime")]),
            panel("Memory", "Resident memory against the limit, and the client data held (requests in flight, memory queues) against the room it may take.", TimeSeries, "bytes", P, 8, 8,
                vec![q("max by (instance) (llmhub_memory_resident_bytes)", "{{instance}} resident"), q("max by (instance) (llmhub_memory_limit_bytes)", "{{instance}} limit"),
                     q("max by (instance) (llmhub_memory_held_bytes)", "{{instance}} held"), q("max by (instance) (llmhub_memory_room_bytes)", "{{instance}} room")]),
            panel("CPU", "CPU the process uses, in cores (user and system).", TimeSeries, "short", P, 8, 8,
                vec![q("sum by (instance) (rate(process_cpu_seconds_total[$__rate_interval]) * on (instance, job) group_left llmhub_build_info)", "{{instance}}")]),
            panel("Open files", "Open file descriptors (sockets, queue segments) against the process's limit.", TimeSeries, "short", P, 8, 8,
                vec![q("max by (instance) (process_open_fds * on (instance, job) group_left llmhub_build_info)", "{{instance}} open"), q("max by (instance) (process_max_fds * on (instance, job) group_left llmhub_build_info)", "{{instance}} limit")]),
        ],
    }
}

fn cost() -> Dashboard {
    use Source::Postgres as G;
    use Viz::*;
    Dashboard {
        uid: "llmhub-cost",
        file: "llm-cost.json",
        title: "LLM cost and budgets",
        description: "Spend by tenant, service and model from the hourly rollups, the costliest traces and conversations, the monthly budget with its forecast, and cost anomalies.",
        from: "now-7d",
        panels: vec![
            panel("Spend in range", "How much was spent in the selected range (exact, from the rollups)?", Stat, "currencyUSD", G, 6, 4,
                vec![q(sql("SELECT coalesce(sum(cost_usd), 0)::float8 AS spend FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {F}"), "")]),
            panel("Model calls in range", "How many calls was that?", Stat, "short", G, 6, 4,
                vec![q(sql(&format!("SELECT coalesce(sum(calls), 0) AS calls FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {{F}} AND {MODEL_CALLS}")), "")]),
            panel("Cost per 1K tokens", "What does a thousand tokens cost on average in the selected range?", Stat, "currencyUSD", G, 6, 4,
                vec![q(sql("SELECT llm_cost_per_1k_tokens(sum(cost_usd), sum(input_uncached_tokens + cache_read_tokens + cache_write_tokens + cache_write_1h_tokens + output_tokens + reasoning_tokens)::bigint)::float8 AS usd_per_1k FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {F}"), "")]),
            panel("Calls without a price", "How many model calls with usage have no price (unknown model or date)?", Stat, "short", G, 6, 4,
                vec![q(sql("SELECT coalesce(sum(unpriced), 0) AS unpriced FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {F}"), "")]),
            panel("Spend per hour by provider", "When and with whom is money spent?", TimeSeries, "currencyUSD", G, 12, 8,
                vec![q(sql("SELECT $__timeGroupAlias(bucket, '1h'), coalesce(provider, '(none)') AS metric, sum(cost_usd)::float8 AS spend FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {F} GROUP BY 1, 2 HAVING sum(cost_usd) > 0 ORDER BY 1"), "")]),
            panel("Spend by tenant, service and model", "Who spends on what in the selected range?", Table, "currencyUSD", G, 12, 8,
                vec![q(sql("SELECT tenant, service_name AS service, model, coalesce(sum(calls) FILTER (WHERE role = 'model_call'), 0) AS calls, sum(cost_usd)::float8 AS spend FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {F} GROUP BY 1, 2, 3 HAVING sum(cost_usd) > 0 OR sum(calls) FILTER (WHERE role = 'model_call') > 0 ORDER BY spend DESC NULLS LAST LIMIT 50"), "")]).field(unit("calls", "short")).field(model_link("model")),
            panel("Monthly budget", "Where will this month's spend end at the current daily rate, with a 90% interval, and when does the budget run out? Set the budget with the variable; budget_used and projected_use are spent and projected as shares of it (orange from 80%, red from 100%). The tenant filter applies when one tenant is selected (All or several: every tenant).", Table, "currencyUSD", G, 12, 6,
                vec![q(format!("SELECT spent::float8 AS spent, projected, lower, upper, runout_at, daily_rate, (spent / ${{budget:sqlstring}}::numeric)::float8 AS budget_used, projected / ${{budget:sqlstring}}::float8 AS projected_use FROM llm_budget(${{budget:sqlstring}}::numeric, (date_trunc('month', now() AT TIME ZONE 'UTC')) AT TIME ZONE 'UTC', (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC', tenant => {})", one_tenant()), "")]).field(unit("runout_at", "dateTimeAsIso")).field(Field { name: "budget_used", unit: Some("percentunit"), thresholds: BUDGET_STEPS.to_vec(), ..Field::default() }).field(Field { name: "projected_use", unit: Some("percentunit"), thresholds: BUDGET_STEPS.to_vec(), ..Field::default() }),
            panel("Stored budgets", "Every monthly budget stored with llm_set_budget (per tenant, optionally per service and model) for this UTC month: spent, the projected month-end spend at the current daily rate, when it runs out, and spent and projected as shares of the budget (orange from 80%, red from 100%). The tenant filter applies.", Table, "currencyUSD", G, 12, 6,
                vec![q(format!("SELECT coalesce(tenant, '(all tenants)') AS tenant, coalesce(service_name, '(all)') AS service, coalesce(model, '(all)') AS model, monthly_usd::float8 AS budget, spent::float8 AS spent, projected, runout_at, budget_used, projected_use FROM llm_budgets_status() WHERE {} ORDER BY projected_use DESC NULLS LAST, budget_used DESC", sql_filter("tenant", "tenant")), "")]).field(unit("runout_at", "dateTimeAsIso")).field(Field { name: "budget_used", unit: Some("percentunit"), thresholds: BUDGET_STEPS.to_vec(), ..Field::default() }).field(Field { name: "projected_use", unit: Some("percentunit"), thresholds: BUDGET_STEPS.to_vec(), ..Field::default() }),
            panel("Daily spend and forecast", "Daily spend (the whole UTC days of the selected range that have ended, days without spend as 0 from the first day with spend) and the linear trend for the seven days after them, with a 95% prediction interval.", TimeSeries, "currencyUSD", G, 12, 6,
                vec![q(sql(&format!("WITH s AS (SELECT date_trunc('day', bucket, 'UTC') AS day, sum(cost_usd)::float8 AS spend FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {{F}} AND {WHOLE_DAYS} GROUP BY 1),
     d AS (SELECT g AS day, coalesce(s.spend, 0) AS spend
             FROM generate_series((SELECT min(day) FROM s), {LAST_WHOLE_DAY}, interval '24 hours') g LEFT JOIN s ON s.day = g)
SELECT day AS time, spend AS actual, NULL::float8 AS forecast, NULL::float8 AS lower, NULL::float8 AS upper FROM d
UNION ALL
SELECT f.ts, NULL, f.value, f.lower, f.upper FROM llm_forecast_linear((SELECT array_agg(day ORDER BY day) FROM d), (SELECT array_agg(spend ORDER BY day) FROM d), 7) f
WHERE (SELECT count(*) FROM d) >= 3
ORDER BY 1")), "")]).field(band("upper", "lower")),
            panel("Costliest traces", "Which traces cost the most in the selected range? (From each hour's 100 costliest per tenant, the range's 500 costliest trace-hours; provider and model filters do not apply.)", Table, "currencyUSD", G, 12, 8,
                vec![q(sql_no_model("SELECT tenant, encode(trace_id, 'hex') AS trace_id, min(started) AS started, min(service_name) AS service, sum(spans) AS spans, sum(cost_usd)::float8 AS cost FROM (SELECT * FROM llm_rollup_top_traces_1h WHERE $__timeFilter(bucket) AND {F} ORDER BY cost_usd DESC LIMIT 500) t GROUP BY tenant, trace_id ORDER BY cost DESC LIMIT 20"), "")]).field(unit("spans", "short")).field(unit("started", "dateTimeAsIso")).field(trace_link("trace_id")),
            panel("Costliest conversations", "Which conversations cost the most in the selected range? (From each hour's 100 costliest per tenant, the range's 2000 costliest conversation-hours; provider and model filters do not apply.)", Table, "currencyUSD", G, 12, 8,
                vec![q(sql_no_model("SELECT tenant, conversation_id, min(started) AS started, sum(calls) AS calls, sum(cost_usd)::float8 AS cost FROM (SELECT * FROM llm_rollup_top_conversations_1h WHERE $__timeFilter(bucket) AND {F} ORDER BY cost_usd DESC LIMIT 2000) t GROUP BY tenant, conversation_id ORDER BY cost DESC LIMIT 20"), "")]).field(unit("calls", "short")).field(unit("started", "dateTimeAsIso")),
            panel("Hourly spend against its baseline", "Is this hour's spend unusual for its hour of the day and day of the week? With two weeks of history the baseline is the recent level times the hourly shape times the weekday factor (llm_anomalies_seasonal_trend over the 28 days before the range and the range): it flags spikes, outages and the first hours of a level shift. Before that, the median of the same hour on earlier days (llm_anomalies_seasonal, hour of day). Whole hours only (the hour in progress is left out); hours without spend count as 0 from the first hour with spend.", TimeSeries, "currencyUSD", G, 24, 8,
                vec![q(sql(&format!("WITH s AS (SELECT bucket, sum(cost_usd)::float8 AS spend FROM llm_rollup_1h WHERE {WHOLE_HOURS_WITH_HISTORY} AND {{F}} GROUP BY 1),
     h AS (SELECT g AS bucket, coalesce(s.spend, 0) AS spend
             FROM generate_series((SELECT min(bucket) FROM s), {LAST_WHOLE_HOUR}, interval '1 hour') g LEFT JOIN s ON s.bucket = g),
     a AS (SELECT array_agg(bucket ORDER BY bucket) AS ts, array_agg(spend ORDER BY bucket) AS v FROM h),
     w AS (SELECT f.* FROM a, llm_anomalies_seasonal_trend(a.ts, a.v) f),
     d AS (SELECT f.* FROM a, llm_anomalies_seasonal(a.ts, a.v, 'hour_of_day') f),
     b AS (SELECT ts, w.value, w.score IS NOT NULL AS weekly, w.expected AS w_expected, w.upper AS w_upper, w.is_anomaly AS w_anomaly,
                  d.expected AS d_expected, d.upper AS d_upper, d.is_anomaly AS d_anomaly FROM w JOIN d USING (ts))
SELECT ts AS time, value AS spend, CASE WHEN weekly THEN w_expected ELSE d_expected END AS expected,
       CASE WHEN weekly THEN w_upper ELSE d_upper END AS upper_band,
       CASE WHEN (weekly AND w_anomaly) OR (NOT weekly AND d_anomaly) THEN value END AS anomaly
FROM b WHERE ts >= {FIRST_WHOLE_HOUR}
ORDER BY 1")), "")]),
        ],
    }
}

fn performance() -> Dashboard {
    use Source::Postgres as G;
    use Viz::*;
    Dashboard {
        uid: "llmhub-performance",
        file: "llm-performance.json",
        title: "LLM performance and SLOs",
        description: "Latency and time-to-first-token percentiles merged from the rollups' quantile summaries over any range, error-budget burn, generation speed and latency anomalies.",
        from: "now-7d",
        panels: vec![
            panel("Error-budget burn (5 min / 1 h)", "Is the error budget burning fast enough to page? Both windows above 14.4x the sustainable rate alert (the multi-window, multi-burn-rate rule).", Table, "short", G, 12, 5,
                vec![q(format!("SELECT round(short_burn::numeric, 2)::float8 AS burn_5m, round(long_burn::numeric, 2)::float8 AS burn_1h, alert, short_errors, short_calls, long_errors, long_calls FROM llm_multi_window_burn(${{objective:sqlstring}}::float8, tenant => {})", one_tenant()), "")]).field(Field { name: "burn_5m", unit: Some("x"), thresholds: BURN_STEPS.to_vec(), ..Field::default() }).field(Field { name: "burn_1h", unit: Some("x"), thresholds: BURN_STEPS.to_vec(), ..Field::default() }),
            panel("Error ratio", "Which share of model calls failed in the selected range?", Stat, "percentunit", G, 6, 5,
                vec![q(sql(&format!("SELECT (sum(errors)::float8 / nullif(sum(calls), 0)) AS error_ratio FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {{F}} AND {MODEL_CALLS}")), "")]),
            panel("Latency p95 over the range", "How slow is the 95th percentile over the whole range (one merged summary, not an average of percentiles)?", Stat, "s", G, 6, 5,
                vec![q(adaptive(&sql(&format!("SELECT approx_percentile(0.95, rollup(duration_s)) AS p95 FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {{F}} AND {MODEL_CALLS}")), "1"), "")]),
            panel("Latency p50 / p95 / p99", "How long do model calls take, hour by hour (day by day beyond 3 days)?", TimeSeries, "s", G, 12, 8,
                vec![q(adaptive(&sql(&format!("SELECT $__timeGroupAlias(bucket, '1h'), approx_percentile(0.5, rollup(duration_s)) AS p50, approx_percentile(0.95, rollup(duration_s)) AS p95, approx_percentile(0.99, rollup(duration_s)) AS p99 FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {{F}} AND {MODEL_CALLS} GROUP BY 1 ORDER BY 1")), "1"), "")]),
            panel("Time to first token p50 / p95", "How long do streamed responses take to start, hour by hour (day by day beyond 3 days)?", TimeSeries, "s", G, 12, 8,
                vec![q(adaptive(&sql(&format!("SELECT $__timeGroupAlias(bucket, '1h'), approx_percentile(0.5, rollup(ttft_s)) AS p50, approx_percentile(0.95, rollup(ttft_s)) AS p95 FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {{F}} AND {MODEL_CALLS} GROUP BY 1 HAVING num_vals(rollup(ttft_s)) > 0 ORDER BY 1")), "1"), "")]),
            panel("Error ratio per hour", "When did failures rise?", TimeSeries, "percentunit", G, 12, 8,
                vec![q(sql(&format!("SELECT $__timeGroupAlias(bucket, '1h'), sum(errors)::float8 / nullif(sum(calls), 0) AS error_ratio FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {{F}} AND {MODEL_CALLS} GROUP BY 1 ORDER BY 1")), "")]),
            panel("Output tokens per second by model (median)", "How fast does each model generate?", BarGauge, "short", G, 12, 8,
                vec![q(adaptive(&sql(&format!("SELECT coalesce(model, '(none)') AS model, approx_percentile(0.5, rollup(output_tokens_per_s)) AS tokens_per_s FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {{F}} AND {MODEL_CALLS} GROUP BY 1 HAVING num_vals(rollup(output_tokens_per_s)) > 0 ORDER BY 2 DESC")), "2 DESC"), "")]),
            panel("Failures by error class", "Which errors do model calls end with, by provider and model, in the selected range? (error_type: the HTTP status or exception class the instrumentation reported.)", Table, "short", G, 12, 8,
                vec![q(sql(&format!("SELECT provider, model, coalesce(error_type, '(unknown)') AS error_class, sum(calls) AS calls FROM llm_rollup_outcomes_1h WHERE $__timeFilter(bucket) AND {{F}} AND {MODEL_CALLS} AND status = 'error' GROUP BY 1, 2, 3 ORDER BY calls DESC LIMIT 20")), "")]).field(model_link("model")),
            panel("Finish reasons by model", "How do successful model calls end, per model: stop, length (cut at the token limit), tool calls, content filter? The first choice's reason; share is of the model's successful calls in the range.", Table, "short", G, 12, 8,
                vec![q(sql(&format!("SELECT model, coalesce(finish_reason, '(none)') AS finish_reason, sum(calls) AS calls, (sum(calls)::float8 / sum(sum(calls)) OVER (PARTITION BY model)) AS share FROM llm_rollup_outcomes_1h WHERE $__timeFilter(bucket) AND {{F}} AND {MODEL_CALLS} AND status <> 'error' GROUP BY 1, 2 ORDER BY 1, 3 DESC LIMIT 50")), "")]).field(unit("share", "percentunit")).field(model_link("model")),
            panel("Slowest models", "Which models are slowest at p95 over the range, and how many calls is that based on?", Table, "s", G, 12, 8,
                vec![q(adaptive(&sql(&format!("SELECT model, provider, num_vals(rollup(duration_s)) AS calls, approx_percentile(0.5, rollup(duration_s)) AS p50, approx_percentile(0.95, rollup(duration_s)) AS p95, approx_percentile(0.99, rollup(duration_s)) AS p99 FROM llm_rollup_1h WHERE $__timeFilter(bucket) AND {{F}} AND {MODEL_CALLS} AND model IS NOT NULL GROUP BY 1, 2 ORDER BY p95 DESC NULLS LAST LIMIT 20")), "p95 DESC NULLS LAST"), "")]).field(unit("calls", "short")).field(model_link("model")),
            panel("p95 latency anomalies", "Is a period's p95 latency unusual? Ranges up to 3 days: each hour against its baseline with a daily and a weekly cycle (llm_anomalies_seasonal_trend over the range and the 28 days before it), or, before two weeks of history, against the previous 24 hours (robust z-score). Longer ranges: each day against the previous 7 (robust z-score). Hours and days without calls are gaps.", TimeSeries, "s", G, 24, 8,
                vec![q(sql(&format!("WITH h AS (SELECT bucket, approx_percentile(0.95, rollup(duration_s)) AS p95 FROM llm_rollup_1h
            WHERE bucket >= $__timeFrom()::timestamptz - interval '28 days' AND bucket <= $__timeTo()::timestamptz AND {{F}} AND {MODEL_CALLS}
              AND $__timeTo()::timestamptz - $__timeFrom()::timestamptz <= {HOURLY_UP_TO} GROUP BY 1),
     hg AS (SELECT g AS bucket, h.p95 FROM generate_series((SELECT min(bucket) FROM h), (SELECT max(bucket) FROM h), interval '1 hour') g
              LEFT JOIN h ON h.bucket = g),
     ha AS (SELECT array_agg(bucket ORDER BY bucket) AS ts, array_agg(p95 ORDER BY bucket) AS v FROM hg),
     w AS (SELECT f.* FROM ha, llm_anomalies_seasonal_trend(ha.ts, ha.v) f),
     r AS (SELECT f.* FROM ha, llm_anomalies_robust_z(ha.ts, ha.v, 24) f),
     hourly AS (SELECT ts, w.value, CASE WHEN w.score IS NOT NULL THEN w.expected ELSE r.expected END AS expected,
                       CASE WHEN w.score IS NOT NULL THEN w.upper ELSE r.upper END AS upper,
                       CASE WHEN w.score IS NOT NULL THEN w.is_anomaly ELSE r.is_anomaly END AS is_anomaly
                  FROM w JOIN r USING (ts) WHERE w.value IS NOT NULL AND $__timeFilter(ts)),
     d AS (SELECT bucket, approx_percentile(0.95, rollup(duration_s)) AS p95 FROM llm_rollup_1d WHERE $__timeFilter(bucket) AND {{F}} AND {MODEL_CALLS}
             AND $__timeTo()::timestamptz - $__timeFrom()::timestamptz > {HOURLY_UP_TO} GROUP BY 1),
     a AS (SELECT * FROM hourly
           UNION ALL
           SELECT ts, value, expected, upper, is_anomaly FROM llm_anomalies_robust_z((SELECT array_agg(bucket ORDER BY bucket) FROM d), (SELECT array_agg(p95 ORDER BY bucket) FROM d), 7))
SELECT a.ts AS time, a.value AS p95, a.expected, a.upper AS upper_band, CASE WHEN a.is_anomaly THEN a.value END AS anomaly
FROM a ORDER BY 1")), "")]),
        ],
    }
}

fn agents() -> Dashboard {
    use Source::{Postgres as G, Prometheus as P};
    use Viz::*;
    Dashboard {
        uid: "llmhub-agents",
        file: "llm-agents.json",
        title: "Agents and tools",
        description: "Agent invocations and tool calls with their durations (Prometheus), model calls per agent invocation and runaway loops (PostgreSQL rollups).",
        from: "now-6h",
        panels: vec![
            panel("Agent invocations per second", "Which agents run, and how often?", TimeSeries, "reqps", P, 12, 8,
                vec![q(r#"sum by (gen_ai_agent_name) (rate(llmhub_agent_duration_seconds_count{service_name=~"$service",deployment_environment_name=~"$environment"}[$__rate_interval]))"#, "{{gen_ai_agent_name}}")]),
            panel("Agent duration p95", "How long does an agent invocation take end to end?", TimeSeries, "s", P, 12, 8,
                vec![q(r#"histogram_quantile(0.95, sum by (le, gen_ai_agent_name) (rate(llmhub_agent_duration_seconds_bucket{service_name=~"$service",deployment_environment_name=~"$environment"}[$__rate_interval])))"#, "{{gen_ai_agent_name}}")]),
            panel("Tool calls per second", "Which tools are called, and how often?", TimeSeries, "reqps", P, 12, 8,
                vec![q(r#"sum by (gen_ai_tool_name) (rate(llmhub_tool_duration_seconds_count{service_name=~"$service",deployment_environment_name=~"$environment"}[$__rate_interval]))"#, "{{gen_ai_tool_name}}")]),
            panel("Tool duration p95", "Which tools are slow?", TimeSeries, "s", P, 12, 8,
                vec![q(r#"histogram_quantile(0.95, sum by (le, gen_ai_tool_name) (rate(llmhub_tool_duration_seconds_bucket{service_name=~"$service",deployment_environment_name=~"$environment"}[$__rate_interval])))"#, "{{gen_ai_tool_name}}")]),
            panel("Tool errors", "How many tool calls failed in the selected range, by tool?", BarGauge, "short", P, 12, 8,
                vec![q(r#"sort_desc(sum by (gen_ai_tool_name) (increase(llmhub_tool_duration_seconds_count{service_name=~"$service",deployment_environment_name=~"$environment",error_type!=""}[$__range]))) or vector(0)"#, "{{gen_ai_tool_name}}")]),
            panel("Model calls per agent invocation", "How many model and tool calls does one invocation of each agent make (mean and maximum)?", Table, "short", G, 12, 8,
                vec![q(sql_no_model("SELECT coalesce(agent_name, '(unnamed)') AS agent, sum(invocations) AS invocations, round(sum(model_calls)::numeric / sum(invocations), 1)::float8 AS model_calls_mean, max(max_model_calls) AS model_calls_max, round(sum(tool_calls)::numeric / sum(invocations), 1)::float8 AS tool_calls_mean, max(max_tool_calls) AS tool_calls_max FROM llm_rollup_agents_1h WHERE $__timeFilter(bucket) AND {F} GROUP BY 1 ORDER BY model_calls_mean DESC"), "")]),
            panel("Runaway agent loops", "Which agent invocations made far more calls than usual (more than 25 model and tool calls in one invocation)?", Table, "short", G, 24, 8,
                vec![q(sql_no_model("SELECT time AS started, agent_name AS agent, service_name AS service, encode(trace_id, 'hex') AS trace_id, model_calls + tool_calls AS calls, cost_usd::float8 AS cost FROM llm_agent_runaways WHERE $__timeFilter(time) AND {F} ORDER BY calls DESC LIMIT 20"), "")]).field(unit("cost", "currencyUSD")).field(unit("started", "dateTimeAsIso")).field(trace_link("trace_id")),
        ],
    }
}

/// Every bundled dashboard.
pub fn all() -> Vec<Dashboard> {
    vec![overview(), cost(), performance(), agents(), health()]
}

//! Ground truth for the Prometheus panels: each panel's figure over a window that holds exactly one
//! known batch of traffic, computed again from that batch's rows in `llm_calls` (or the load
//! generator's own span count) and compared value by value.
//!
//! Prometheus's `increase()` and `rate()` cannot see what a series counted before its first
//! scrape, so the window's traffic is a replay: the same calls (same labels, tokens and timings,
//! other ids) as a batch sent before the window, which made every series it touches. Over the
//! window every series then moves by exactly what the replay added, and `increase()` scales each
//! move by the same extrapolation factor (one scrape target: every series has the same sample
//! times), which [`extrapolation`] computes from those sample times the way Prometheus does.
//! Ratios and quantiles are free of the factor.

use super::super::common::prometheus::Prometheus;
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// How a panel's value relates to the rows' figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// `increase(...[$__range])`: the figure times the extrapolation factor.
    Increase,
    /// `rate(...[$__rate_interval])` with the interval set to the window: the figure times the
    /// factor, per second of the window.
    PerSecond,
    /// A ratio of two increases: the figure itself.
    Ratio,
    /// `histogram_quantile` over the window: the value Prometheus's interpolation gives for the
    /// rows' values in the histogram's buckets (the SQL returns the values, one per row).
    Quantile(f64),
}

/// One Prometheus panel query and its truth.
pub struct PromTruth {
    pub file: &'static str,
    pub title: &'static str,
    /// Which of the panel's queries.
    pub query: usize,
    /// The labels a result series is matched on (empty: one value).
    pub by: &'static [&'static str],
    pub scale: Scale,
    /// Over `batch` (the replay's rows, see [`check_all`]): the key (labels joined by `/`, in
    /// `by`'s order) and the figure; for a quantile, `''` and each value. `{spans}` is the
    /// replay's span count from the load generator.
    pub sql: &'static str,
    /// For a quantile: the histogram whose `le` boundaries the values fall into.
    pub histogram: &'static str,
}

/// Model calls among the replay's rows.
const CALLS: &str = "role = 'model_call'";

pub fn truths() -> Vec<PromTruth> {
    use Scale::*;
    let t = |file, title, query, by, scale, sql| PromTruth {
        file,
        title,
        query,
        by,
        scale,
        sql,
        histogram: "",
    };
    let q = |title, query, quantile, sql, histogram| PromTruth {
        file: "llm-overview.json",
        title,
        query,
        by: &[],
        scale: Quantile(quantile),
        sql,
        histogram,
    };
    const O: &str = "llm-overview.json";
    const H: &str = "llmhub-health.json";
    vec![
        t(O, "Model calls", 0, &[], Increase, "SELECT '', count(*)::float8 FROM batch WHERE {calls}"),
        t(O, "Error rate", 0, &[], Ratio,
          "SELECT '', (count(*) FILTER (WHERE error_class IS NOT NULL))::float8 / count(*) FROM batch WHERE {calls}"),
        t(O, "Cost", 0, &[], Increase,
          "SELECT '', sum(cost_usd)::float8 FROM batch WHERE {calls} AND price_status = 'priced'"),
        t(O, "Cache-hit ratio", 0, &[], Ratio,
          "SELECT '', sum(cache_read_tokens)::float8 / sum(input_uncached_tokens + cache_read_tokens + cache_write_tokens + cache_write_1h_tokens)
             FROM batch WHERE {calls} AND counts_usage AND usage_reported"),
        t(O, "Calls without a price", 0, &[], Increase,
          "SELECT '', count(*)::float8 FROM batch WHERE {calls} AND price_status IN ('unknown_model', 'no_price_at_date')"),
        t(O, "Calls without usage", 0, &[], Increase,
          "SELECT '', count(*)::float8 FROM batch WHERE {calls} AND counts_usage AND NOT usage_reported"),
        t(O, "Cost by service and model", 0, &["service_name", "gen_ai_request_model"], Increase,
          "SELECT service_name || '/' || coalesce(request_model, ''), sum(cost_usd)::float8 FROM batch
             WHERE {calls} AND price_status = 'priced' GROUP BY 1"),
        t(O, "Model calls per second by model", 0, &["gen_ai_request_model"], PerSecond,
          "SELECT coalesce(request_model, ''), count(*)::float8 FROM batch WHERE {calls} GROUP BY 1"),
        t(O, "Errors per second by class", 0, &["error_type"], PerSecond,
          "SELECT error_class, count(*)::float8 FROM batch WHERE {calls} AND error_class IS NOT NULL GROUP BY 1"),
        t(O, "Tokens per second by bucket", 0, &["llmhub_token_bucket"], PerSecond,
          "SELECT b, sum(n)::float8 FROM batch, LATERAL (VALUES ('input_uncached', input_uncached_tokens), ('cache_read', cache_read_tokens),
                 ('cache_write', cache_write_tokens), ('cache_write_1h', cache_write_1h_tokens), ('output', output_tokens),
                 ('reasoning', reasoning_tokens)) v(b, n)
             WHERE {calls} AND counts_usage AND usage_reported GROUP BY 1"),
        // Per second × 3600: the figure is the cost, scaled to an hour below.
        t(O, "Cost per hour by provider", 0, &["gen_ai_provider_name"], PerSecond,
          "SELECT coalesce(provider, ''), 3600 * sum(cost_usd)::float8 FROM batch WHERE {calls} AND price_status = 'priced' GROUP BY 1"),
        q("Latency p50 / p95 / p99", 0, 0.5, "SELECT '', duration_s FROM batch WHERE {calls} AND duration_s IS NOT NULL",
          "gen_ai_client_operation_duration_seconds_bucket"),
        q("Latency p50 / p95 / p99", 1, 0.95, "SELECT '', duration_s FROM batch WHERE {calls} AND duration_s IS NOT NULL",
          "gen_ai_client_operation_duration_seconds_bucket"),
        q("Latency p50 / p95 / p99", 2, 0.99, "SELECT '', duration_s FROM batch WHERE {calls} AND duration_s IS NOT NULL",
          "gen_ai_client_operation_duration_seconds_bucket"),
        q("Time to first token p50 / p95", 0, 0.5, "SELECT '', ttft_s FROM batch WHERE {calls} AND ttft_s IS NOT NULL",
          "gen_ai_client_operation_time_to_first_chunk_seconds_bucket"),
        q("Time to first token p50 / p95", 1, 0.95, "SELECT '', ttft_s FROM batch WHERE {calls} AND ttft_s IS NOT NULL",
          "gen_ai_client_operation_time_to_first_chunk_seconds_bucket"),
        t(H, "Spans received per second", 0, &["llmhub_transport"], PerSecond, "SELECT 'grpc', {spans}::float8"),
        t(H, "Spans by role", 0, &["llmhub_span_role"], PerSecond, "SELECT role, count(*)::float8 FROM batch GROUP BY 1"),
        t(H, "Sink rows written per second", 0, &[], PerSecond, "SELECT '', count(*)::float8 FROM batch"),
        t(H, "Spans refused per second by reason", 0, &[], PerSecond, "SELECT '', 0::float8"),
        t(H, "Sink retries per second by reason", 0, &[], PerSecond, "SELECT '', 0::float8"),
        t(H, "Dead letters", 0, &[], Increase, "SELECT '', 0::float8"),
        t(H, "Cardinality overflow", 0, &[], Increase, "SELECT '', 0::float8"),
    ]
}

/// Prometheus's extrapolation of a counter's increase over `[at - range, at]` whose samples are
/// at `times` (seconds; from the window's own range selection), for a series whose first value
/// in the window is `first_over_increase` times its increase (`extrapolatedRate`: the start is
/// extended no further than where the counter would reach zero; each end is extended to the
/// window's edge when the gap is under 1.1 average sample intervals, else by half an interval).
///
/// Prometheus subtracts timestamps as integer milliseconds. Epoch seconds as `f64` are only exact
/// to about 2.4e-7 s, enough to move the factor past the truths' 1e-9 tolerance, so the
/// differences here are taken in whole milliseconds too.
pub fn extrapolation(times: &[f64], at: f64, range: f64, first_over_increase: f64) -> f64 {
    let ms = |t: f64| (t * 1000.0).round() as i64;
    let seconds = |a: f64, b: f64| (ms(a) - ms(b)) as f64 / 1000.0;
    let (first, last) = (times[0], times[times.len() - 1]);
    let sampled = seconds(last, first);
    let average = sampled / (times.len() - 1) as f64;
    let threshold = average * 1.1;
    let to_start = seconds(first, at - range).min(sampled * first_over_increase);
    let to_end = seconds(at, last);
    let mut interval = sampled;
    interval += if to_start < threshold { to_start } else { average / 2.0 };
    interval += if to_end < threshold { to_end } else { average / 2.0 };
    interval / sampled
}

/// `histogram_quantile` of `values` in buckets with upper bounds `bounds` (ascending, `+Inf`
/// last), as Prometheus interpolates it: the bucket where the cumulative count first reaches
/// `q · n`, linearly from its lower bound (0 for the first).
pub fn bucket_quantile(q: f64, values: &[f64], bounds: &[f64]) -> f64 {
    let cumulative: Vec<f64> = bounds
        .iter()
        .map(|b| values.iter().filter(|v| **v <= *b).count() as f64)
        .collect();
    let n = values.len() as f64;
    let rank = q * n;
    let b = cumulative.iter().position(|c| *c >= rank).unwrap_or(bounds.len() - 1);
    if b == bounds.len() - 1 {
        return bounds[bounds.len() - 2];
    }
    let (start, below) = if b == 0 {
        (0.0, 0.0)
    } else {
        (bounds[b - 1], cumulative[b - 1])
    };
    start + (bounds[b] - start) * ((rank - below) / (cumulative[b] - below))
}

/// The panel's query for an instant evaluation over the window: every filter at "All", both
/// range variables the window's length.
pub fn expand(q: &str, range: u64) -> String {
    let mut s = q.to_owned();
    for v in ["tenant", "service", "provider", "model", "environment"] {
        s = s.replace(&format!("${v}"), ".*");
    }
    s.replace("$__rate_interval", &format!("{range}s"))
        .replace("$__range", &format!("{range}s"))
}

/// An instant query at `at`: each result series' key (its `by` labels joined by `/`) and value.
pub async fn instant(prom: &Prometheus, expr: &str, at: u64, by: &[&str]) -> Result<BTreeMap<String, f64>, String> {
    let v = prom
        .api("query", &[("query", expr.to_owned()), ("time", at.to_string())])
        .await;
    if v["status"] != "success" {
        return Err(format!("{expr}: {v}"));
    }
    let mut out = BTreeMap::new();
    for series in v["data"]["result"].as_array().into_iter().flatten() {
        let key = by
            .iter()
            .map(|l| series["metric"][*l].as_str().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("/");
        let value: f64 = series["value"][1]
            .as_str()
            .and_then(|x| x.parse().ok())
            .ok_or_else(|| format!("{expr}: value of {series}"))?;
        if out.insert(key.clone(), value).is_some() {
            return Err(format!("{expr}: two series for {key:?}"));
        }
    }
    Ok(out)
}

/// The sample times (seconds) of `metric` in `[at - range, at]`: one target, so any series'.
pub async fn sample_times(prom: &Prometheus, metric: &str, at: u64, range: u64) -> Vec<f64> {
    let v = prom
        .api(
            "query",
            &[("query", format!("{metric}[{range}s]")), ("time", at.to_string())],
        )
        .await;
    v["data"]["result"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("no samples of {metric}: {v}"))
        .iter()
        .map(|p| p[0].as_f64().expect("sample time"))
        .collect()
}

/// The upper bounds of a histogram's buckets, ascending, `+Inf` last.
pub async fn bounds(prom: &Prometheus, histogram: &str) -> Vec<f64> {
    let v = prom.query(&format!("count by (le) ({histogram})")).await;
    let mut b: Vec<f64> = v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("no {histogram}: {v}"))
        .iter()
        .map(|s| {
            let le = s["metric"]["le"].as_str().expect("le");
            if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("a bound")
            }
        })
        .collect();
    b.sort_by(f64::total_cmp);
    b
}

/// What the panel should show for `t` over the window: key → value.
pub async fn expected(
    t: &PromTruth,
    c: &Client,
    prom: &Prometheus,
    spans: u64,
    factor: f64,
    range: u64,
) -> BTreeMap<String, f64> {
    let sql = t.sql.replace("{calls}", CALLS).replace("{spans}", &spans.to_string());
    let rows = c
        .query(sql.as_str(), &[])
        .await
        .unwrap_or_else(|e| panic!("{}/{}: truth: {e}\n{sql}", t.file, t.title));
    let figures = rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, Option<f64>>(1)));
    match t.scale {
        Scale::Quantile(q) => {
            let values: Vec<f64> = figures.filter_map(|(_, v)| v).collect();
            let b = bounds(prom, t.histogram).await;
            BTreeMap::from([(String::new(), bucket_quantile(q, &values, &b))])
        }
        scale => figures
            .map(|(k, v)| {
                let v = v.unwrap_or(0.0);
                let v = match scale {
                    Scale::Increase => v * factor,
                    Scale::PerSecond => v * factor / range as f64,
                    _ => v,
                };
                (k, v)
            })
            .collect(),
    }
}

/// Compares a panel's series with the expected ones: the same keys (a panel may also show a
/// series at 0 that the rows have none of, as `or vector(0)` does), each value within 1e-9
/// relative.
pub fn compare(got: &BTreeMap<String, f64>, want: &BTreeMap<String, f64>) -> Result<(), String> {
    for (k, w) in want {
        let g = got.get(k).copied();
        let ok = g.is_some_and(|g| (g - w).abs() <= 1e-9 * w.abs().max(1e-9));
        if !ok {
            return Err(format!("{k:?}: {g:?} where the rows give {w}"));
        }
    }
    for (k, g) in got {
        if !want.contains_key(k) && *g != 0.0 {
            return Err(format!("{k:?}: {g}, a series the rows do not have"));
        }
    }
    Ok(())
}

/// The panel's query text.
pub fn panel_query(t: &PromTruth) -> String {
    super::panel_query(t.file, t.title, t.query, llmhub_dashboards::Source::Prometheus)
}

/// Every truth over the window `[at - range, at]`; returns how many were compared.
pub async fn check_all(prom: &Prometheus, c: &Client, spans: u64, at: u64, range: u64, factor: f64) -> usize {
    let mut compared = 0;
    for t in truths() {
        let expr = expand(&panel_query(&t), range);
        let got = instant(prom, &expr, at, t.by)
            .await
            .unwrap_or_else(|e| panic!("{}/{}: {e}", t.file, t.title));
        let want = expected(&t, c, prom, spans, factor, range).await;
        if let Err(e) = compare(&got, &want) {
            panic!("{}/{} over the replay's window: {e}\n{expr}", t.file, t.title);
        }
        compared += 1;
    }
    compared
}

/// Wrong panels, each off by a unit, a label or a filter: every one whose values differ from the
/// right panel's must fail its truth. Returns (mutants that changed the values, mutants tried).
pub async fn mutants_are_caught(
    prom: &Prometheus,
    c: &Client,
    spans: u64,
    at: u64,
    range: u64,
    factor: f64,
) -> (usize, usize) {
    let edits: [(&str, &str); 8] = [
        ("increase(", "rate("),
        ("rate(", "increase("),
        (" * 3600", ""),
        ("sum by (gen_ai_request_model)", "sum by (service_name)"),
        ("llmhub_errors_total", "llmhub_requests_total"),
        ("cache_read", "cache_write"),
        (
            r#",gen_ai_operation_name!~"invoke_agent|create_agent|execute_tool""#,
            "",
        ),
        ("histogram_quantile(0.95", "histogram_quantile(0.9"),
    ];
    let (mut changed, mut tried) = (0, 0);
    for t in truths() {
        let expr = expand(&panel_query(&t), range);
        let right = instant(prom, &expr, at, t.by).await.expect("the right panel runs");
        let want = expected(&t, c, prom, spans, factor, range).await;
        for (from, to) in edits.iter().filter(|(from, _)| expr.contains(from)) {
            tried += 1;
            let mutant = expr.replacen(from, to, 1);
            let Ok(got) = instant(prom, &mutant, at, t.by).await else {
                continue;
            };
            if compare(&got, &right).is_ok() {
                continue; // The same values on this data.
            }
            changed += 1;
            assert!(
                compare(&got, &want).is_err(),
                "{}/{}: the mutant {from} -> {to} changes the values, yet its truth holds\n{mutant}",
                t.file,
                t.title
            );
        }
    }
    (changed, tried)
}

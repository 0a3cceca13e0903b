//! Anomalies, forecasts, budgets and SLOs in SQL: thin wrappers over `llmhub-analytics` taking a
//! series as two arrays (times and values, ordered by time, e.g. `array_agg(... ORDER BY bucket)`
//! over a rollup), plus SQL functions that read the rollups for budgets and burn rates.
//!
//! A NULL, NaN or infinite value in a series is a missing point: the detectors return it unscored,
//! the linear fit skips it, Holt-Winters and budgets refuse it (fill gaps first).

use llmhub_analytics as an;
use pgrx::prelude::*;

/// Microseconds per second.
const US: i64 = 1_000_000;
/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_S: i64 = 946_684_800;

/// Raises the crate's error with the argument spelled as in the SQL signature.
fn fail(e: an::AnalyticsError) -> ! {
    let msg = e.to_string();
    let sql_name = match e.argument() {
        "values" => "vals",
        "window" => "window_size",
        other => other,
    };
    error!("{}", msg.replacen(e.argument(), sql_name, 1))
}

fn series(vals: Vec<Option<f64>>) -> Vec<f64> {
    vals.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect()
}

fn micros(ts: &[Option<TimestampWithTimeZone>]) -> Vec<i64> {
    ts.iter()
        .enumerate()
        .map(|(i, t)| match t {
            Some(t) if t.is_finite() => pg_sys::TimestampTz::from(*t),
            Some(t) => error!("ts[{}] must be a finite time, got {t}", i + 1),
            None => error!("ts[{}] must be a finite time, got NULL", i + 1),
        })
        .collect()
}

fn timestamp(us: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(us).unwrap_or_else(|e| error!("time out of range: {e:?}"))
}

/// A series from its two SQL arrays: times (µs) and values (missing points as NaN), of equal length.
fn timed_series(ts: &[Option<TimestampWithTimeZone>], vals: Vec<Option<f64>>) -> (Vec<i64>, Vec<f64>) {
    let (t, v) = (micros(ts), series(vals));
    if t.len() != v.len() {
        error!("ts and vals must have the same length, got {} and {}", t.len(), v.len());
    }
    (t, v)
}

fn usize_arg(name: &str, v: i32) -> usize {
    usize::try_from(v).unwrap_or_else(|_| error!("{name} must not be negative, got {v}"))
}

fn nan_null(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

#[allow(clippy::type_complexity)]
fn scored(
    ts: Vec<i64>,
    points: Vec<an::Scored>,
) -> TableIterator<
    'static,
    (
        name!(ts, TimestampWithTimeZone),
        name!(value, Option<f64>),
        name!(expected, Option<f64>),
        name!(lower, Option<f64>),
        name!(upper, Option<f64>),
        name!(score, Option<f64>),
        name!(is_anomaly, bool),
    ),
> {
    TableIterator::new(ts.into_iter().zip(points).map(|(t, p)| {
        (
            timestamp(t),
            p.value.is_finite().then_some(p.value),
            nan_null(p.expected),
            nan_null(p.lower),
            nan_null(p.upper),
            nan_null(p.score),
            p.anomaly,
        )
    }))
}

/// Robust z-score of each point against the median and MAD of the `window_size` points before it.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe)]
fn llm_anomalies_robust_z(
    ts: Vec<Option<TimestampWithTimeZone>>,
    vals: Vec<Option<f64>>,
    window_size: default!(i32, 24),
    threshold: default!(f64, 3.5),
) -> TableIterator<
    'static,
    (
        name!(ts, TimestampWithTimeZone),
        name!(value, Option<f64>),
        name!(expected, Option<f64>),
        name!(lower, Option<f64>),
        name!(upper, Option<f64>),
        name!(score, Option<f64>),
        name!(is_anomaly, bool),
    ),
> {
    let (t, v) = timed_series(&ts, vals);
    let out = an::robust_z(&v, usize_arg("window_size", window_size), threshold).unwrap_or_else(|e| fail(e));
    scored(t, out)
}

/// EWMA control chart: expected value and band `expected ± k·σ` from the points before.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe)]
fn llm_anomalies_ewma(
    ts: Vec<Option<TimestampWithTimeZone>>,
    vals: Vec<Option<f64>>,
    alpha: default!(f64, 0.3),
    k: default!(f64, 3.0),
) -> TableIterator<
    'static,
    (
        name!(ts, TimestampWithTimeZone),
        name!(value, Option<f64>),
        name!(expected, Option<f64>),
        name!(lower, Option<f64>),
        name!(upper, Option<f64>),
        name!(score, Option<f64>),
        name!(is_anomaly, bool),
    ),
> {
    let (t, v) = timed_series(&ts, vals);
    let out = an::ewma(&v, alpha, k).unwrap_or_else(|e| fail(e));
    scored(t, out)
}

/// The season key of a time (UTC): hour of day 0–23, day of week 0–6 (Sunday 0), or hour of week.
fn season_key(season: &str, us: i64) -> u32 {
    let secs = us.div_euclid(US) + PG_EPOCH_S;
    let hour = secs.div_euclid(3600).rem_euclid(24) as u32;
    // 1970-01-01 was a Thursday (4).
    let dow = (secs.div_euclid(86_400) + 4).rem_euclid(7) as u32;
    match season {
        "hour_of_day" => hour,
        "day_of_week" => dow,
        "hour_of_week" => dow * 24 + hour,
        other => error!("season must be 'hour_of_day', 'day_of_week' or 'hour_of_week', got {other:?}"),
    }
}

/// Seasonal baseline: each point against the earlier points of the same hour of day, day of week or
/// hour of week (UTC).
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe)]
fn llm_anomalies_seasonal(
    ts: Vec<Option<TimestampWithTimeZone>>,
    vals: Vec<Option<f64>>,
    season: default!(&str, "'hour_of_day'"),
    min_history: default!(i32, 3),
    threshold: default!(f64, 3.5),
) -> TableIterator<
    'static,
    (
        name!(ts, TimestampWithTimeZone),
        name!(value, Option<f64>),
        name!(expected, Option<f64>),
        name!(lower, Option<f64>),
        name!(upper, Option<f64>),
        name!(score, Option<f64>),
        name!(is_anomaly, bool),
    ),
> {
    let (t, v) = timed_series(&ts, vals);
    let keys: Vec<u32> = t.iter().map(|us| season_key(season, *us)).collect();
    let out = an::seasonal(&v, &keys, usize_arg("min_history", min_history), threshold).unwrap_or_else(|e| fail(e));
    scored(t, out)
}

/// Hourly series with a daily cycle, a weekly cycle and a trend: each hour against `level ×
/// hourly shape × weekday factor` from the hours before it (UTC days). Missing hours keep their
/// place.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe)]
fn llm_anomalies_seasonal_trend(
    ts: Vec<Option<TimestampWithTimeZone>>,
    vals: Vec<Option<f64>>,
    threshold: default!(f64, 5.0),
) -> TableIterator<
    'static,
    (
        name!(ts, TimestampWithTimeZone),
        name!(value, Option<f64>),
        name!(expected, Option<f64>),
        name!(lower, Option<f64>),
        name!(upper, Option<f64>),
        name!(score, Option<f64>),
        name!(is_anomaly, bool),
    ),
> {
    let (t, v) = timed_series(&ts, vals);
    if t.len() < 2 {
        // Nothing to place on a grid: every point is warm-up (and the threshold still checked).
        let out = an::seasonal_trend(&v, 0, threshold).unwrap_or_else(|e| fail(e));
        return scored(t, out);
    }
    let g = grid(&t);
    if g.step != 3600 * US {
        error!(
            "ts must be hourly: its smallest gap is {} s, not 3600 s (one row per date_trunc('hour', time))",
            g.step as f64 / US as f64
        );
    }
    let on_grid = g.spread(&v).unwrap_or_else(|e| fail(e));
    let all = an::seasonal_trend(&on_grid, season_key("hour_of_week", g.start), threshold).unwrap_or_else(|e| fail(e));
    let out = g.positions.iter().map(|&k| all[k]).collect();
    scored(t, out)
}

/// The series' times on their regular step (the smallest gap), errors naming `ts` with times
/// written as times.
fn grid(t: &[i64]) -> an::Grid {
    an::Grid::of(t).unwrap_or_else(|e| match e {
        an::AnalyticsError::Grid { index, problem, .. } => {
            let at = |i: usize| timestamp(t[i]);
            let step = |us: i64| format!("{} s", us as f64 / US as f64);
            match problem {
                an::GridProblem::NotIncreasing => {
                    error!("ts must increase: ts[{}] ({}) is not after ts[{}] ({})", index + 1, at(index), index, at(index - 1))
                }
                an::GridProblem::OffGrid { step: s } => error!(
                    "ts must be evenly spaced: ts[{}] ({}) is not a whole number of steps of {} (the smallest gap) after ts[1] ({})",
                    index + 1,
                    at(index),
                    step(s),
                    at(0)
                ),
                an::GridProblem::TooLong { step: s, steps } => error!(
                    "ts spans {steps} steps of {} from ts[1] to ts[{}], more than {}",
                    step(s),
                    index + 1,
                    an::MAX_GRID_STEPS
                ),
                an::GridProblem::Missing { .. } => fail(e),
            }
        }
        an::AnalyticsError::Length { got, .. } => {
            error!("ts: need at least 2 points to know the step, got {got}")
        }
        other => fail(other),
    })
}

/// Refuses a series with missing steps, naming the gap as times.
fn require_complete(g: &an::Grid, t: &[i64]) {
    if let Some((index, missing)) = g.first_gap() {
        error!(
            "ts has a gap: {missing} step(s) of {} s missing between ts[{}] ({}) and ts[{}] ({}); this forecast needs every step, so fill the gap (e.g. generate_series over the range, LEFT JOIN, coalesce(spend, 0) where no row means no spend)",
            g.step as f64 / US as f64,
            index,
            timestamp(t[index - 1]),
            index + 1,
            timestamp(t[index])
        );
    }
}

/// Forecast rows: step `k` lies `k` grid steps after the last point.
#[allow(clippy::type_complexity)]
fn forecast_rows(
    g: &an::Grid,
    f: an::Forecast,
) -> TableIterator<
    'static,
    (
        name!(ts, TimestampWithTimeZone),
        name!(step, i32),
        name!(value, f64),
        name!(lower, f64),
        name!(upper, f64),
    ),
> {
    let last = g.len() - 1;
    let times: Vec<i64> = f
        .points
        .iter()
        .map(|p| {
            g.time_at(last + p.step)
                .unwrap_or_else(|| error!("horizon reaches beyond the last representable time"))
        })
        .collect();
    TableIterator::new(f.points.into_iter().zip(times).map(|(p, at)| {
        (
            timestamp(at),
            i32::try_from(p.step).unwrap_or(i32::MAX),
            p.value,
            p.lower,
            p.upper,
        )
    }))
}

/// Additive Holt-Winters forecast (level, trend, season of `period` points) with a prediction
/// interval at confidence `level`.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe)]
fn llm_forecast_holt_winters(
    ts: Vec<Option<TimestampWithTimeZone>>,
    vals: Vec<Option<f64>>,
    period: i32,
    horizon: i32,
    level: default!(f64, 0.95),
) -> TableIterator<
    'static,
    (
        name!(ts, TimestampWithTimeZone),
        name!(step, i32),
        name!(value, f64),
        name!(lower, f64),
        name!(upper, f64),
    ),
> {
    let (t, v) = timed_series(&ts, vals);
    let g = grid(&t);
    require_complete(&g, &t);
    let f = an::holt_winters(&v, usize_arg("period", period), usize_arg("horizon", horizon), level)
        .unwrap_or_else(|e| fail(e));
    forecast_rows(&g, f)
}

/// Linear-trend forecast (least squares) with a Student-t prediction interval at `level`.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe)]
fn llm_forecast_linear(
    ts: Vec<Option<TimestampWithTimeZone>>,
    vals: Vec<Option<f64>>,
    horizon: i32,
    level: default!(f64, 0.95),
) -> TableIterator<
    'static,
    (
        name!(ts, TimestampWithTimeZone),
        name!(step, i32),
        name!(value, f64),
        name!(lower, f64),
        name!(upper, f64),
    ),
> {
    let (t, v) = timed_series(&ts, vals);
    let g = grid(&t);
    // Time is x: a missing step stays missing instead of closing up the series.
    let spread = g.spread(&v).unwrap_or_else(|e| fail(e));
    let f = an::linear(&spread, usize_arg("horizon", horizon), level).unwrap_or_else(|e| fail(e));
    forecast_rows(&g, f)
}

/// Budget projection from the spend of each completed day of a period: spend so far, projected
/// period-end spend with an interval at `level`, and the (fractional) day the budget runs out.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe)]
fn llm_budget_projection(
    daily_spend: Vec<Option<f64>>,
    days_in_period: i32,
    budget: f64,
    level: default!(f64, 0.9),
) -> TableIterator<
    'static,
    (
        name!(spent, f64),
        name!(projected, f64),
        name!(lower, Option<f64>),
        name!(upper, Option<f64>),
        name!(runout_day, Option<f64>),
        name!(daily_rate, f64),
    ),
> {
    let days = series(daily_spend);
    let p = an::budget(&days, usize_arg("days_in_period", days_in_period), budget, level).unwrap_or_else(|e| fail(e));
    TableIterator::once((p.spent, p.projected, p.lower, p.upper, p.runout_day, p.daily_rate))
}

/// Error-budget burn rate: the error ratio `bad / total` over the budget `1 − objective`.
#[pg_extern(immutable, parallel_safe, strict)]
fn llm_burn_rate(bad: i64, total: i64, objective: f64) -> f64 {
    an::burn_rate(bad as f64, total as f64, objective).unwrap_or_else(|e| fail(e))
}

/// Share of input tokens served from the prompt cache: cache reads over all input tokens; NULL
/// when there were none.
#[pg_extern(immutable, parallel_safe)]
fn llm_cache_hit_ratio(
    cache_read: i64,
    input_uncached: i64,
    cache_write: default!(i64, 0),
    cache_write_1h: default!(i64, 0),
) -> Option<f64> {
    for (name, v) in [
        ("cache_read", cache_read),
        ("input_uncached", input_uncached),
        ("cache_write", cache_write),
        ("cache_write_1h", cache_write_1h),
    ] {
        if v < 0 {
            error!("{name} must not be negative, got {v}");
        }
    }
    let all = cache_read as f64 + input_uncached as f64 + cache_write as f64 + cache_write_1h as f64;
    (all > 0.0).then(|| cache_read as f64 / all)
}

/// Output tokens per second of generation; NULL for a zero duration.
#[pg_extern(immutable, parallel_safe, strict)]
fn llm_output_tokens_per_second(output_tokens: i64, duration_s: f64) -> Option<f64> {
    if output_tokens < 0 {
        error!("output_tokens must not be negative, got {output_tokens}");
    }
    if !duration_s.is_finite() || duration_s < 0.0 {
        error!("duration_s must be a finite number >= 0, got {duration_s}");
    }
    (duration_s > 0.0).then(|| output_tokens as f64 / duration_s)
}

extension_sql!(
    r#"
CREATE FUNCTION llm_cost_per_1k_tokens(cost_usd numeric, tokens bigint) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT AS $fn$
BEGIN
    IF tokens < 0 THEN RAISE EXCEPTION 'tokens must not be negative, got %', tokens; END IF;
    IF cost_usd < 0 THEN RAISE EXCEPTION 'cost_usd must not be negative, got %', cost_usd; END IF;
    RETURN CASE WHEN tokens = 0 THEN NULL ELSE cost_usd * 1000 / tokens END;
END
$fn$;
COMMENT ON FUNCTION llm_cost_per_1k_tokens(numeric, bigint) IS 'USD per 1 000 tokens (exact); NULL for no tokens.';

CREATE FUNCTION llm_multi_window_burn(objective double precision, short_window interval DEFAULT '5 minutes',
    long_window interval DEFAULT '1 hour', threshold double precision DEFAULT 14.4, tenant text DEFAULT NULL,
    service_name text DEFAULT NULL, model text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE (short_burn double precision, long_burn double precision, alert boolean,
               short_errors bigint, short_calls bigint, long_errors bigint, long_calls bigint)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    t timestamptz := date_trunc('minute', as_of, 'UTC');
BEGIN
    IF short_window IS NULL OR short_window < interval '1 minute' THEN
        RAISE EXCEPTION 'short_window must be at least 1 minute (the rollups'' resolution), got %', short_window;
    END IF;
    IF long_window IS NULL OR long_window <= short_window THEN
        RAISE EXCEPTION 'long_window must be longer than short_window, got % and %', long_window, short_window;
    END IF;
    SELECT coalesce(sum(r.errors) FILTER (WHERE r.bucket >= t - short_window), 0),
           coalesce(sum(r.calls) FILTER (WHERE r.bucket >= t - short_window), 0),
           coalesce(sum(r.errors), 0), coalesce(sum(r.calls), 0)
      INTO short_errors, short_calls, long_errors, long_calls
      FROM @extschema@.llm_rollup_1m r
     WHERE r.bucket >= t - long_window AND r.bucket < t AND r.role = 'model_call'
       AND (llm_multi_window_burn.tenant IS NULL OR r.tenant = llm_multi_window_burn.tenant)
       AND (llm_multi_window_burn.service_name IS NULL OR r.service_name = llm_multi_window_burn.service_name)
       AND (llm_multi_window_burn.model IS NULL OR r.model = llm_multi_window_burn.model);
    short_burn := @extschema@.llm_burn_rate(short_errors, short_calls, objective);
    long_burn := @extschema@.llm_burn_rate(long_errors, long_calls, objective);
    alert := short_burn > threshold AND long_burn > threshold;
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION llm_multi_window_burn(double precision, interval, interval, double precision, text, text, text, timestamptz) IS
  'Multi-window error-budget burn of model calls (not agent, tool or workflow steps) over the minute rollups ending at the last complete minute before as_of: alert when both windows burn faster than threshold (14.4 over 1 h and 5 min pages at a 2% monthly budget spend in an hour).';

CREATE FUNCTION llm_latency_burn(threshold_s double precision, objective double precision,
    short_window interval DEFAULT '5 minutes', long_window interval DEFAULT '1 hour', threshold double precision DEFAULT 14.4,
    tenant text DEFAULT NULL, service_name text DEFAULT NULL, model text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE (short_burn double precision, long_burn double precision, alert boolean,
               short_slow bigint, short_calls bigint, long_slow bigint, long_calls bigint)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    t timestamptz := date_trunc('minute', as_of, 'UTC');
    short_s @extschema@.quantile_summary;
    long_s @extschema@.quantile_summary;
BEGIN
    IF threshold_s IS NULL OR NOT threshold_s > 0 OR threshold_s = 'Infinity' THEN
        RAISE EXCEPTION 'threshold_s must be a positive number of seconds, got %', threshold_s;
    END IF;
    IF objective IS NULL OR NOT (objective > 0 AND objective < 1) THEN
        RAISE EXCEPTION 'objective must be between 0 and 1 (exclusive), e.g. 0.99, got %', objective;
    END IF;
    IF short_window IS NULL OR short_window < interval '1 minute' THEN
        RAISE EXCEPTION 'short_window must be at least 1 minute (the rollups'' resolution), got %', short_window;
    END IF;
    IF long_window IS NULL OR long_window <= short_window THEN
        RAISE EXCEPTION 'long_window must be longer than short_window, got % and %', long_window, short_window;
    END IF;
    SELECT @extschema@.rollup(r.duration_s) FILTER (WHERE r.bucket >= t - short_window), @extschema@.rollup(r.duration_s)
      INTO short_s, long_s
      FROM @extschema@.llm_rollup_1m r
     WHERE r.bucket >= t - long_window AND r.bucket < t AND r.role = 'model_call'
       AND (llm_latency_burn.tenant IS NULL OR r.tenant = llm_latency_burn.tenant)
       AND (llm_latency_burn.service_name IS NULL OR r.service_name = llm_latency_burn.service_name)
       AND (llm_latency_burn.model IS NULL OR r.model = llm_latency_burn.model);
    short_calls := coalesce(@extschema@.num_vals(short_s), 0);
    long_calls := coalesce(@extschema@.num_vals(long_s), 0);
    -- The rank is a count over the calls: multiplied back, it is that count (rounding undoes the
    -- division's last bit).
    short_slow := short_calls - coalesce(round(@extschema@.approx_percentile_rank(threshold_s, short_s) * short_calls)::bigint, 0);
    long_slow := long_calls - coalesce(round(@extschema@.approx_percentile_rank(threshold_s, long_s) * long_calls)::bigint, 0);
    short_burn := CASE WHEN short_calls = 0 THEN 0 ELSE short_slow::double precision / short_calls / (1 - objective) END;
    long_burn := CASE WHEN long_calls = 0 THEN 0 ELSE long_slow::double precision / long_calls / (1 - objective) END;
    alert := short_burn > threshold AND long_burn > threshold;
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION llm_latency_burn(double precision, double precision, interval, interval, double precision, text, text, text, timestamptz) IS
  'Latency SLO burn ("objective of model calls finish within threshold_s") over the minute rollups ending at the last complete minute before as_of: the share of calls slower than threshold_s (from the duration summaries, within their error bound) over the budget 1 - objective, in a short and a long window; alert when both burn faster than threshold.';

CREATE FUNCTION llm_budget(budget numeric, period_start timestamptz, period_end timestamptz, tenant text DEFAULT NULL,
    as_of timestamptz DEFAULT now(), level double precision DEFAULT 0.9, service_name text DEFAULT NULL, model text DEFAULT NULL)
RETURNS TABLE (spent numeric, projected double precision, lower double precision, upper double precision,
               runout_at timestamptz, daily_rate double precision)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    days integer;
    done integer;
    daily double precision[];
    p record;
BEGIN
    IF budget IS NULL OR budget <= 0 THEN RAISE EXCEPTION 'budget must be a positive amount, got %', budget; END IF;
    IF period_start IS NULL OR period_end IS NULL OR period_end <= period_start THEN
        RAISE EXCEPTION 'period_end must be after period_start, got % and %', period_start, period_end;
    END IF;
    -- Days of 24 hours (UTC): interval arithmetic on timestamptz would follow the session's time zone.
    IF extract(epoch FROM period_end - period_start)::numeric % 86400 <> 0 THEN
        RAISE EXCEPTION 'period_end - period_start must be whole days, got %', period_end - period_start;
    END IF;
    days := (extract(epoch FROM period_end - period_start)::numeric / 86400)::integer;
    -- Completed days before as_of: the projection's basis.
    done := greatest(0, least(days, floor(extract(epoch FROM least(as_of, period_end) - period_start) / 86400)::integer));
    -- One pass over the completed days' hours, grouped by day (a subquery per day would apply
    -- the readers' row-level security once per day).
    SELECT coalesce(array_agg(coalesce(s.spend, 0)::double precision ORDER BY d.n), '{}')
      INTO daily
      FROM generate_series(0, done - 1) d(n)
      LEFT JOIN (
          SELECT floor(extract(epoch FROM r.bucket - period_start) / 86400)::integer AS n, sum(r.cost_usd) AS spend
            FROM @extschema@.llm_rollup_1h r
           WHERE r.bucket >= period_start AND r.bucket < period_start + done * interval '24 hours'
             AND (llm_budget.tenant IS NULL OR r.tenant = llm_budget.tenant) AND (llm_budget.service_name IS NULL OR r.service_name = llm_budget.service_name)
             AND (llm_budget.model IS NULL OR r.model = llm_budget.model)
           GROUP BY 1) s ON s.n = d.n;
    -- Whole hours from the hourly rollups, the rest of the hour containing as_of from the minutes.
    SELECT coalesce((SELECT sum(r.cost_usd) FROM @extschema@.llm_rollup_1h r
                      WHERE r.bucket >= period_start AND r.bucket < least(date_trunc('hour', as_of, 'UTC'), period_end)
                        AND (llm_budget.tenant IS NULL OR r.tenant = llm_budget.tenant) AND (llm_budget.service_name IS NULL OR r.service_name = llm_budget.service_name)
             AND (llm_budget.model IS NULL OR r.model = llm_budget.model)), 0)
         + coalesce((SELECT sum(r.cost_usd) FROM @extschema@.llm_rollup_1m r
                      WHERE r.bucket >= greatest(date_trunc('hour', as_of, 'UTC'), period_start) AND r.bucket <= least(as_of, period_end - interval '1 microsecond')
                        AND (llm_budget.tenant IS NULL OR r.tenant = llm_budget.tenant) AND (llm_budget.service_name IS NULL OR r.service_name = llm_budget.service_name)
             AND (llm_budget.model IS NULL OR r.model = llm_budget.model)), 0)
      INTO spent;
    IF done = 0 THEN
        projected := NULL; lower := NULL; upper := NULL; runout_at := NULL; daily_rate := NULL;
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT * INTO p FROM @extschema@.llm_budget_projection(daily, days, budget::double precision, level);
    -- The projection is from completed days; today's spend so far is part of the remaining days.
    projected := p.projected; lower := p.lower; upper := p.upper; daily_rate := p.daily_rate;
    runout_at := period_start + p.runout_day * interval '24 hours';
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION llm_budget(numeric, timestamptz, timestamptz, text, timestamptz, double precision, text, text) IS
  'Spend of a budget period from the hourly rollups (of one tenant, service and model when given): spent so far, projected period-end spend with an interval at level (from the completed days'' mean daily spend), and when the budget runs out at that rate.';
"#,
    name = "analytics_sql",
    requires = ["rollups", llm_burn_rate, llm_budget_projection]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test(error = "vals: need at least 2 full seasons (8 points) for a seasonal model, got 2")]
    fn a_series_too_short_for_its_season_is_an_error_naming_it() {
        Spi::run("SELECT * FROM llm_forecast_holt_winters(ARRAY['2026-01-01'::timestamptz, '2026-01-02'], ARRAY[1, 2]::float8[], 4, 2)").unwrap();
    }

    #[pg_test(
        error = "ts has a gap: 1 step(s) of 3600 s missing between ts[3] (2026-01-01 02:00:00+00) and ts[4] (2026-01-01 04:00:00+00); this forecast needs every step, so fill the gap (e.g. generate_series over the range, LEFT JOIN, coalesce(spend, 0) where no row means no spend)"
    )]
    fn a_missing_hour_is_an_error_naming_it_for_holt_winters() {
        Spi::run(
            "SET TIME ZONE 'UTC'; SELECT * FROM llm_forecast_holt_winters(
                 ARRAY(SELECT timestamptz '2026-01-01 00:00+00' + g * interval '1 hour' FROM generate_series(0, 9) g WHERE g <> 3),
                 ARRAY[1, 2, 3, 5, 6, 7, 8, 9, 10]::float8[], 4, 2)",
        )
        .unwrap();
    }

    #[pg_test(
        error = "ts must be evenly spaced: ts[3] (2026-01-01 02:30:00+00) is not a whole number of steps of 3600 s (the smallest gap) after ts[1] (2026-01-01 00:00:00+00)"
    )]
    fn uneven_times_are_an_error_naming_the_first_off_the_step() {
        Spi::run(
            "SET TIME ZONE 'UTC'; SELECT * FROM llm_forecast_linear(
                 ARRAY['2026-01-01 00:00+00', '2026-01-01 01:00+00', '2026-01-01 02:30+00', '2026-01-01 03:30+00']::timestamptz[],
                 ARRAY[1, 2, 3, 4]::float8[], 2)",
        )
        .unwrap();
    }

    #[pg_test(error = "ts must increase: ts[3] (2026-01-01 01:00:00+00) is not after ts[2] (2026-01-01 01:00:00+00)")]
    fn a_repeated_time_is_an_error_naming_it() {
        Spi::run(
            "SET TIME ZONE 'UTC'; SELECT * FROM llm_forecast_linear(
                 ARRAY['2026-01-01 00:00+00', '2026-01-01 01:00+00', '2026-01-01 01:00+00']::timestamptz[],
                 ARRAY[1, 2, 3]::float8[], 2)",
        )
        .unwrap();
    }

    /// The latency burn against the exact count of slow calls in the raw rows: the estimate may
    /// differ only by calls within the summaries' error bound of the threshold.
    #[pg_test]
    fn latency_burn_counts_the_calls_slower_than_the_threshold() {
        Spi::run("SELECT llm_create_partitions(current_date - 1, current_date)").expect("partitions");
        Spi::run(&crate::insert_calls_sql(20_000, 2)).expect("insert");
        Spi::run("SELECT llm_refresh_rollups()").expect("refresh");
        for (threshold, window) in [(2.0, "30 minutes"), (0.8, "90 minutes"), (5.0, "2 hours")] {
            let row = crate::sql_text(&format!(
                "WITH b AS (SELECT * FROM llm_latency_burn({threshold}, 0.95, interval '5 minutes', interval '{window}')),
                      raw AS (SELECT count(*) FILTER (WHERE duration_s > {threshold}) AS slow, count(duration_s) AS n,
                                     count(*) FILTER (WHERE duration_s BETWEEN {threshold} / (1 + e) AND {threshold} / (1 - e)) AS near
                                FROM llm_calls, (SELECT error_bound(rollup(duration_s)) AS e FROM llm_rollup_1m) eb
                               WHERE role = 'model_call' AND time >= date_trunc('minute', now(), 'UTC') - interval '{window}'
                                 AND time < date_trunc('minute', now(), 'UTC'))
                 SELECT concat_ws(' ', b.long_calls = raw.n, abs(b.long_slow - raw.slow) <= raw.near, raw.slow > 0,
                                  abs(b.long_burn - b.long_slow::float8 / b.long_calls / 0.05) < 1e-9, b.long_slow, raw.slow, raw.near)
                   FROM b, raw"
            ));
            let row = row.unwrap_or_default();
            assert!(row.starts_with("t t t t "), "{threshold} s over {window}: {row}");
        }
    }

    #[pg_test(error = "threshold_s must be a positive number of seconds, got 0")]
    fn a_zero_latency_threshold_is_an_error_naming_it() {
        Spi::run("SELECT * FROM llm_latency_burn(0, 0.99)").unwrap();
    }

    #[pg_test(error = "value must be a number, got NaN")]
    fn a_nan_rank_value_is_an_error_naming_it() {
        Spi::run("SELECT approx_percentile_rank('NaN', quantile_summary_agg(1.0))").unwrap();
    }

    #[pg_test(error = "window_size must be at least 3, got 1")]
    fn a_window_too_small_is_an_error_naming_it() {
        Spi::run("SELECT * FROM llm_anomalies_robust_z(ARRAY['2026-01-01'::timestamptz], ARRAY[1]::float8[], window_size => 1)").unwrap();
    }

    #[pg_test(error = "ts and vals must have the same length, got 1 and 2")]
    fn series_of_different_lengths_are_an_error() {
        Spi::run("SELECT * FROM llm_anomalies_ewma(ARRAY['2026-01-01'::timestamptz], ARRAY[1, 2]::float8[])").unwrap();
    }

    #[pg_test(error = "ts[1] must be a finite time, got NULL")]
    fn a_null_time_is_an_error_naming_its_position() {
        Spi::run("SELECT * FROM llm_anomalies_ewma(ARRAY[NULL, '2026-01-01'::timestamptz], ARRAY[1, 2]::float8[])")
            .unwrap();
    }

    #[pg_test(error = "objective must be between 0 and 1 (exclusive), e.g. 0.999, got 1")]
    fn an_objective_of_one_is_an_error_naming_it() {
        Spi::run("SELECT llm_burn_rate(1, 10, 1)").unwrap();
    }

    /// Three weeks from a Tuesday 05:00 UTC: a daily cycle, quiet weekends, ±5% noise, a
    /// four-hour outage and a level shift; hour 300 has no row.
    const SEASONAL_TREND_SERIES: &str = "SELECT timestamptz '2026-11-03 05:00+00' + g * interval '1 hour' AS ts,
            (100 + 60 * sin(2 * pi() * ((g + 5) % 24 - 9) / 24))
            * CASE WHEN extract(dow FROM (timestamptz '2026-11-03 05:00+00' + g * interval '1 hour') AT TIME ZONE 'UTC') IN (0, 6) THEN 0.5 ELSE 1 END
            * (1 + (g * 7919 % 11 - 5) / 100.0)
            * CASE WHEN g BETWEEN 400 AND 403 THEN 0.02 ELSE 1 END
            * CASE WHEN g >= 450 THEN 1.5 ELSE 1 END AS v
       FROM generate_series(0, 503) g WHERE g <> 300";

    #[pg_test]
    fn seasonal_trend_places_the_hours_on_their_grid_and_week() {
        // The same series computed here, on its grid (hour 300 missing), from hour of week 53.
        let values: Vec<f64> = (0..504usize)
            .map(|g| {
                if g == 300 {
                    return f64::NAN;
                }
                let dow = (2 + (g + 5) / 24) % 7;
                let hod = ((g + 5) % 24) as f64;
                (100.0 + 60.0 * (2.0 * std::f64::consts::PI * (hod - 9.0) / 24.0).sin())
                    * if dow == 0 || dow == 6 { 0.5 } else { 1.0 }
                    * (1.0 + ((g * 7919 % 11) as f64 - 5.0) / 100.0)
                    * if (400..=403).contains(&g) { 0.02 } else { 1.0 }
                    * if g >= 450 { 1.5 } else { 1.0 }
            })
            .collect();
        let want = llmhub_analytics::seasonal_trend(&values, 53, 5.0).unwrap();
        let want_flags: Vec<i64> = (0..504).filter(|&g| want[g].anomaly).map(|g| g as i64).collect();
        assert!(want_flags.contains(&400) && want_flags.contains(&450), "{want_flags:?}");
        let sql = format!(
            "WITH s AS ({SEASONAL_TREND_SERIES})
             SELECT extract(epoch FROM f.ts - timestamptz '2026-11-03 05:00+00')::bigint / 3600 AS g, f.expected, f.is_anomaly
               FROM llm_anomalies_seasonal_trend((SELECT array_agg(ts ORDER BY ts) FROM s), (SELECT array_agg(v ORDER BY ts) FROM s)) f"
        );
        let rows: Vec<(i64, Option<f64>, bool)> = Spi::connect(|c| {
            c.select(&sql, None, &[])
                .unwrap()
                .map(|r| {
                    (
                        r.get(1).unwrap().unwrap(),
                        r.get(2).unwrap(),
                        r.get(3).unwrap().unwrap(),
                    )
                })
                .collect()
        });
        assert_eq!(rows.len(), 503);
        let flags: Vec<i64> = rows.iter().filter(|r| r.2).map(|r| r.0).collect();
        assert_eq!(flags, want_flags);
        for (g, expected, _) in &rows {
            let w = want[*g as usize].expected;
            match expected {
                Some(e) => assert!((e - w).abs() <= 1e-9 * w.abs(), "hour {g}: {e} against {w}"),
                None => assert!(w.is_nan(), "hour {g}"),
            }
        }
    }

    #[pg_test(
        error = "ts must be hourly: its smallest gap is 1800 s, not 3600 s (one row per date_trunc('hour', time))"
    )]
    fn seasonal_trend_refuses_a_series_that_is_not_hourly() {
        Spi::run("SELECT * FROM llm_anomalies_seasonal_trend(ARRAY['2026-01-01 00:00+00', '2026-01-01 00:30+00']::timestamptz[], ARRAY[1, 2]::float8[])").unwrap();
    }

    #[pg_test(error = "threshold must be a positive finite number, got 0")]
    fn seasonal_trend_refuses_a_zero_threshold() {
        Spi::run("SELECT * FROM llm_anomalies_seasonal_trend(ARRAY['2026-01-01'::timestamptz], ARRAY[1]::float8[], threshold => 0)").unwrap();
    }

    #[pg_test]
    fn missing_points_are_returned_unscored_and_infinities_do_not_crash() {
        let unscored = Spi::get_one::<i64>(
            "SELECT count(*) FILTER (WHERE score IS NULL AND NOT is_anomaly)
               FROM llm_anomalies_robust_z(ARRAY(SELECT timestamptz '2026-01-01' + g * interval '1 hour' FROM generate_series(1, 40) g),
                    ARRAY(SELECT CASE WHEN g IN (30, 31, 32) THEN (ARRAY[NULL, 'NaN', 'Infinity']::float8[])[g - 29] ELSE g % 3 END
                            FROM generate_series(1, 40) g), window_size => 5)",
        )
        .unwrap();
        // 5 warm-up points and the 3 missing ones.
        assert_eq!(unscored, Some(8));
    }
}

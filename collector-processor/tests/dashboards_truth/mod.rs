//! Ground truth for the SQL panels: each panel's figures computed again from the raw rows
//! (`llm_calls_view`, as the same reader), by the definition the panel's description gives, and
//! compared value by value with what the panel's query returns. Counts and cost must be equal;
//! quantiles within the summaries' error bound of the exact order statistic.
//!
//! The panel and its truth run in one REPEATABLE READ transaction, so they see the same rows and
//! the same `now()`. Raw rows count up to the rollups' watermark (the refresh rolled up every row
//! before it, and none after).

pub mod prom;

use llmhub_dashboards::Source;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};

/// One value of a result row. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Num(f64),
    Text(String),
    Bool(bool),
}

impl Cell {
    fn num(&self) -> Option<f64> {
        match self {
            Cell::Num(x) => Some(*x),
            _ => None,
        }
    }
}

/// The cells of a row, by column type.
pub fn cells(row: &Row) -> Vec<Cell> {
    (0..row.len())
        .map(|i| {
            let ty = row.columns()[i].type_().clone();
            let num = |x: Option<f64>| x.map_or(Cell::Null, Cell::Num);
            match ty {
                Type::FLOAT8 => num(row.get::<_, Option<f64>>(i)),
                Type::FLOAT4 => num(row.get::<_, Option<f32>>(i).map(f64::from)),
                Type::INT8 => num(row.get::<_, Option<i64>>(i).map(|x| x as f64)),
                Type::INT4 => num(row.get::<_, Option<i32>>(i).map(f64::from)),
                Type::NUMERIC => num(row
                    .get::<_, Option<rust_decimal::Decimal>>(i)
                    .map(|d| d.to_string().parse().expect("a decimal number"))),
                Type::TIMESTAMPTZ => num(row
                    .get::<_, Option<SystemTime>>(i)
                    .map(|t| t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64())),
                Type::BOOL => row.get::<_, Option<bool>>(i).map_or(Cell::Null, Cell::Bool),
                Type::TEXT | Type::VARCHAR | Type::NAME => {
                    row.get::<_, Option<String>>(i).map_or(Cell::Null, Cell::Text)
                }
                other => panic!("column {} of type {other} has no cell reading", row.columns()[i].name()),
            }
        })
        .collect()
}

/// How a column is compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Col {
    /// Identifies the row (a time, a name): equal, and rows are matched on these.
    Key,
    /// A count, a sum of cost, a ratio of them: equal up to float rounding (1e-9 relative).
    Exact,
    /// An approximate quantile: within the summaries' relative error bound of the exact value.
    Quantile,
    /// Not compared (a detector's band, an interval checked by the analytics' own tests).
    Skip,
}

/// How the rows are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rows {
    /// The same rows (matched on the key columns), in any order.
    All,
    /// The panel shows the first `limit` by column `by` (descending) of the truth's rows: every
    /// row it shows is one of them, and none it leaves out ranks above the ones it shows.
    Top { limit: usize, by: usize },
}

/// The truth of one panel: a query over `raw` (the rows of the range) and friends, see
/// [`with_raw`].
pub struct Truth {
    pub file: &'static str,
    pub title: &'static str,
    pub cols: &'static [Col],
    pub rows: Rows,
    /// Runs for the day range (hourly rollups) and/or the week range (daily rollups).
    pub day: bool,
    /// The rollup is rebuilt by whole hours (top traces, conversations): it holds the rows of the
    /// watermark's hour that were there at the refresh, past the watermark too.
    pub whole_hours: bool,
    pub week: bool,
    pub sql: &'static str,
}

/// The summaries' relative error bound (0.389%, binary buckets; no collapse at these sizes),
/// with room for the float rounding of the comparison.
const QUANTILE_TOLERANCE: f64 = 0.0039 * 1.0001;

/// The exact order statistic a summary approximates: the value at rank ⌊q·(n − 1)⌋.
fn order_stat(q: f64, col: &str) -> String {
    format!(
        "(array_agg({col} ORDER BY {col}) FILTER (WHERE {col} IS NOT NULL))[floor({q} * (count({col}) - 1))::int + 1]"
    )
}

/// The CTEs every truth reads: `visible` (the reader's rows up to the watermark), `raw` (those
/// in the range's buckets: hours for the day range, days for the week), with the bucket as `b`.
fn with_raw(sql: &str, from: &str, to: &str, watermark: &str, unit: &str) -> String {
    let sql = sql
        .replace("{p50}", &order_stat(0.5, "duration_s"))
        .replace("{p95}", &order_stat(0.95, "duration_s"))
        .replace("{p99}", &order_stat(0.99, "duration_s"))
        .replace("{ttft50}", &order_stat(0.5, "ttft_s"))
        .replace("{ttft95}", &order_stat(0.95, "ttft_s"))
        .replace("{tps50}", &order_stat(0.5, "output_tokens_per_s"));
    format!(
        "WITH visible AS (SELECT * FROM llm_calls_view WHERE time < '{watermark}'),
              raw AS (SELECT *, date_trunc('{unit}', time, 'UTC') AS b FROM visible
                       WHERE date_trunc('{unit}', time, 'UTC') BETWEEN '{from}' AND '{to}'),
              model_calls AS (SELECT * FROM raw WHERE role = 'model_call')
         {sql}"
    )
}

/// Every SQL panel's truth.
pub fn truths() -> Vec<Truth> {
    use Col::*;
    vec![
        Truth {
            file: "llm-cost.json",
            title: "Spend in range",
            cols: &[Exact],
            rows: Rows::All,
            day: true,
            week: false,
            whole_hours: false,
            sql: "SELECT coalesce(sum(cost_usd), 0)::float8 FROM raw",
        },
        Truth {
            file: "llm-cost.json",
            title: "Model calls in range",
            cols: &[Exact],
            rows: Rows::All,
            day: true,
            week: false,
            whole_hours: false,
            sql: "SELECT count(*) FROM model_calls",
        },
        Truth {
            file: "llm-cost.json",
            title: "Cost per 1K tokens",
            cols: &[Exact],
            rows: Rows::All,
            day: true,
            week: false,
            whole_hours: false,
            sql: "SELECT (sum(cost_usd) * 1000 / nullif(sum(coalesce(input_uncached_tokens, 0) + coalesce(cache_read_tokens, 0)
                         + coalesce(cache_write_tokens, 0) + coalesce(cache_write_1h_tokens, 0) + coalesce(output_tokens, 0)
                         + coalesce(reasoning_tokens, 0)) FILTER (WHERE counts_usage), 0))::float8 FROM raw",
        },
        Truth {
            file: "llm-cost.json",
            title: "Calls without a price",
            cols: &[Exact],
            rows: Rows::All,
            day: true,
            week: false,
            whole_hours: false,
            sql: "SELECT count(*) FROM model_calls WHERE counts_usage AND input_uncached_tokens IS NOT NULL AND price_status <> 'priced'",
        },
        Truth {
            file: "llm-cost.json",
            title: "Spend per hour by provider",
            cols: &[Key, Key, Exact],
            rows: Rows::All,
            day: true,
            week: false,
            whole_hours: false,
            sql: "SELECT extract(epoch FROM b), coalesce(provider, '(none)'), sum(cost_usd)::float8 FROM raw GROUP BY 1, 2 HAVING sum(cost_usd) > 0",
        },
        Truth {
            file: "llm-cost.json",
            title: "Spend by tenant, service and model",
            cols: &[Key, Key, Key, Exact, Exact],
            rows: Rows::Top { limit: 50, by: 4 },
            day: true,
            week: false,
            whole_hours: false,
            sql: "SELECT tenant, service_name, model, count(*) FILTER (WHERE role = 'model_call'), coalesce(sum(cost_usd), 0)::float8 FROM raw
                  GROUP BY 1, 2, 3 HAVING sum(cost_usd) > 0 OR count(*) FILTER (WHERE role = 'model_call') > 0",
        },
        Truth {
            file: "llm-cost.json",
            title: "Monthly budget",
            // spent, projected, lower, upper, runout_at, daily_rate, and spent and projected as
            // shares of the budget variable's default (1000)
            cols: &[Exact, Exact, Skip, Skip, Skip, Exact, Exact, Exact],
            rows: Rows::All,
            day: true,
            week: false,
            whole_hours: false,
            sql: ", m AS (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS s),
                    p AS (SELECT m.s, floor(extract(epoch FROM now() - m.s) / 86400)::int AS done,
                                 (extract(epoch FROM (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC' - m.s) / 86400)::int AS days
                            FROM m),
                    done AS (SELECT coalesce(sum(v.cost_usd), 0) AS c FROM visible v, p WHERE v.time >= p.s AND v.time < p.s + p.done * interval '24 hours')
               , spent AS (SELECT coalesce(sum(v.cost_usd), 0) AS c FROM visible v, p WHERE v.time >= p.s)
               SELECT spent.c::float8, (done.c + (p.days - p.done) * done.c / nullif(p.done, 0))::float8, NULL::float8, NULL::float8,
                      NULL::timestamptz, (done.c / nullif(p.done, 0))::float8, (spent.c / 1000)::float8,
                      (done.c + (p.days - p.done) * done.c / nullif(p.done, 0))::float8 / 1000
                 FROM done, p, spent",
        },
        Truth {
            file: "llm-cost.json",
            title: "Stored budgets",
            // tenant, service, model, budget, spent, projected, runout_at, budget_used, projected_use:
            // the spend of each budget's scope this month, from the raw rows the reader sees.
            cols: &[Key, Key, Key, Exact, Exact, Skip, Skip, Exact, Skip],
            rows: Rows::All,
            day: true,
            week: false,
            whole_hours: false,
            sql: ", m AS (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS s)
               SELECT coalesce(b.tenant, '(all tenants)'), coalesce(b.service_name, '(all)'), coalesce(b.model, '(all)'),
                      b.monthly_usd::float8, coalesce(sum(v.cost_usd), 0)::float8, NULL::float8, NULL::timestamptz,
                      (coalesce(sum(v.cost_usd), 0) / b.monthly_usd)::float8, NULL::float8
                 FROM llm_budgets b CROSS JOIN m
                 LEFT JOIN visible v ON v.time >= m.s AND (b.tenant IS NULL OR v.tenant = b.tenant)
                      AND (b.service_name IS NULL OR v.service_name = b.service_name) AND (b.model IS NULL OR v.model = b.model)
                GROUP BY b.tenant, b.service_name, b.model, b.monthly_usd",
        },
        Truth {
            file: "llm-cost.json",
            title: "Costliest traces",
            // tenant, trace, started, service, spans, cost: trace-hours with a cost, summed.
            cols: &[Key, Key, Exact, Key, Exact, Exact],
            rows: Rows::Top { limit: 20, by: 5 },
            day: true,
            week: false,
            whole_hours: true,
            // As documented: each hour's 100 costliest per tenant, then the range's 500 costliest
            // trace-hours.
            sql: ", th AS (SELECT tenant, trace_id, b, min(time) AS started, min(service_name) AS service, count(*) AS spans, sum(cost_usd) AS cost,
                                 row_number() OVER (PARTITION BY b, tenant ORDER BY sum(cost_usd) DESC NULLS LAST) AS rank
                          FROM raw GROUP BY 1, 2, 3),
                    top AS (SELECT * FROM th WHERE rank <= 100 AND cost IS NOT NULL ORDER BY cost DESC LIMIT 500)
               SELECT tenant, encode(trace_id, 'hex'), min(started), min(service), sum(spans), sum(cost)::float8 FROM top GROUP BY 1, 2",
        },
        Truth {
            file: "llm-cost.json",
            title: "Costliest conversations",
            cols: &[Key, Key, Exact, Exact, Exact],
            rows: Rows::Top { limit: 20, by: 4 },
            day: true,
            week: false,
            whole_hours: true,
            sql: ", ch AS (SELECT tenant, conversation_id, b, min(time) AS started, count(*) AS calls, sum(cost_usd) AS cost,
                                 row_number() OVER (PARTITION BY b, tenant ORDER BY sum(cost_usd) DESC NULLS LAST) AS rank
                          FROM raw WHERE conversation_id IS NOT NULL GROUP BY 1, 2, 3),
                    top AS (SELECT * FROM ch WHERE rank <= 100 AND cost IS NOT NULL ORDER BY cost DESC LIMIT 2000)
               SELECT tenant, conversation_id, min(started), sum(calls), sum(cost)::float8 FROM top GROUP BY 1, 2",
        },
        Truth {
            file: "llm-cost.json",
            title: "Hourly spend against its baseline",
            // Whole hours in the range from the first with spend in it or the 28 days before (the
            // baseline's history), hours without spend 0.
            cols: &[Key, Exact, Skip, Skip, Skip],
            rows: Rows::All,
            day: true,
            week: false,
            whole_hours: false,
            sql: ", whole AS (SELECT date_trunc('hour', time, 'UTC') AS b, coalesce(sum(cost_usd), 0) AS spend FROM visible
                             WHERE time >= date_trunc('hour', '{from}'::timestamptz - interval '1 microsecond', 'UTC') + interval '1 hour' - interval '28 days'
                               AND time < date_trunc('hour', least('{to}'::timestamptz, now()), 'UTC') GROUP BY 1)
               SELECT extract(epoch FROM g), coalesce(whole.spend, 0)::float8
                      , NULL::float8, NULL::float8, NULL::float8
                 FROM generate_series(greatest((SELECT min(b) FROM whole),
                                               date_trunc('hour', '{from}'::timestamptz - interval '1 microsecond', 'UTC') + interval '1 hour'),
                                      date_trunc('hour', least('{to}'::timestamptz, now()), 'UTC') - interval '1 hour', interval '1 hour') g
                 LEFT JOIN whole ON whole.b = g",
        },
        Truth {
            file: "llm-cost.json",
            title: "Daily spend and forecast",
            // The actual whole days only (the forecast is checked against a fit of them).
            cols: &[Key, Exact, Skip, Skip, Skip],
            rows: Rows::All,
            day: false,
            week: true,
            whole_hours: false,
            sql: ", whole AS (SELECT b, coalesce(sum(cost_usd), 0) AS spend FROM raw
                             WHERE b >= date_trunc('day', '{from}'::timestamptz - interval '1 microsecond', 'UTC') + interval '24 hours'
                               AND b < date_trunc('day', least('{to}'::timestamptz, now()), 'UTC') GROUP BY 1)
               SELECT extract(epoch FROM g), coalesce(whole.spend, 0)::float8, NULL::float8, NULL::float8, NULL::float8
                 FROM generate_series((SELECT min(b) FROM whole), date_trunc('day', least('{to}'::timestamptz, now()), 'UTC') - interval '24 hours', interval '24 hours') g
                 LEFT JOIN whole ON whole.b = g",
        },
        Truth {
            file: "llm-performance.json",
            title: "Error-budget burn (5 min / 1 h)",
            // burn_5m, burn_1h, alert, short_errors, short_calls, long_errors, long_calls, over
            // the minutes before the current one (and the watermark).
            cols: &[Exact, Exact, Key, Exact, Exact, Exact, Exact],
            rows: Rows::All,
            day: true,
            week: false,
            whole_hours: false,
            sql: ", w AS (SELECT * FROM visible WHERE role = 'model_call' AND time < date_trunc('minute', now(), 'UTC')
                            AND time >= date_trunc('minute', now(), 'UTC') - interval '1 hour'),
                    c AS (SELECT count(*) FILTER (WHERE status = 'error' AND time >= date_trunc('minute', now(), 'UTC') - interval '5 minutes') AS se,
                                 count(*) FILTER (WHERE time >= date_trunc('minute', now(), 'UTC') - interval '5 minutes') AS sc,
                                 count(*) FILTER (WHERE status = 'error') AS le, count(*) AS lc FROM w)
               SELECT round((CASE WHEN sc = 0 THEN 0 ELSE se::float8 / sc / (1 - 0.99::float8) END)::numeric, 2)::float8,
                      round((CASE WHEN lc = 0 THEN 0 ELSE le::float8 / lc / (1 - 0.99::float8) END)::numeric, 2)::float8,
                      sc > 0 AND lc > 0 AND se::float8 / sc / (1 - 0.99::float8) > 14.4 AND le::float8 / lc / (1 - 0.99::float8) > 14.4,
                      se, sc, le, lc FROM c",
        },
        Truth {
            file: "llm-performance.json",
            title: "Error ratio",
            cols: &[Exact],
            rows: Rows::All,
            day: true,
            week: false,
            whole_hours: false,
            sql: "SELECT (count(*) FILTER (WHERE status = 'error'))::float8 / nullif(count(*), 0) FROM model_calls",
        },
        Truth {
            file: "llm-performance.json",
            title: "Latency p95 over the range",
            cols: &[Quantile],
            rows: Rows::All,
            day: true,
            week: true,
            whole_hours: false,
            sql: "SELECT {p95} FROM model_calls",
        },
        Truth {
            file: "llm-performance.json",
            title: "Latency p50 / p95 / p99",
            cols: &[Key, Quantile, Quantile, Quantile],
            rows: Rows::All,
            day: true,
            week: true,
            whole_hours: false,
            sql: "SELECT extract(epoch FROM b), {p50}, {p95}, {p99} FROM model_calls GROUP BY 1",
        },
        Truth {
            file: "llm-performance.json",
            title: "Time to first token p50 / p95",
            cols: &[Key, Quantile, Quantile],
            rows: Rows::All,
            day: true,
            week: true,
            whole_hours: false,
            sql: "SELECT extract(epoch FROM b), {ttft50}, {ttft95} FROM model_calls GROUP BY 1 HAVING count(ttft_s) > 0",
        },
        Truth {
            file: "llm-performance.json",
            title: "Error ratio per hour",
            cols: &[Key, Exact],
            rows: Rows::All,
            day: true,
            week: false,
            whole_hours: false,
            sql: "SELECT extract(epoch FROM b), (count(*) FILTER (WHERE status = 'error'))::float8 / nullif(count(*), 0) FROM model_calls GROUP BY 1",
        },
        Truth {
            file: "llm-performance.json",
            title: "Output tokens per second by model (median)",
            cols: &[Key, Quantile],
            rows: Rows::All,
            day: true,
            week: true,
            whole_hours: false,
            sql: "SELECT coalesce(model, '(none)'), {tps50} FROM model_calls GROUP BY 1 HAVING count(output_tokens_per_s) > 0",
        },
        Truth {
            file: "llm-performance.json",
            title: "Slowest models",
            cols: &[Key, Key, Exact, Quantile, Quantile, Quantile],
            rows: Rows::Top { limit: 20, by: 4 },
            day: true,
            week: true,
            whole_hours: false,
            sql: "SELECT model, provider, count(duration_s), {p50}, {p95}, {p99} FROM model_calls WHERE model IS NOT NULL GROUP BY 1, 2",
        },
        Truth {
            file: "llm-performance.json",
            title: "Failures by error class",
            cols: &[Key, Key, Key, Exact],
            rows: Rows::Top { limit: 20, by: 3 },
            day: true,
            week: false,
            whole_hours: true,
            sql: "SELECT provider, model, coalesce(error_type, '(unknown)'), count(*) FROM model_calls WHERE status = 'error' GROUP BY 1, 2, 3",
        },
        Truth {
            file: "llm-performance.json",
            title: "Finish reasons by model",
            cols: &[Key, Key, Exact, Exact],
            rows: Rows::All,
            day: true,
            week: false,
            whole_hours: true,
            sql: "SELECT model, coalesce(finish_reasons[1], '(none)'), count(*), count(*)::float8 / sum(count(*)) OVER (PARTITION BY model)
                    FROM model_calls WHERE status <> 'error' GROUP BY 1, 2",
        },
        Truth {
            file: "llm-performance.json",
            title: "p95 latency anomalies",
            cols: &[Key, Quantile, Skip, Skip, Skip],
            rows: Rows::All,
            day: true,
            week: true,
            whole_hours: false,
            sql: "SELECT extract(epoch FROM b), {p95}, NULL::float8, NULL::float8, NULL::float8 FROM model_calls GROUP BY 1",
        },
    ]
}

fn rfc3339(secs: u64) -> String {
    llmhub_dashboards::rfc3339(secs)
}

/// Whether `got` is within the column's tolerance (times `widen`) of `want`.
fn close(col: Col, got: &Cell, want: &Cell, widen: f64) -> bool {
    match (col, got, want) {
        (Col::Skip, _, _) => true,
        (_, Cell::Num(g), Cell::Num(w)) => {
            let tol = widen * if col == Col::Quantile { QUANTILE_TOLERANCE } else { 1e-9 };
            (g - w).abs() <= tol * w.abs().max(1e-12) || (g - w).abs() < 1e-12
        }
        _ => got == want,
    }
}

fn key(cols: &[Col], row: &[Cell]) -> Vec<String> {
    cols.iter()
        .zip(row)
        .filter(|(c, _)| **c == Col::Key)
        .map(|(_, v)| format!("{v:?}"))
        .collect()
}

/// Compares a panel's rows with its truth's; the error says which row and column differ.
pub fn compare(t: &Truth, panel: &[Vec<Cell>], truth: &[Vec<Cell>]) -> Result<(), String> {
    compare_within(t, panel, truth, 1.0)
}

/// [`compare`] with the tolerances times `widen`.
fn compare_within(t: &Truth, panel: &[Vec<Cell>], truth: &[Vec<Cell>], widen: f64) -> Result<(), String> {
    let width = t.cols.len();
    for r in panel.iter().chain(truth) {
        if r.len() != width {
            return Err(format!(
                "a row of {} columns, the truth declares {width}: {r:?}",
                r.len()
            ));
        }
    }
    let find = |row: &[Cell]| truth.iter().position(|w| key(t.cols, w) == key(t.cols, row));
    let mut matched = vec![false; truth.len()];
    for row in panel {
        let Some(i) = find(row) else {
            return Err(format!("the panel shows a row the raw rows do not have: {row:?}"));
        };
        if matched[i] {
            return Err(format!("the panel shows a row twice: {row:?}"));
        }
        matched[i] = true;
        for (c, (g, w)) in t.cols.iter().zip(row.iter().zip(&truth[i])) {
            if !close(*c, g, w, widen) {
                return Err(format!(
                    "row {:?}: {g:?} where the raw rows give {w:?}",
                    key(t.cols, row)
                ));
            }
        }
    }
    match t.rows {
        Rows::All => {
            if let Some(i) = matched.iter().position(|m| !m) {
                return Err(format!(
                    "the panel misses a row: {:?} ({} rows, truth {})",
                    truth[i],
                    panel.len(),
                    truth.len()
                ));
            }
        }
        Rows::Top { limit, by } => {
            if panel.len() != limit.min(truth.len()) {
                return Err(format!(
                    "{} rows, where the top {limit} of {} are expected",
                    panel.len(),
                    truth.len()
                ));
            }
            let slack = if t.cols[by] == Col::Quantile {
                2.0 * QUANTILE_TOLERANCE
            } else {
                1e-9
            };
            let lowest = panel
                .iter()
                .map(|r| r[by].num().unwrap_or(f64::NEG_INFINITY))
                .fold(f64::INFINITY, f64::min);
            for (i, w) in truth.iter().enumerate() {
                let v = w[by].num().unwrap_or(f64::NEG_INFINITY);
                if !matched[i] && v > lowest * (1.0 + slack) + 1e-12 {
                    return Err(format!(
                        "the panel leaves out {w:?}, which ranks above its lowest ({lowest})"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether two answers of a top-`limit` panel differ only in which of the rows tied at the
/// lowest shown value they pick: the rows above that value agree (as [`compare_within`] would
/// judge them), and both show equally many rows at it. Either is then a right answer for
/// the data, whichever rows the database happened to pick.
pub fn same_up_to_ties(t: &Truth, a: &[Vec<Cell>], b: &[Vec<Cell>]) -> bool {
    let Rows::Top { by, .. } = t.rows else {
        return false;
    };
    let value = |r: &Vec<Cell>| r[by].num().unwrap_or(f64::NEG_INFINITY);
    let lowest = |rows: &[Vec<Cell>]| rows.iter().map(value).fold(f64::INFINITY, f64::min);
    let (low_a, low_b) = (lowest(a), lowest(b));
    if a.len() != b.len() || low_a != low_b {
        return false;
    }
    let split = |rows: &[Vec<Cell>]| -> (Vec<Vec<Cell>>, usize) {
        let above: Vec<Vec<Cell>> = rows.iter().filter(|r| value(r) > low_a).cloned().collect();
        let tied = rows.len() - above.len();
        (above, tied)
    };
    let ((above_a, tied_a), (above_b, tied_b)) = (split(a), split(b));
    let all = Truth { rows: Rows::All, ..*t };
    tied_a == tied_b && compare_within(&all, &above_a, &above_b, 1.0).is_ok()
}

/// The least-squares line through `(x, y)`, evaluated at `x0`.
fn line_at(points: &[(f64, f64)], x0: f64) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    my + sxy / sxx * (x0 - mx)
}

/// Runs a panel query and its truth in one snapshot; the panel's rows, the truth's.
async fn run_pair(c: &Client, panel_sql: &str, truth_sql: &str) -> Result<(Vec<Vec<Cell>>, Vec<Vec<Cell>>), String> {
    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .expect("begin");
    let got = c.query(panel_sql, &[]).await.map_err(|e| format!("panel: {e}"));
    let want = c.query(truth_sql, &[]).await.map_err(|e| format!("truth: {e}"));
    c.batch_execute("ROLLBACK").await.expect("end");
    let (got, want) = (got?, want?);
    Ok((got.iter().map(cells).collect(), want.iter().map(cells).collect()))
}

/// The truth's query for `from..to`, rows up to `watermark`.
fn truth_sql(t: &Truth, from: u64, to: u64, watermark: u64, unit: &str) -> String {
    let cut = if t.whole_hours {
        watermark.div_ceil(3600) * 3600
    } else {
        watermark
    };
    with_raw(t.sql, &rfc3339(from), &rfc3339(to), &rfc3339(cut), unit)
        .replace("{from}", &rfc3339(from))
        .replace("{to}", &rfc3339(to))
}

/// Compares a panel's rows with its truth's (for the forecast panel, its actual days with the
/// truth and its forecast with the least-squares line through them).
fn judge(t: &Truth, got: Vec<Vec<Cell>>, want: &[Vec<Cell>]) -> Result<(), String> {
    if t.title != "Daily spend and forecast" {
        return compare(t, &got, want);
    }
    let (actual, forecast): (Vec<Vec<Cell>>, Vec<Vec<Cell>>) = got.into_iter().partition(|r| r[1] != Cell::Null);
    compare(t, &actual, want)?;
    if want.len() < 3 {
        return if forecast.is_empty() {
            Ok(())
        } else {
            Err("a forecast from fewer than 3 days".to_owned())
        };
    }
    let points: Vec<(f64, f64)> = want
        .iter()
        .map(|r| (r[0].num().unwrap_or(f64::NAN), r[1].num().unwrap_or(f64::NAN)))
        .collect();
    if forecast.len() != 7 {
        return Err(format!("{} forecast days, not 7", forecast.len()));
    }
    let last = points.last().map_or(f64::NAN, |p| p.0);
    for (k, f) in forecast.iter().enumerate() {
        let day = last + 86_400.0 * (k + 1) as f64;
        if f[0].num() != Some(day) {
            return Err(format!("forecast point {k} at {:?}, not {day}", f[0]));
        }
        let want = line_at(&points, day);
        let got = f[2].num().unwrap_or(f64::NAN);
        let off = (got - want).abs();
        if off.is_nan() || off > 1e-9 * want.abs().max(1.0) {
            return Err(format!(
                "forecast for day {k}: {got}, the line through the days gives {want}"
            ));
        }
    }
    Ok(())
}

/// The ranges a truth runs for: (from, rollup unit of its raw rows).
fn ranges(t: &Truth, to: u64) -> Vec<(u64, &'static str)> {
    let mut r = Vec::new();
    if t.day {
        r.push((to - 26 * 3600, "hour"));
    }
    if t.week {
        r.push((to - 7 * 86_400, "day"));
    }
    r
}

fn panel_expr(t: &Truth) -> String {
    panel_query(t.file, t.title, 0, Source::Postgres)
}

/// The text of query `query` of panel `title` on dashboard `file`, which reads `source`.
pub fn panel_query(file: &str, title: &str, query: usize, source: Source) -> String {
    let all = llmhub_dashboards::all();
    let d = all.iter().find(|d| d.file == file).expect("dashboard");
    let p = d
        .panels
        .iter()
        .find(|p| p.title == title)
        .unwrap_or_else(|| panic!("{file}: no panel {title}"));
    assert_eq!(p.source, source);
    p.queries[query].expr.clone()
}

/// Runs every truth against its panel as the reader `c` for the day and the week ending at `to`;
/// returns how many panel runs were compared. `watermark` is the rollups' (Unix seconds).
pub async fn check_all(c: &Client, who: &str, to: u64, watermark: u64) -> usize {
    let mut compared = 0;
    for t in truths() {
        let expr = panel_expr(&t);
        for (from, unit) in ranges(&t, to) {
            let panel_sql = llmhub_dashboards::expand_sql(&expr, from, to).expect("expands");
            let truth_sql = truth_sql(&t, from, to, watermark, unit);
            let (got, want) = run_pair(c, &panel_sql, &truth_sql)
                .await
                .unwrap_or_else(|e| panic!("{who} {}/{}: {e}\n{panel_sql}\n{truth_sql}", t.file, t.title));
            judge(&t, got, &want).unwrap_or_else(|e| {
                panic!(
                    "{who} {}/{} over {} h: {e}\npanel:\n{panel_sql}\ntruth:\n{truth_sql}",
                    t.file,
                    t.title,
                    (to - from) / 3600
                )
            });
            compared += 1;
        }
    }
    compared
}

/// Wrong panels, each off by an hour, a row or a unit: every one whose rows differ from the
/// right panel's (beyond the comparison's tolerance) must fail its truth. Returns (mutants that changed the rows, mutants tried).
pub async fn mutants_are_caught(c: &Client, to: u64, watermark: u64) -> (usize, usize) {
    let edits: [(&str, &str); 7] = [
        ("$__timeFilter(bucket)", "$__timeFilter(bucket - interval '1 hour')"),
        (
            "$__timeGroupAlias(bucket, '1h')",
            "$__timeGroupAlias(bucket + interval '1 hour', '1h')",
        ),
        (
            "$__timeGroupAlias(bucket, '1d')",
            "$__timeGroupAlias(bucket + interval '1 day', '1d')",
        ),
        ("sum(cost_usd)", "(sum(cost_usd) * 100)"),
        ("approx_percentile(", "1000 * approx_percentile("),
        ("sum(calls)", "sum(calls + errors)"),
        ("role = 'model_call'", "role <> 'tool'"),
    ];
    let (mut changed, mut tried) = (0, 0);
    for t in truths() {
        let expr = panel_expr(&t);
        let mut mutants: Vec<(String, String)> = edits
            .iter()
            .filter(|(from, _)| expr.contains(from))
            .map(|(from, to)| (format!("{from} -> {to}"), expr.replace(from, to)))
            .collect();
        // One row fewer.
        mutants.push(("OFFSET 1".to_owned(), format!("SELECT * FROM ({expr}) mutant OFFSET 1")));
        for (from, unit) in ranges(&t, to) {
            let truth_sql = truth_sql(&t, from, to, watermark, unit);
            let right = llmhub_dashboards::expand_sql(&expr, from, to).expect("expands");
            let (right_rows, _) = run_pair(c, &right, &truth_sql).await.expect("the right panel runs");
            for (name, mutant) in &mutants {
                tried += 1;
                let sql = llmhub_dashboards::expand_sql(mutant, from, to).expect("expands");
                let Ok((rows, want)) = run_pair(c, &sql, &truth_sql).await else {
                    continue; // A mutant that does not run is caught by the shape checks.
                };
                // Equivalent on this data, or within twice the tolerance of the right rows (a
                // quantile that moved less than two error bounds can still be within one of the
                // truth, as the right one is): no comparison at that tolerance must tell them apart.
                if compare_within(&t, &rows, &right_rows, 2.0).is_ok() || same_up_to_ties(&t, &rows, &right_rows) {
                    continue;
                }
                changed += 1;
                let shown = format!("{rows:?}");
                assert!(
                    judge(&t, rows, &want).is_err(),
                    "{}/{} over {} h: the mutant {name} changes the rows, yet its truth holds\n\
                     mutant: {shown}\nright: {right_rows:?}",
                    t.file,
                    t.title,
                    (to - from) / 3600
                );
            }
        }
    }
    (changed, tried)
}

/// One span of a trace with an agent invocation, as the agent truths read it.
struct Span {
    span_id: Vec<u8>,
    parent: Option<Vec<u8>>,
    role: String,
    operation: String,
    agent: Option<String>,
    tenant: Option<String>,
    service: String,
    time: f64,
    end: f64,
    cost: f64,
}

/// Per agent invocation (trace, span index): model calls, tool calls, cost of the calls it made,
/// by the documented rule: a call belongs to its nearest agent invocation up its parent links; a
/// span whose parent was never stored belongs to the latest-started invocation of its trace whose
/// time contains it (and the walk goes on from there); `create_agent` spans are not invocations
/// and end a walk.
fn invocations(spans: &[Span]) -> std::collections::HashMap<usize, (u64, u64, f64)> {
    use std::collections::HashMap;
    let by_id: HashMap<&[u8], usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id.as_slice(), i))
        .collect();
    let invocation = |i: usize| spans[i].role == "agent" && spans[i].operation != "create_agent";
    let mut out: HashMap<usize, (u64, u64, f64)> = HashMap::new();
    for i in 0..spans.len() {
        if invocation(i) {
            out.entry(i).or_default();
        }
    }
    for (i, s) in spans.iter().enumerate() {
        if s.role == "agent" {
            continue;
        }
        // Walk up to the owner.
        let mut at = i;
        let mut owner = None;
        for _ in 0..spans.len() + 1 {
            let cur = &spans[at];
            let Some(parent) = &cur.parent else { break };
            match by_id.get(parent.as_slice()) {
                Some(&p) if invocation(p) => {
                    owner = Some(p);
                    break;
                }
                Some(&p) if spans[p].role == "agent" => break, // create_agent
                Some(&p) => at = p,
                None => {
                    // An orphan: the latest-started invocation containing it.
                    owner = spans
                        .iter()
                        .enumerate()
                        .filter(|(j, a)| invocation(*j) && *j != at && a.time <= cur.time && cur.time <= a.end)
                        .max_by(|x, y| x.1.time.total_cmp(&y.1.time))
                        .map(|(j, _)| j);
                    break;
                }
            }
        }
        if let Some(o) = owner {
            let e = out.entry(o).or_default();
            match s.role.as_str() {
                "model_call" => e.0 += 1,
                "tool" => e.1 += 1,
                _ => {}
            }
            e.2 += s.cost;
        }
    }
    out
}

/// The agent panels, as the reader `c`, against invocations counted in Rust (the rule above) from
/// the raw spans the operator `op` reads: an invocation's calls count whatever their own tenant
/// (a tenant's agent calling a shared service), and a tenant's panel shows its invocations
/// (`tenant`; `None` for every tenant).
pub async fn check_agents(op: &Client, c: &Client, tenant: Option<&str>, to: u64, watermark: u64) {
    let who = tenant.unwrap_or("operator");
    let from = to - 26 * 3600;
    let cut_secs = (watermark.div_ceil(3600) * 3600) as f64;
    let cut = rfc3339(watermark.div_ceil(3600) * 3600);
    let (f, t) = (rfc3339(from), rfc3339(to));
    let per_agent = panel_of("llm-agents.json", "Model calls per agent invocation");
    let runaways = panel_of("llm-agents.json", "Runaway agent loops");
    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .expect("begin");
    let got_agents: Vec<Vec<Cell>> = c
        .query(
            llmhub_dashboards::expand_sql(&per_agent, from, to)
                .expect("expands")
                .as_str(),
            &[],
        )
        .await
        .expect("agents panel")
        .iter()
        .map(cells)
        .collect();
    let got_runaways: Vec<Vec<Cell>> = c
        .query(
            llmhub_dashboards::expand_sql(&runaways, from, to)
                .expect("expands")
                .as_str(),
            &[],
        )
        .await
        .expect("runaways panel")
        .iter()
        .map(cells)
        .collect();
    let rows = op
        .query(
            &format!(
                "SELECT trace_id, span_id, parent_span_id, role, operation, agent_name, tenant, service_name,
                        extract(epoch FROM time)::float8, extract(epoch FROM end_time)::float8, coalesce(cost_usd, 0)::float8
                   FROM llm_calls_view
                  WHERE trace_id IN (SELECT trace_id FROM llm_calls_view
                        WHERE role = 'agent' AND time < '{cut}' AND time BETWEEN date_trunc('hour', '{f}'::timestamptz, 'UTC') AND '{t}'::timestamptz + interval '1 hour')"
            ),
            &[],
        )
        .await
        .expect("spans");
    let mut traces: std::collections::BTreeMap<Vec<u8>, Vec<Span>> = Default::default();
    for r in &rows {
        traces.entry(r.get(0)).or_default().push(Span {
            span_id: r.get(1),
            parent: r.get(2),
            role: r.get(3),
            operation: r.get(4),
            agent: r.get(5),
            tenant: r.get(6),
            service: r.get(7),
            time: r.get(8),
            end: r.get(9),
            cost: r.get(10),
        });
    }
    // (invocations, model calls, max, tool calls, max) per agent name, and the runaways.
    let mut by_agent: std::collections::BTreeMap<String, (u64, u64, u64, u64, u64)> = Default::default();
    let mut want_runaways = Vec::new();
    let hour = |secs: f64| (secs / 3600.0).floor() * 3600.0;
    for (trace, spans) in &traces {
        for (i, (m, tc, cost)) in invocations(spans) {
            let a = &spans[i];
            if tenant.is_some() && a.tenant.as_deref() != tenant {
                continue;
            }
            // The rollups hold the invocations that started before the watermark's hour, each
            // with every call of it in the table, also those after that hour (a long loop near
            // the end of the generated traffic runs past it).
            if a.time >= cut_secs {
                continue;
            }
            // The agents rollup is by the hour the invocation started; the runaways panel by its time.
            if hour(a.time) >= from as f64 && hour(a.time) <= to as f64 {
                let e = by_agent
                    .entry(a.agent.clone().unwrap_or_else(|| "(unnamed)".to_owned()))
                    .or_default();
                *e = (e.0 + 1, e.1 + m, e.2.max(m), e.3 + tc, e.4.max(tc));
            }
            if m + tc > 25 && a.time >= from as f64 && a.time <= to as f64 {
                want_runaways.push(vec![
                    Cell::Num(a.time),
                    a.agent.clone().map_or(Cell::Null, Cell::Text),
                    Cell::Text(a.service.clone()),
                    Cell::Text(trace.iter().map(|b| format!("{b:02x}")).collect()),
                    Cell::Num((m + tc) as f64),
                    Cell::Num(cost),
                ]);
            }
        }
    }
    let mean = |sum: u64, n: u64| (sum as f64 / n as f64 * 10.0).round() / 10.0;
    let want_agents: Vec<Vec<Cell>> = by_agent
        .into_iter()
        .map(|(name, (n, m, mmax, tc, tmax))| {
            vec![
                Cell::Text(name),
                Cell::Num(n as f64),
                Cell::Num(mean(m, n)),
                Cell::Num(mmax as f64),
                Cell::Num(mean(tc, n)),
                Cell::Num(tmax as f64),
            ]
        })
        .collect();
    use Col::*;
    let agents_truth = Truth {
        file: "llm-agents.json",
        title: "Model calls per agent invocation",
        cols: &[Key, Exact, Exact, Exact, Exact, Exact],
        rows: Rows::All,
        day: true,
        week: false,
        whole_hours: true,
        sql: "",
    };
    compare(&agents_truth, &got_agents, &want_agents)
        .unwrap_or_else(|e| panic!("{who} llm-agents.json/Model calls per agent invocation: {e}"));
    assert!(!want_agents.is_empty(), "{who}: the generator made agent invocations");
    let runaway_truth = Truth {
        file: "llm-agents.json",
        title: "Runaway agent loops",
        cols: &[Key, Key, Key, Key, Exact, Exact],
        rows: Rows::Top { limit: 20, by: 4 },
        day: true,
        week: false,
        whole_hours: true,
        sql: "",
    };
    eprintln!(
        "{who}: {} agents, {} runaway invocations",
        want_agents.len(),
        want_runaways.len()
    );
    compare(&runaway_truth, &got_runaways, &want_runaways)
        .unwrap_or_else(|e| panic!("{who} llm-agents.json/Runaway agent loops: {e}"));
}

fn panel_of(file: &str, title: &str) -> String {
    let all = llmhub_dashboards::all();
    let d = all.iter().find(|d| d.file == file).expect("dashboard");
    d.panels.iter().find(|p| p.title == title).expect("panel").queries[0]
        .expr
        .clone()
}

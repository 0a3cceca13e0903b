//! A straight-line trend by ordinary least squares, with the classical prediction interval.

use super::{Forecast, ForecastPoint};
use crate::error::check;
use crate::quantile::t_upper_quantile;
use crate::AnalyticsError;

/// Fits `y = intercept + slope · x` by least squares with `x = 0, 1, …, n − 1` (the position in
/// `values`) and forecasts `x₀ = n − 1 + h` for `h = 1..=horizon`, with the prediction interval
/// `ŷ ± t · s · √(1 + 1/k + (x₀ − x̄)² / Sxx)` at confidence `level` (e.g. 0.95): `k` fitted
/// points, `s² = SSE / (k − 2)`, `t` the Student-t quantile of `(1 + level) / 2` with `k − 2`
/// degrees of freedom, `Sxx = Σ (x − x̄)²`.
///
/// - NaN and ±infinity are missing points: skipped, while the other points keep their position
///   `x`, so a gap does not shift the time axis.
/// - An exact line gives exact forecasts and an interval of (about) zero width.
/// - `params`: `slope`, `intercept`, `sigma` (= `s`).
///
/// Errors: fewer than 3 finite values (names `values`), `horizon` outside `1..=MAX_HORIZON`
/// (names `horizon`), `level` outside `(0, 1)` (names `level`).
///
/// ```
/// let f = llmhub_analytics::linear(&[1.0, 3.0, 5.0, 7.0], 2, 0.95).unwrap();
/// assert_eq!((f.points[0].value, f.points[1].value), (9.0, 11.0));
/// ```
pub fn linear(values: &[f64], horizon: usize, level: f64) -> Result<Forecast, AnalyticsError> {
    let points: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .filter(|(_, y)| y.is_finite())
        .map(|(x, &y)| (x as f64, y))
        .collect();
    let k = points.len();
    if k < 3 {
        return Err(AnalyticsError::length_error(
            "values",
            "at least 3 finite points for a linear fit",
            k,
        ));
    }
    let horizon = check::horizon(horizon)?;
    let level = check::open_unit("level", level, "0.95")?;

    let count = k as f64;
    let x_mean = points.iter().map(|p| p.0).sum::<f64>() / count;
    let y_mean = points.iter().map(|p| p.1).sum::<f64>() / count;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(x, y) in &points {
        sxx += (x - x_mean) * (x - x_mean);
        sxy += (x - x_mean) * (y - y_mean);
    }
    // k >= 3 distinct positions, so sxx > 0.
    let slope = sxy / sxx;
    let intercept = y_mean - slope * x_mean;
    let sse: f64 = points.iter().map(|&(x, y)| (y - (intercept + slope * x)).powi(2)).sum();
    let s = (sse / (count - 2.0)).sqrt();
    let t = t_upper_quantile((1.0 - level) / 2.0, count - 2.0);

    let last = (values.len() - 1) as f64;
    let out = (1..=horizon)
        .map(|step| {
            let x0 = last + step as f64;
            let value = intercept + slope * x0;
            let half_width = t * s * (1.0 + 1.0 / count + (x0 - x_mean).powi(2) / sxx).sqrt();
            ForecastPoint {
                step,
                value,
                lower: value - half_width,
                upper: value + half_width,
            }
        })
        .collect();
    Ok(Forecast {
        points: out,
        fitted_sse: sse,
        params: vec![("slope", slope), ("intercept", intercept), ("sigma", s)],
    })
}

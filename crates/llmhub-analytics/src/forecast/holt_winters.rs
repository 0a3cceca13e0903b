//! Additive Holt-Winters (level, trend, additive seasonality) with smoothing parameters fitted by
//! minimizing the one-step-ahead squared error, and the prediction intervals of the matching
//! state-space model ETS(A,A,A) (Hyndman, Koehler, Ord and Snyder, *Forecasting with Exponential
//! Smoothing*, 2008, chapter 6).

use super::{Forecast, ForecastPoint};
use crate::error::check;
use crate::quantile::normal_upper_quantile;
use crate::AnalyticsError;

/// Fits additive Holt-Winters to `values` (one point per step, seasons of `period` steps) and
/// forecasts `horizon` steps with a prediction interval at confidence `level` (e.g. 0.95).
///
/// Model (component form), with `m = period` and one-step forecast `ŷₜ = ℓₜ₋₁ + bₜ₋₁ + sₜ₋ₘ`:
/// `ℓₜ = α (yₜ − sₜ₋ₘ) + (1 − α)(ℓₜ₋₁ + bₜ₋₁)`, `bₜ = β (ℓₜ − ℓₜ₋₁) + (1 − β) bₜ₋₁`,
/// `sₜ = γ (yₜ − ℓₜ₋₁ − bₜ₋₁) + (1 − γ) sₜ₋ₘ`; forecast `ℓₙ + h bₙ + s` of the matching phase.
///
/// - Initial state from the first two seasons: the trend is the difference of their means over
///   `m`, the level and the seasonal indexes are those of that line through the first season, so
///   a series `a + b·t + S[t mod m]` is reproduced exactly from the first point on.
/// - `α, β ∈ [0, 1]` and `γ ∈ [0, 1 − α]` minimize the sum of squared one-step errors from the
///   second season on (the first season is fitted exactly by the initial state): an 8×8×8 grid,
///   then a deterministic compass search (step halving down to 1e-6). Same input, same output.
/// - Interval: `ŷ ± z · σ · √(1 + Σⱼ₌₁ʰ⁻¹ cⱼ²)` with `cⱼ = α (1 + j β) + γ · [j mod m = 0]`, `z` the
///   normal quantile of `(1 + level) / 2`, and `σ² = SSE / (r − 3)` over the `r = n − m` residuals
///   (3 fitted parameters; `SSE / 1` when `r <= 4`).
/// - `params`: `alpha`, `beta`, `gamma`, `sigma`.
/// - NaN and ±infinity are refused (the model needs every step; fill gaps before calling), error
///   naming `values[i]`.
///
/// Errors: `period < 2` (names `period`), fewer than `2 · period` values (names `values`), a
/// non-finite value (names `values`), `horizon` outside `1..=MAX_HORIZON` (names `horizon`),
/// `level` outside `(0, 1)` (names `level`). Cost: 600 to 3 500 passes over the series.
///
/// ```
/// use llmhub_analytics::holt_winters;
/// // 10 + 0.5 t plus a period-4 pattern, no noise: the continuation is exact.
/// let pattern = [3.0, -1.0, -4.0, 2.0];
/// let values: Vec<f64> = (0..16).map(|t| 10.0 + 0.5 * t as f64 + pattern[t % 4]).collect();
/// let forecast = holt_winters(&values, 4, 2, 0.95).unwrap();
/// assert!((forecast.points[0].value - (10.0 + 8.0 + 3.0)).abs() < 1e-9);
/// assert!((forecast.points[1].value - (10.0 + 8.5 - 1.0)).abs() < 1e-9);
/// ```
pub fn holt_winters(values: &[f64], period: usize, horizon: usize, level: f64) -> Result<Forecast, AnalyticsError> {
    let period = check::at_least("period", period, 2)?;
    if period.checked_mul(2).is_none_or(|needed| values.len() < needed) {
        return Err(AnalyticsError::length_error(
            "values",
            format!(
                "at least 2 full seasons ({} points) for a seasonal model",
                2 * period as u128
            ),
            values.len(),
        ));
    }
    check::all_finite("values", values)?;
    let horizon = check::horizon(horizon)?;
    let level = check::open_unit("level", level, "0.95")?;

    let model = Model::new(values, period);
    let mut state = model.initial.clone();
    let (unit, sse) = fit(&model, &mut state);
    let params = Params::from_unit(unit);
    // Leave `state` at the end of the series with the chosen parameters.
    model.run(params, &mut state);

    let n = values.len();
    let residuals = n - period;
    let sigma = (sse / residuals.saturating_sub(3).max(1) as f64).sqrt();
    let z = normal_upper_quantile((1.0 - level) / 2.0);

    let mut points = Vec::with_capacity(horizon);
    let mut sum_c2 = 0.0;
    for step in 1..=horizon {
        if step > 1 {
            let j = step - 1;
            let seasonal_term = if j % period == 0 { params.gamma } else { 0.0 };
            let c = params.alpha * (1.0 + j as f64 * params.beta) + seasonal_term;
            sum_c2 += c * c;
        }
        let phase = (n - 1 + step) % period;
        let value = state.level + step as f64 * state.trend + state.seasonal[phase];
        let half_width = z * sigma * (1.0 + sum_c2).sqrt();
        points.push(ForecastPoint {
            step,
            value,
            lower: value - half_width,
            upper: value + half_width,
        });
    }
    Ok(Forecast {
        points,
        fitted_sse: sse,
        params: vec![
            ("alpha", params.alpha),
            ("beta", params.beta),
            ("gamma", params.gamma),
            ("sigma", sigma),
        ],
    })
}

/// Smoothing parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Params {
    alpha: f64,
    beta: f64,
    gamma: f64,
}

impl Params {
    /// Maps the unit cube onto the admissible region: `γ = u₂ (1 − α)`.
    fn from_unit(u: [f64; 3]) -> Self {
        Self {
            alpha: u[0],
            beta: u[1],
            gamma: u[2] * (1.0 - u[0]),
        }
    }
}

/// Level, trend and the latest seasonal index of each phase (`seasonal[t mod m]`).
#[derive(Debug, Clone, PartialEq)]
struct State {
    level: f64,
    trend: f64,
    seasonal: Vec<f64>,
}

struct Model<'a> {
    values: &'a [f64],
    period: usize,
    /// The state before the first point.
    initial: State,
}

impl<'a> Model<'a> {
    /// `values.len() >= 2 · period`, `period >= 2`.
    fn new(values: &'a [f64], period: usize) -> Self {
        let m = period as f64;
        let first: f64 = values.iter().take(period).sum::<f64>() / m;
        let second: f64 = values.iter().skip(period).take(period).sum::<f64>() / m;
        let trend = (second - first) / m;
        // The line through the first season: first + trend · (t − (m − 1) / 2).
        let on_line = |t: f64| first + trend * (t - (m - 1.0) / 2.0);
        let seasonal = values
            .iter()
            .take(period)
            .enumerate()
            .map(|(t, y)| y - on_line(t as f64))
            .collect();
        Self {
            values,
            period,
            initial: State {
                level: on_line(-1.0),
                trend,
                seasonal,
            },
        }
    }

    /// Runs the filter from the initial state, leaving the final state in `state`; returns the
    /// sum of squared one-step errors from the second season on.
    fn run(&self, p: Params, state: &mut State) -> f64 {
        state.clone_from(&self.initial);
        let mut sse = 0.0;
        for (t, &y) in self.values.iter().enumerate() {
            let phase = t % self.period;
            let Some(seasonal) = state.seasonal.get_mut(phase) else {
                break;
            };
            let (level, trend, season) = (state.level, state.trend, *seasonal);
            let error = y - (level + trend + season);
            if t >= self.period {
                sse += error * error;
            }
            let new_level = p.alpha * (y - season) + (1.0 - p.alpha) * (level + trend);
            state.trend = p.beta * (new_level - level) + (1.0 - p.beta) * trend;
            *seasonal = p.gamma * (y - level - trend) + (1.0 - p.gamma) * season;
            state.level = new_level;
        }
        sse
    }
}

/// `a` is a better objective value than `b` (NaN is worst).
fn better(a: f64, b: f64) -> bool {
    a < b || (b.is_nan() && !a.is_nan())
}

/// Minimizes the SSE over the unit cube; returns the best point and its SSE.
fn fit(model: &Model<'_>, state: &mut State) -> ([f64; 3], f64) {
    const GRID: usize = 8;
    const MIN_STEP: f64 = 1e-6;
    const MAX_EVALUATIONS: usize = 3_000;

    let mut sse_at = |u: [f64; 3]| model.run(Params::from_unit(u), state);
    let node = |i: usize| (i as f64 + 0.5) / GRID as f64;
    let mut best = [node(0); 3];
    let mut best_sse = sse_at(best);
    for i in 0..GRID {
        for j in 0..GRID {
            for k in 0..GRID {
                let u = [node(i), node(j), node(k)];
                let sse = sse_at(u);
                if better(sse, best_sse) {
                    (best, best_sse) = (u, sse);
                }
            }
        }
    }

    // Compass search: try ± step on each coordinate, move on improvement, else halve the step.
    let mut step = 0.5 / GRID as f64;
    let mut evaluations = 0;
    while step >= MIN_STEP && evaluations < MAX_EVALUATIONS {
        let mut moved = false;
        for axis in 0..3 {
            for direction in [1.0, -1.0] {
                let mut u = best;
                u[axis] = (u[axis] + direction * step).clamp(0.0, 1.0);
                if u == best {
                    continue;
                }
                evaluations += 1;
                let sse = sse_at(u);
                if better(sse, best_sse) {
                    (best, best_sse) = (u, sse);
                    moved = true;
                }
            }
        }
        if !moved {
            step /= 2.0;
        }
    }
    (best, best_sse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_state_reproduces_a_seasonal_line() {
        let pattern = [2.0, -3.0, 1.0];
        let values: Vec<f64> = (0..9).map(|t| 5.0 - 0.25 * t as f64 + pattern[t % 3]).collect();
        let model = Model::new(&values, 3);
        assert!((model.initial.trend + 0.25).abs() < 1e-12);
        assert!((model.initial.level - (5.0 + 0.25)).abs() < 1e-12);
        for (s, p) in model.initial.seasonal.iter().zip(pattern) {
            assert!((s - p).abs() < 1e-12);
        }
        let mut state = model.initial.clone();
        let sse = model.run(
            Params {
                alpha: 0.4,
                beta: 0.2,
                gamma: 0.3,
            },
            &mut state,
        );
        assert!(sse < 1e-20);
    }

    #[test]
    fn variance_multiplier_of_the_first_steps() {
        // Step 2: 1 + c₁², c₁ = α (1 + β) (1 is not a multiple of m = 4).
        let values: Vec<f64> = (0..12)
            .map(|t| [1.0, 5.0, 2.0, 0.0][t % 4] + if t == 9 { 1.0 } else { 0.0 })
            .collect();
        let f = holt_winters(&values, 4, 2, 0.95).unwrap();
        let get = |name| f.params.iter().find(|(n, _)| *n == name).map(|p| p.1).unwrap();
        let (alpha, beta, sigma) = (get("alpha"), get("beta"), get("sigma"));
        let z = 1.959963984540054;
        let w1 = (f.points[0].upper - f.points[0].lower) / 2.0;
        let w2 = (f.points[1].upper - f.points[1].lower) / 2.0;
        assert!((w1 - z * sigma).abs() < 1e-9);
        let c1 = alpha * (1.0 + beta);
        assert!((w2 - z * sigma * (1.0 + c1 * c1).sqrt()).abs() < 1e-9);
    }
}

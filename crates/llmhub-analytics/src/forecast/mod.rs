//! Forecasts of a time-ordered series with prediction intervals: additive Holt-Winters for
//! seasonal series, an ordinary-least-squares line for trends.

mod grid;
mod holt_winters;
mod linear;

pub use grid::{Grid, GridProblem, MAX_GRID_STEPS};
pub use holt_winters::holt_winters;
pub use linear::linear;

/// The largest `horizon` the forecasting functions accept (bounds the memory a call can ask for).
pub const MAX_HORIZON: usize = 100_000;

/// One forecast step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastPoint {
    /// Steps ahead of the last input point, from 1.
    pub step: usize,
    /// The point forecast.
    pub value: f64,
    /// Lower end of the prediction interval.
    pub lower: f64,
    /// Upper end of the prediction interval.
    pub upper: f64,
}

/// A forecast with what the fit found.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// One point per step, steps 1..=horizon.
    pub points: Vec<ForecastPoint>,
    /// Sum of squared residuals of the fit (one-step-ahead errors for Holt-Winters, regression
    /// residuals for the line).
    pub fitted_sse: f64,
    /// The fitted parameters by name, e.g. `("alpha", 0.3)`; each function documents its names.
    pub params: Vec<(&'static str, f64)>,
}

//! Analytics over plain `f64` series for LLM telemetry: point anomaly detection, forecasts with
//! prediction intervals, budget projection and SLO burn rates. Pure logic, no I/O: the SQL
//! extension wraps each function in a thin `#[pg_extern]`, passing series already ordered by time.
//!
//! - [`anomaly`]: [`robust_z`] (median/MAD of a trailing window), [`ewma`] (EWMA control band),
//!   [`seasonal`] (median/MAD of earlier points with the same hour of day or week),
//!   [`seasonal_trend`] (hourly series: daily shape × weekday factor × trending level). One
//!   [`Scored`] per input point; warm-up and missing points are described in [`anomaly`].
//! - [`forecast`]: [`holt_winters`] (additive, fitted smoothing parameters) and [`linear`] (OLS),
//!   both returning a [`Forecast`]; [`Grid`] places a series' times on its regular step, so
//!   missing steps keep their place (or are refused where a fit needs every step).
//! - [`budget()`]: where a budget period ends at the current daily rate, and when the budget runs
//!   out.
//! - [`burn_rate`], [`multi_window_burn`]: SLO error-budget burn.
//! - Helpers: [`median`], [`mad`], [`normal_quantile`], [`student_t_quantile`].
//!
//! Bad arguments return an [`AnalyticsError`] whose message names the argument; no input makes a
//! function panic. Each function documents whether NaN and ±infinity in a series are skipped as
//! missing or refused.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod anomaly;
pub mod budget;
mod error;
pub mod forecast;
mod quantile;
pub mod slo;
mod stats;

pub use anomaly::{
    ewma, robust_z, seasonal, seasonal_trend, Scored, EWMA_WARMUP, SEASONAL_PRIOR_WEIGHT, SEASONAL_TREND_THRESHOLD,
    SEASONAL_TREND_WARMUP, SUSTAINED_HOURS,
};
pub use budget::{budget, BudgetProjection};
pub use error::AnalyticsError;
pub use forecast::{holt_winters, linear, Forecast, ForecastPoint, Grid, GridProblem, MAX_GRID_STEPS, MAX_HORIZON};
pub use quantile::{normal_quantile, student_t_quantile};
pub use slo::{burn_rate, multi_window_burn, BurnAlert};
pub use stats::{mad, median, MAD_CONSISTENCY, MEAN_AD_CONSISTENCY};

//! Point anomaly detection over a time-ordered series: each detector returns one [`Scored`] per
//! input point, in input order.
//!
//! Shared conventions:
//! - **Warm-up**: a point without enough history is returned with `expected`, `lower`, `upper`
//!   and `score` all NaN and `anomaly = false` (no `Option`s, so the SQL layer maps NaN to what
//!   it wants).
//! - **Missing points**: NaN and ±infinity in `values` are treated as missing: the point is
//!   returned with the baseline the detector had at that moment (`expected`, `lower`, `upper`,
//!   or NaN during warm-up), `score = NaN`, `anomaly = false`, and it never enters the history.
//! - **No spread**: when the history has no spread at all (a constant series), the band collapses
//!   to `[expected, expected]` and the score is 0 for a point equal to `expected` and
//!   `±f64::MAX` otherwise: finite (storable and sortable in SQL) and beyond any threshold. Scores
//!   are clamped to `±f64::MAX` in general, so a score is never infinite.
//! - **Overflow**: values so large that their differences overflow `f64` (beyond about 1e308) can
//!   leave a NaN baseline; such a point gets a NaN score and `anomaly = false`.

mod ewma;
mod robust_z;
mod seasonal;
mod seasonal_trend;

pub use ewma::{ewma, EWMA_WARMUP};
pub use robust_z::robust_z;
pub use seasonal::{seasonal, SEASONAL_PRIOR_WEIGHT};
pub use seasonal_trend::{seasonal_trend, SEASONAL_TREND_THRESHOLD, SEASONAL_TREND_WARMUP, SUSTAINED_HOURS};

/// One scored point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The input value (NaN or ±infinity for a missing point).
    pub value: f64,
    /// The value the detector expected from history; NaN during warm-up.
    pub expected: f64,
    /// Lower end of the normal band; NaN during warm-up.
    pub lower: f64,
    /// Upper end of the normal band; NaN during warm-up.
    pub upper: f64,
    /// Signed distance from `expected` in units of the estimated standard deviation; never
    /// infinite (see the module docs); NaN during warm-up and for missing points.
    pub score: f64,
    /// `|score| > threshold`, i.e. the value lies strictly outside `[lower, upper]` (for
    /// [`seasonal_trend`], also a run of hours held beyond half of it); false during warm-up and
    /// for missing points.
    pub anomaly: bool,
}

impl Scored {
    /// A point without enough history.
    pub(crate) fn warm_up(value: f64) -> Self {
        Self {
            value,
            expected: f64::NAN,
            lower: f64::NAN,
            upper: f64::NAN,
            score: f64::NAN,
            anomaly: false,
        }
    }

    /// Scores `value` against a center and a standard-deviation estimate `scale >= 0`, with the
    /// band `center ± threshold · scale`. A non-finite `value` is reported as missing, a NaN
    /// baseline (overflow) gives a NaN score.
    pub(crate) fn against(value: f64, center: f64, scale: f64, threshold: f64) -> Self {
        let half_width = threshold * scale;
        let (lower, upper) = (center - half_width, center + half_width);
        if !value.is_finite() || center.is_nan() || scale.is_nan() {
            return Self {
                value,
                expected: center,
                lower,
                upper,
                score: f64::NAN,
                anomaly: false,
            };
        }
        let deviation = value - center;
        let score = if scale > 0.0 {
            deviation / scale
        } else if deviation == 0.0 {
            0.0
        } else {
            deviation.signum() * f64::MAX
        };
        let score = if score.is_nan() {
            0.0
        } else {
            score.clamp(-f64::MAX, f64::MAX)
        };
        Self {
            value,
            expected: center,
            lower,
            upper,
            score,
            anomaly: score.abs() > threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_rules() {
        let s = Scored::against(13.0, 10.0, 1.0, 2.5);
        assert_eq!((s.score, s.lower, s.upper, s.anomaly), (3.0, 7.5, 12.5, true));
        let s = Scored::against(10.0, 10.0, 0.0, 2.5);
        assert_eq!((s.score, s.anomaly), (0.0, false));
        let s = Scored::against(9.0, 10.0, 0.0, 2.5);
        assert_eq!((s.score, s.anomaly, s.lower, s.upper), (-f64::MAX, true, 10.0, 10.0));
        let s = Scored::against(1.0, 0.0, 1e-320, 2.5);
        assert_eq!(s.score, f64::MAX);
        let s = Scored::against(f64::NAN, 10.0, 1.0, 2.5);
        assert!(s.score.is_nan() && !s.anomaly && s.expected == 10.0);
    }
}

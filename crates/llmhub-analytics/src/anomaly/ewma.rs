//! An EWMA control band: the exponentially weighted moving average of the previous points as the
//! expected value, with a band from the exponentially weighted mean of squared prediction errors.

use super::Scored;
use crate::error::check;
use crate::AnalyticsError;

/// Number of leading finite points [`ewma`] reports as warm-up: the first starts the average, the
/// next four give the first prediction errors the band is estimated from.
pub const EWMA_WARMUP: usize = 5;

/// Scores each point against an exponentially weighted moving average of the points before it.
///
/// - `expected` is the EWMA of the previous finite points: `m₀ = x₀`, `mₜ = mₜ₋₁ + α (xₜ − mₜ₋₁)`.
/// - `σ²` is the exponentially weighted mean of the squared one-step prediction errors
///   `(xₜ − mₜ₋₁)²` seen so far, with weight `max(α, 1/k)` for the k-th error (a plain running
///   mean until `k = 1/α`, so the estimate from the first points is not biased towards zero).
///   For in-control data this estimates the variance of `x − expected` itself, i.e.
///   `σₓ² · 2 / (2 − α)`, which is what the band must cover.
/// - Band `expected ± k · σ`, `score = (x − expected) / σ`, `anomaly = |score| > k`.
/// - Every finite point updates the average and `σ²`, anomalies included: after a step change the
///   band widens and the average moves to the new level within about `1/α` points.
/// - Warm-up: the first [`EWMA_WARMUP`] finite points.
/// - NaN and ±infinity are missing points: reported with the current band and a NaN score, and
///   do not update the average.
/// - `α = 1` makes the average the previous point and `σ` the size of the last step; smaller `α`
///   (0.1 – 0.3) is the usual choice.
///
/// Errors: `alpha` outside `(0, 1]` (names `alpha`), `k` not a positive finite number (names
/// `k`).
///
/// ```
/// use llmhub_analytics::ewma;
/// let mut values = vec![10.0, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 10.3];
/// values.push(20.0);
/// let scored = ewma(&values, 0.3, 3.0).unwrap();
/// assert!(scored[..5].iter().all(|s| s.score.is_nan()));
/// assert!(scored[5..8].iter().all(|s| !s.anomaly));
/// assert!(scored[8].anomaly);
/// ```
pub fn ewma(values: &[f64], alpha: f64, k: f64) -> Result<Vec<Scored>, AnalyticsError> {
    if !(alpha > 0.0 && alpha <= 1.0) {
        return Err(AnalyticsError::argument_error("alpha", "in (0, 1], e.g. 0.3", alpha));
    }
    let k = check::positive_finite("k", k)?;

    let mut mean = f64::NAN;
    let mut mean_sq_error = 0.0f64;
    let mut seen = 0usize;
    let mut errors = 0u64;
    let mut out = Vec::with_capacity(values.len());
    for &value in values {
        out.push(if seen < EWMA_WARMUP {
            Scored::warm_up(value)
        } else {
            Scored::against(value, mean, mean_sq_error.sqrt(), k)
        });
        if !value.is_finite() {
            continue;
        }
        if seen == 0 {
            mean = value;
        } else {
            let error = value - mean;
            errors += 1;
            let weight = alpha.max(1.0 / errors as f64);
            mean_sq_error += weight * (error * error - mean_sq_error);
            mean += alpha * error;
        }
        seen += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example() {
        // alpha = 0.5: means 0, 1, 0.5, 1.25, 0.625; errors 2, -1, 1.5, -1.25; squared-error
        // weights 1, 1/2 (running mean while 1/k >= alpha), then 0.5: σ² = 4, 2.5, 2.375, 1.96875.
        let s = ewma(&[0.0, 2.0, 0.0, 2.0, 0.0, 3.0], 0.5, 2.0).unwrap();
        let last = s[5];
        assert_eq!(last.expected, 0.625);
        let sigma = 1.96875f64.sqrt();
        assert!((last.score - (3.0 - 0.625) / sigma).abs() < 1e-12);
        assert!((last.upper - (0.625 + 2.0 * sigma)).abs() < 1e-12);
        assert!(!last.anomaly);
    }

    #[test]
    fn parameters_are_checked() {
        assert_eq!(ewma(&[], 0.0, 3.0).unwrap_err().argument(), "alpha");
        assert_eq!(ewma(&[], f64::NAN, 3.0).unwrap_err().argument(), "alpha");
        assert!(ewma(&[], 1.0, 3.0).is_ok());
        assert_eq!(
            ewma(&[], 0.5, 0.0).unwrap_err().to_string(),
            "k must be a positive finite number, got 0"
        );
    }
}

//! Robust location and spread: the median and the median absolute deviation (MAD), public for the
//! SQL layer and used by the robust and seasonal detectors through [`RobustBaseline`].

use crate::AnalyticsError;

/// `0.6745 ≈ Φ⁻¹(0.75)`: for normal data `MAD / 0.6745` estimates the standard deviation, so the
/// modified z-score of Iglewicz and Hoaglin is `0.6745 · (x − median) / MAD`.
pub const MAD_CONSISTENCY: f64 = 0.6745;

/// `1.2533 ≈ √(π/2)`: for normal data `1.2533 · mean absolute deviation` estimates the standard
/// deviation; the fallback scale when more than half the window is identical (MAD = 0).
pub const MEAN_AD_CONSISTENCY: f64 = 1.2533;

/// The median of the finite values of `values` (the mean of the two middle values when their
/// count is even).
///
/// NaN and ±infinity are skipped (treated as missing). Errors when no finite value remains,
/// naming `values`.
///
/// ```
/// assert_eq!(llmhub_analytics::median(&[3.0, f64::NAN, 1.0, 2.0, 10.0]).unwrap(), 2.5);
/// ```
pub fn median(values: &[f64]) -> Result<f64, AnalyticsError> {
    let mut finite = finite_values(values)?;
    Ok(median_in_place(&mut finite))
}

/// The raw median absolute deviation `median(|xᵢ − median(x)|)` of the finite values of `values`,
/// not scaled: divide by [`MAD_CONSISTENCY`] (multiply by ≈1.4826) to estimate a normal standard
/// deviation.
///
/// NaN and ±infinity are skipped (treated as missing). Errors when no finite value remains,
/// naming `values`.
///
/// ```
/// // median 2, deviations 1, 1, 0, 1, 8 → MAD 1.
/// assert_eq!(llmhub_analytics::mad(&[1.0, 3.0, 2.0, 1.0, 10.0]).unwrap(), 1.0);
/// ```
pub fn mad(values: &[f64]) -> Result<f64, AnalyticsError> {
    let mut finite = finite_values(values)?;
    let center = median_in_place(&mut finite);
    for v in &mut finite {
        *v = (*v - center).abs();
    }
    Ok(median_in_place(&mut finite))
}

fn finite_values(values: &[f64]) -> Result<Vec<f64>, AnalyticsError> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return Err(AnalyticsError::length_error("values", "at least 1 finite value", 0));
    }
    Ok(finite)
}

/// Median of a non-empty slice (reorders it). Returns NaN for an empty slice; callers check.
pub(crate) fn median_in_place(values: &mut [f64]) -> f64 {
    let len = values.len();
    if len == 0 {
        return f64::NAN;
    }
    let mid = len / 2;
    let (lower, upper_mid, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper_mid = *upper_mid;
    if len % 2 == 1 {
        return upper_mid;
    }
    // Even count: the lower middle is the largest value left of the pivot.
    let lower_mid = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Halve each before adding, so two huge values do not overflow.
    lower_mid / 2.0 + upper_mid / 2.0
}

/// Robust location and scale of a window of finite values, as the robust and seasonal detectors
/// use them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RobustBaseline {
    /// The median.
    pub(crate) center: f64,
    /// An estimate of the standard deviation: `MAD / 0.6745`, or when MAD is 0,
    /// `1.2533 · mean |x − median|`; 0 when the window has no spread at all.
    pub(crate) scale: f64,
}

impl RobustBaseline {
    /// Computes the baseline of `window` (finite values, reordered) using `scratch` for the
    /// deviations. Returns `None` for an empty window.
    pub(crate) fn of(window: &mut [f64], scratch: &mut Vec<f64>) -> Option<Self> {
        if window.is_empty() {
            return None;
        }
        let center = median_in_place(window);
        scratch.clear();
        scratch.extend(window.iter().map(|v| (v - center).abs()));
        let mean_ad = scratch.iter().sum::<f64>() / scratch.len() as f64;
        let mad = median_in_place(scratch);
        let scale = if mad > 0.0 {
            mad / MAD_CONSISTENCY
        } else {
            MEAN_AD_CONSISTENCY * mean_ad
        };
        Some(Self { center, scale })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_with_missing() {
        assert_eq!(median(&[5.0]).unwrap(), 5.0);
        assert_eq!(median(&[5.0, 1.0, 3.0]).unwrap(), 3.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]).unwrap(), 2.5);
        assert_eq!(median(&[f64::INFINITY, 4.0, f64::NAN, 2.0]).unwrap(), 3.0);
        assert_eq!(median(&[f64::MAX, f64::MAX]).unwrap(), f64::MAX);
        let e = median(&[f64::NAN]).unwrap_err();
        assert_eq!(e.to_string(), "values: need at least 1 finite value, got 0");
    }

    #[test]
    fn mad_of_a_textbook_example() {
        // 1 1 2 2 4 6 9: median 2, deviations 1 1 0 0 2 4 7 → MAD 1.
        assert_eq!(mad(&[1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]).unwrap(), 1.0);
        assert_eq!(mad(&[7.0, 7.0, 7.0]).unwrap(), 0.0);
    }

    #[test]
    fn baseline_falls_back_to_mean_absolute_deviation() {
        // Median 5, MAD 0 (four of five equal), mean |x - 5| = 10 / 5 = 2.
        let mut w = [5.0, 5.0, 5.0, 5.0, 15.0];
        let b = RobustBaseline::of(&mut w, &mut Vec::new()).unwrap();
        assert_eq!(b.center, 5.0);
        assert!((b.scale - 2.0 * MEAN_AD_CONSISTENCY).abs() < 1e-12);
        let mut w = [5.0, 5.0, 5.0];
        assert_eq!(RobustBaseline::of(&mut w, &mut Vec::new()).unwrap().scale, 0.0);
    }
}

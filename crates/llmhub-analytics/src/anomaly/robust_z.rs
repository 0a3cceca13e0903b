//! The robust (modified) z-score against a trailing window: median and MAD of the previous points.

use std::collections::VecDeque;

use super::Scored;
use crate::error::check;
use crate::stats::RobustBaseline;
use crate::AnalyticsError;

/// Scores each point against the `window` finite points before it (the point itself excluded):
/// `expected` is their median, `score = 0.6745 · (x − median) / MAD` (the modified z-score of
/// Iglewicz and Hoaglin), the band is `median ± threshold · MAD / 0.6745`, and
/// `anomaly = |score| > threshold` (3.5 is the customary threshold).
///
/// - When more than half the window is identical (MAD = 0), the scale falls back to
///   `1.2533 · mean |xᵢ − median|` (score `(x − median) / (1.2533 · meanAD)`, band
///   `median ± threshold · 1.2533 · meanAD`); when that is 0 too, the no-spread rule of the
///   [module docs](crate::anomaly) applies (score 0 or `±f64::MAX`).
/// - Warm-up: the first `window` finite points (NaN baseline, `anomaly = false`).
/// - NaN and ±infinity are missing points: reported with the current baseline and a NaN score,
///   and skipped in the windows of later points (a window holds the last `window` *finite*
///   values).
/// - Scores do not change when the series is shifted by a constant or scaled by a positive
///   factor (up to rounding).
///
/// Errors: `window < 3` (names `window`), `threshold` not a positive finite number (names
/// `threshold`). Cost: O(n · window).
///
/// ```
/// use llmhub_analytics::robust_z;
/// let values = [10.0, 11.0, 9.0, 10.0, 10.5, 9.5, 30.0, 10.0];
/// let scored = robust_z(&values, 5, 3.5).unwrap();
/// assert!(scored[..5].iter().all(|s| s.expected.is_nan())); // warm-up
/// assert!(scored[6].anomaly && !scored[5].anomaly && !scored[7].anomaly);
/// ```
pub fn robust_z(values: &[f64], window: usize, threshold: f64) -> Result<Vec<Scored>, AnalyticsError> {
    let window = check::at_least("window", window, 3)?;
    let threshold = check::positive_finite("threshold", threshold)?;

    let mut history: VecDeque<f64> = VecDeque::new();
    let (mut sorted, mut scratch) = (Vec::new(), Vec::new());
    let mut out = Vec::with_capacity(values.len());
    for &value in values {
        let baseline = if history.len() == window {
            sorted.clear();
            sorted.extend(history.iter().copied());
            RobustBaseline::of(&mut sorted, &mut scratch)
        } else {
            None
        };
        out.push(match baseline {
            Some(b) => Scored::against(value, b.center, b.scale, threshold),
            None => Scored::warm_up(value),
        });
        if value.is_finite() {
            if history.len() == window {
                history.pop_front();
            }
            history.push_back(value);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example() {
        // Window [10, 12, 11, 13, 9]: median 11, deviations 1 1 0 2 2 → MAD 1.
        // Next point 16: score 0.6745 · 5 / 1 = 3.3725; band 11 ± 3 / 0.6745.
        let s = robust_z(&[10.0, 12.0, 11.0, 13.0, 9.0, 16.0], 5, 3.0).unwrap();
        let last = s[5];
        assert_eq!(last.expected, 11.0);
        assert!((last.score - 3.3725).abs() < 1e-12);
        assert!((last.upper - (11.0 + 3.0 / 0.6745)).abs() < 1e-12);
        assert!(last.anomaly);
    }

    #[test]
    fn constant_history_uses_the_no_spread_rule() {
        let s = robust_z(&[4.0, 4.0, 4.0, 4.0, 5.0], 3, 3.5).unwrap();
        assert_eq!((s[3].score, s[3].anomaly), (0.0, false));
        assert_eq!((s[4].score, s[4].anomaly), (f64::MAX, true));
    }

    #[test]
    fn missing_points_are_skipped() {
        let s = robust_z(&[1.0, f64::NAN, 2.0, 3.0, f64::INFINITY, 2.0], 3, 3.5).unwrap();
        assert!(s[3].expected.is_nan()); // only 2 finite points before index 3
        assert_eq!(s[4].expected, 2.0); // the band is reported for the missing point
        assert!(s[4].score.is_nan() && !s[4].anomaly);
        assert_eq!(s[5].expected, 2.0); // window [1, 2, 3]
    }
}

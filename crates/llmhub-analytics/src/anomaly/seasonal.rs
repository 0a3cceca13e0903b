//! A seasonal baseline: each point is compared with the earlier points of the same season key
//! (hour of day, hour of week...), with a robust z-score whose spread borrows strength from the
//! other keys while a key's own history is short.

use std::collections::HashMap;

use super::Scored;
use crate::error::check;
use crate::stats::RobustBaseline;
use crate::AnalyticsError;

/// How many points' worth of weight the typical spread of all keys gets in a key's spread (see
/// [`seasonal`]): with 10, a key with 10 points of history is half its own MAD, half the typical
/// one; with 90 points, 90% its own.
pub const SEASONAL_PRIOR_WEIGHT: f64 = 10.0;

/// Scores each point against the earlier finite points with the same season key.
///
/// `season[i]` is the key of `values[i]`; the SQL layer passes e.g. the hour of day (0–23) or the
/// hour of week (0–167), but any `u32` works. With `h` earlier finite points of the key:
///
/// - `expected` is their median;
/// - the key's own spread `sₖ` is their robust scale as in [`robust_z`](crate::robust_z)
///   (`MAD / 0.6745`, else `1.2533 · mean |x − median|`);
/// - the spread used is `σ = √((h·sₖ² + w·s̃²) / (h + w)) · √(1 + π / (2h))`, where `s̃` is the
///   median of the current `sₖ` of all keys past warm-up and `w` = [`SEASONAL_PRIOR_WEIGHT`]. The
///   first factor shrinks a short history's MAD towards the typical spread: a MAD from a handful
///   of points is often far too small, and on its own flags several percent of normal points
///   (about 7% at h = 7 with threshold 3.5, against 0.05% for a known normal spread). The second
///   factor is the median's own sampling error (its variance is about `π σ² / 2h`), as
///   `√(1 + 1/n)` is in a regression prediction interval. The cost of borrowing: while histories
///   are short, keys much noisier than the typical one are flagged more often, much quieter ones
///   less;
/// - `score = (x − expected) / σ`, band `expected ± threshold · σ`, `anomaly = |score| >
///   threshold`; the no-spread rule of the [module docs](crate::anomaly) applies when `σ` is 0.
///
/// Warm-up: a point whose key has fewer than `min_history` earlier finite points. NaN and
/// ±infinity in `values` are missing points: reported with their key's baseline and a NaN score,
/// and kept out of the history. The history of a key grows with the series (no window): pass
/// the span the baseline should cover. Scores do not change when the series is shifted or scaled
/// by a positive factor (up to rounding). Cost: O(n · (h + k)), k the number of keys.
///
/// Errors: `season` not of the same length as `values` (names `season`), `min_history < 3`
/// (names `min_history`), `threshold` not a positive finite number (names `threshold`).
///
/// ```
/// use llmhub_analytics::seasonal;
/// // Two keys alternating: a high and a low phase, one spike in the high phase at index 10.
/// let values = [100.0, 1.0, 101.0, 2.0, 99.0, 1.5, 100.5, 1.0, 99.5, 2.0, 40.0, 1.5];
/// let season = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
/// let scored = seasonal(&values, &season, 3, 3.5).unwrap();
/// let flagged: Vec<usize> = (0..values.len()).filter(|&i| scored[i].anomaly).collect();
/// assert_eq!(flagged, [10]);
/// ```
pub fn seasonal(
    values: &[f64],
    season: &[u32],
    min_history: usize,
    threshold: f64,
) -> Result<Vec<Scored>, AnalyticsError> {
    if season.len() != values.len() {
        return Err(AnalyticsError::length_error(
            "season",
            format!("one key per value ({} values)", values.len()),
            season.len(),
        ));
    }
    let min_history = check::at_least("min_history", min_history, 3)?;
    let threshold = check::positive_finite("threshold", threshold)?;

    let mut keys: HashMap<u32, Key> = HashMap::new();
    let (mut sorted, mut scratch) = (Vec::new(), Vec::new());
    let mut out = Vec::with_capacity(values.len());
    for (&value, &key) in values.iter().zip(season) {
        let own = keys.get(&key).and_then(|k| Some((k.baseline?, k.history.len() as f64)));
        out.push(match own {
            Some((baseline, h)) => {
                let typical = typical_scale(&keys, &mut scratch);
                let blended = ((h * baseline.scale.powi(2) + SEASONAL_PRIOR_WEIGHT * typical.powi(2))
                    / (h + SEASONAL_PRIOR_WEIGHT))
                    .sqrt();
                let scale = blended * (1.0 + std::f64::consts::PI / (2.0 * h)).sqrt();
                Scored::against(value, baseline.center, scale, threshold)
            }
            None => Scored::warm_up(value),
        });
        if value.is_finite() {
            let entry = keys.entry(key).or_default();
            entry.history.push(value);
            if entry.history.len() >= min_history {
                sorted.clear();
                sorted.extend_from_slice(&entry.history);
                entry.baseline = RobustBaseline::of(&mut sorted, &mut scratch);
            }
        }
    }
    Ok(out)
}

/// One season key: its finite history and, once past warm-up, its robust baseline.
#[derive(Debug, Default)]
struct Key {
    history: Vec<f64>,
    baseline: Option<RobustBaseline>,
}

/// The median own spread of the keys past warm-up (at least the current key is).
fn typical_scale(keys: &HashMap<u32, Key>, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend(keys.values().filter_map(|k| k.baseline.map(|b| b.scale)));
    crate::stats::median_in_place(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_must_match() {
        let e = seasonal(&[1.0, 2.0], &[0], 3, 3.5).unwrap_err();
        assert_eq!(e.to_string(), "season: need one key per value (2 values), got 1");
        assert_eq!(seasonal(&[], &[], 2, 3.5).unwrap_err().argument(), "min_history");
    }

    #[test]
    fn expected_comes_from_the_same_key_only() {
        // Key 7's history is [5, 6, 7] (median 6) whatever key 3 does.
        let values = [5.0, 1000.0, 6.0, -1000.0, 7.0, 0.0, 6.0];
        let season = [7, 3, 7, 3, 7, 3, 7];
        let s = seasonal(&values, &season, 3, 3.5).unwrap();
        assert_eq!(s[6].expected, 6.0);
        assert_eq!(s[6].score, 0.0);
        assert!(s[5].expected.is_nan());
    }

    #[test]
    fn spread_blends_own_and_typical() {
        // Key 0: [1, 2, 3], median 2, MAD 1, own spread 1 / 0.6745. Key 1: [10, 14, 18], MAD 4,
        // own spread 4 / 0.6745. Typical = median of the two = 2.5 / 0.6745. Next key-0 point 6,
        // h = 3: σ = √((3·own² + 10·typical²) / 13) · √(1 + π / 6), score = (6 − 2) / σ.
        let values = [1.0, 10.0, 2.0, 14.0, 3.0, 18.0, 6.0];
        let season = [0, 1, 0, 1, 0, 1, 0];
        let s = seasonal(&values, &season, 3, 2.0).unwrap();
        let (own, typical): (f64, f64) = (1.0 / 0.6745, 2.5 / 0.6745);
        let sigma =
            ((3.0 * own * own + 10.0 * typical * typical) / 13.0).sqrt() * (1.0 + std::f64::consts::PI / 6.0).sqrt();
        assert_eq!(s[6].expected, 2.0);
        assert!((s[6].score - 4.0 / sigma).abs() < 1e-12);
        assert!((s[6].upper - (2.0 + 2.0 * sigma)).abs() < 1e-12);
    }
}

//! The detectors' promises on series whose anomalies are known: injected spikes are exactly what
//! is flagged, robust scores ignore the series' units and offset, an EWMA band catches a step,
//! and a seasonal baseline accepts the daily peak that a short trailing window flags.

mod common;

use common::{flagged, Rng};
use llmhub_analytics::{ewma, robust_z, seasonal, EWMA_WARMUP};
use proptest::prelude::*;

/// 50 ± 1 (uniform), with the given spikes added.
fn noisy_flat(len: usize, seed: u64, spikes: &[(usize, f64)]) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let mut values: Vec<f64> = (0..len).map(|_| 50.0 + rng.symmetric(1.0)).collect();
    for &(at, by) in spikes {
        values[at] += by;
    }
    values
}

#[test]
fn robust_z_flags_exactly_the_injected_spikes() {
    let spikes = [(40, 12.0), (97, 15.0), (150, -12.0), (151, 20.0), (199, 9.0)];
    let values = noisy_flat(200, 7, &spikes);
    let scored = robust_z(&values, 21, 3.5).unwrap();
    assert_eq!(scored.len(), values.len());
    assert!(scored[..21]
        .iter()
        .all(|s| s.expected.is_nan() && s.score.is_nan() && !s.anomaly));
    assert_eq!(flagged(&scored), spikes.map(|s| s.0));
    for s in &scored[21..] {
        assert!((s.expected - 50.0).abs() < 1.0, "the median ignores the spikes: {s:?}");
        assert_eq!(s.anomaly, s.value < s.lower || s.value > s.upper);
    }
}

#[test]
fn robust_z_reports_missing_points_without_scoring_them() {
    let mut values = noisy_flat(60, 3, &[(50, 10.0)]);
    values[30] = f64::NAN;
    values[31] = f64::NEG_INFINITY;
    let scored = robust_z(&values, 10, 3.5).unwrap();
    assert!(!scored[30].anomaly && scored[30].score.is_nan() && scored[30].expected.is_finite());
    assert!(scored[31].value == f64::NEG_INFINITY && !scored[31].anomaly);
    assert_eq!(flagged(&scored), [50]);
}

#[test]
fn ewma_catches_a_step_and_nothing_before_it() {
    for seed in 0..20 {
        let mut rng = Rng::new(seed);
        let values: Vec<f64> = (0..100)
            .map(|t| if t < 60 { 10.0 } else { 15.0 } + rng.symmetric(0.5))
            .collect();
        let scored = ewma(&values, 0.1, 3.5).unwrap();
        assert!(scored[..EWMA_WARMUP].iter().all(|s| s.expected.is_nan() && !s.anomaly));
        let first = flagged(&scored).first().copied();
        assert_eq!(first, Some(60), "seed {seed}: first flag at the step");
        // The band then catches up with the new level.
        assert!(scored[90..].iter().all(|s| !s.anomaly), "seed {seed}");
        assert!((scored[99].expected - 15.0).abs() < 0.5, "seed {seed}");
    }
}

/// 14 days of hourly values: 100 at night, a 60-unit daily peak from 9:00 to 17:00, noise ±3.
fn daily_series(seed: u64) -> (Vec<f64>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let hours: Vec<u32> = (0..14 * 24).map(|t| t % 24).collect();
    let values = hours
        .iter()
        .map(|&h| if (9..=17).contains(&h) { 160.0 } else { 100.0 } + rng.symmetric(3.0))
        .collect();
    (values, hours)
}

#[test]
fn seasonal_flags_only_the_injected_point_where_a_trailing_window_flags_every_peak() {
    let (mut false_flags, mut scored_points) = (0, 0);
    for seed in 0..10 {
        let (mut values, hours) = daily_series(seed);
        // Day 11, 03:00: 140 — below every daytime value, but 40 above a normal night.
        let injected = 11 * 24 + 3;
        values[injected] = 140.0;

        let by_hour = seasonal(&values, &hours, 7, 4.5).unwrap();
        assert_eq!(flagged(&by_hour), [injected], "seed {seed}");
        // Warm-up: each hour's first 7 days.
        assert!(by_hour[..7 * 24].iter().all(|s| s.expected.is_nan() && !s.anomaly));
        assert!((by_hour[injected].expected - 100.0).abs() < 3.0);

        // At the customary 3.5 a few unlucky short histories do fire, rarely.
        let at_3_5 = seasonal(&values, &hours, 7, 3.5).unwrap();
        assert!(at_3_5[injected].anomaly);
        false_flags += flagged(&at_3_5).len() - 1;
        scored_points += values.len() - 7 * 24;

        // A 6-hour trailing window sees the 9:00 rise and the 18:00 fall as anomalies, every day.
        let trailing = flagged(&robust_z(&values, 6, 4.5).unwrap());
        for day in 1..14 {
            assert!(trailing.contains(&(day * 24 + 9)), "seed {seed}: rise of day {day}");
            assert!(trailing.contains(&(day * 24 + 18)), "seed {seed}: fall of day {day}");
        }
    }
    assert!(
        false_flags * 200 <= scored_points,
        "{false_flags} false flags in {scored_points} points"
    );
}

#[test]
fn seasonal_accepts_hour_of_week_keys() {
    // Weekends (keys 120..168) are quiet; a quiet Monday is the anomaly, not the weekend.
    let mut rng = Rng::new(11);
    let keys: Vec<u32> = (0..8 * 168).map(|t| t % 168).collect();
    let mut values: Vec<f64> = keys
        .iter()
        .map(|&k| if k < 120 { 50.0 } else { 5.0 } + rng.symmetric(1.0))
        .collect();
    let quiet_monday = 7 * 168 + 10;
    values[quiet_monday] = 5.0;
    let scored = seasonal(&values, &keys, 4, 4.5).unwrap();
    assert_eq!(flagged(&scored), [quiet_monday]);
}

#[test]
fn seasonal_short_histories_borrow_the_typical_spread() {
    // Normal noise, hour of day, 7 days of history: the key's own MAD alone (robust_z over the
    // same points) flags several percent of normal points; the blended spread stays near the
    // nominal rate. Counted over 40 series of 21 days.
    let (mut blended, mut own, mut total) = (0usize, 0usize, 0usize);
    for seed in 0..40 {
        let mut rng = Rng::new(1000 + seed);
        let hours: Vec<u32> = (0..21 * 24).map(|t| t % 24).collect();
        let values: Vec<f64> = hours.iter().map(|&h| 10.0 * f64::from(h % 5) + rng.normal()).collect();
        blended += flagged(&seasonal(&values, &hours, 7, 3.5).unwrap()).len();
        for h in 0..24 {
            let one_hour: Vec<f64> = values.iter().skip(h).step_by(24).copied().collect();
            // The hour's own points alone, 7 at a time: the per-key MAD of 7 points.
            own += flagged(&robust_z(&one_hour, 7, 3.5).unwrap()).len();
        }
        total += values.len() - 7 * 24;
    }
    let (blended, own) = (blended as f64 / total as f64, own as f64 / total as f64);
    eprintln!("false-flag rate: blended {blended:.4}, own MAD {own:.4}");
    assert!(blended < 0.006, "blended spread: {blended}");
    assert!(own > 0.03, "own MAD of 7 points: {own}");
}

proptest! {
    #[test]
    fn robust_scores_ignore_scale_and_offset(
        values in prop::collection::vec(-100.0f64..100.0, 5..60),
        window in 3usize..12,
        factor in 0.01f64..100.0,
        offset in -1000.0f64..1000.0,
    ) {
        let base = robust_z(&values, window, 3.5).unwrap();
        let scaled: Vec<f64> = values.iter().map(|v| v * factor).collect();
        let shifted: Vec<f64> = values.iter().map(|v| v + offset).collect();
        for other in [robust_z(&scaled, window, 3.5).unwrap(), robust_z(&shifted, window, 3.5).unwrap()] {
            for (a, b) in base.iter().zip(&other) {
                if a.score.is_nan() {
                    prop_assert!(b.score.is_nan());
                    continue;
                }
                prop_assert!((a.score - b.score).abs() <= 1e-6 * a.score.abs().max(1.0), "{a:?} vs {b:?}");
                if (a.score.abs() - 3.5).abs() > 1e-6 * a.score.abs().max(1.0) {
                    prop_assert_eq!(a.anomaly, b.anomaly);
                }
            }
        }
    }

    #[test]
    fn scored_points_are_consistent(values in prop::collection::vec(-1e6f64..1e6, 0..80), window in 3usize..20) {
        let seasons: Vec<u32> = (0..values.len() as u32).map(|i| i % 4).collect();
        for scored in [
            robust_z(&values, window, 3.0).unwrap(),
            ewma(&values, 0.2, 3.0).unwrap(),
            seasonal(&values, &seasons, 3, 3.0).unwrap(),
        ] {
            prop_assert_eq!(scored.len(), values.len());
            for (s, &v) in scored.iter().zip(&values) {
                prop_assert_eq!(s.value, v);
                if s.expected.is_nan() {
                    prop_assert!(s.score.is_nan() && !s.anomaly);
                } else {
                    prop_assert!(s.lower <= s.expected && s.expected <= s.upper);
                    prop_assert!(s.score.is_finite());
                    prop_assert_eq!(s.anomaly, s.score.abs() > 3.0);
                }
            }
        }
    }
}

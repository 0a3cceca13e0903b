//! No input makes a function panic: arbitrary `f64` (NaN, ±infinity, subnormals, ±f64::MAX),
//! arbitrary lengths and arbitrary parameters give `Ok` or a typed error, and an `Ok` keeps the
//! documented shape (one point per input, `horizon` forecast steps, no infinite score).

use llmhub_analytics::{
    budget, burn_rate, ewma, holt_winters, linear, mad, median, multi_window_burn, normal_quantile, robust_z, seasonal,
    student_t_quantile, Scored,
};
use proptest::prelude::*;

/// Any f64, with the awkward ones over-represented.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e3f64..1e3,
        2 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::MAX),
        1 => Just(-f64::MAX),
        1 => Just(0.0),
        1 => Just(f64::MIN_POSITIVE / 4.0),
    ]
}

fn series() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(float(), 0..80)
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..30, 1 => any::<usize>()]
}

fn check_scored(values: &[f64], scored: &[Scored]) -> Result<(), TestCaseError> {
    prop_assert_eq!(scored.len(), values.len());
    for s in scored {
        prop_assert!(!s.score.is_infinite());
        prop_assert!(!(s.anomaly && s.score.is_nan()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn detectors(values in series(), window in size(), threshold in float(), alpha in float(), keys in prop::collection::vec(0u32..30, 0..80)) {
        if let Ok(scored) = robust_z(&values, window, threshold) {
            check_scored(&values, &scored)?;
        }
        if let Ok(scored) = ewma(&values, alpha, threshold) {
            check_scored(&values, &scored)?;
        }
        let matching: Vec<u32> = values.iter().enumerate().map(|(i, _)| keys.get(i).copied().unwrap_or(7)).collect();
        for season in [&keys, &matching] {
            if let Ok(scored) = seasonal(&values, season, window, threshold) {
                check_scored(&values, &scored)?;
            }
        }
    }

    #[test]
    fn forecasts(values in series(), period in size(), horizon in size(), level in float()) {
        if let Ok(f) = holt_winters(&values, period, horizon, level) {
            prop_assert_eq!(f.points.len(), horizon);
        }
        if let Ok(f) = linear(&values, horizon, level) {
            prop_assert_eq!(f.points.len(), horizon);
        }
    }

    #[test]
    fn scalars(values in series(), days in size(), a in float(), b in float(), c in float(), d in float(), e in float(), f in float()) {
        let _ = budget(&values, days, a, b);
        let _ = burn_rate(a, b, c);
        let _ = multi_window_burn(a, b, c, d, e, f);
        let _ = median(&values);
        let _ = mad(&values);
        let _ = normal_quantile(a);
        if let Ok(t) = student_t_quantile(a, b) {
            prop_assert!(!t.is_nan());
        }
    }

    #[test]
    fn quantiles_in_range(p in 1e-300f64..1.0, dof in 1e-3f64..1e9) {
        let z = normal_quantile(p).unwrap();
        prop_assert!(z.is_finite());
        let t = student_t_quantile(p, dof).unwrap();
        prop_assert!(!t.is_nan());
        prop_assert!(t.abs() >= z.abs() * (1.0 - 1e-9), "p {p} dof {dof}: t {t} z {z}");
    }
}

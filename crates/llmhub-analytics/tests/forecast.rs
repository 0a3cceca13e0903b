//! Forecasts checked against series whose continuation is known: exact seasonal lines and exact
//! lines are continued exactly, a hand-computed regression interval is reproduced, and on noisy
//! series the 95% Holt-Winters interval covers the truth at about the promised rate.

mod common;

use common::Rng;
use llmhub_analytics::{holt_winters, linear, AnalyticsError};

fn param(forecast: &llmhub_analytics::Forecast, name: &str) -> f64 {
    forecast
        .params
        .iter()
        .find(|(n, _)| *n == name)
        .map(|p| p.1)
        .expect("parameter present")
}

#[test]
fn holt_winters_continues_an_exact_seasonal_line() {
    // level + trend · t + seasonal[t mod 24], with a pattern that does not sum to 0.
    let pattern: Vec<f64> = (0..24)
        .map(|h| 30.0 * ((h as f64) / 24.0 * std::f64::consts::TAU).sin() + h as f64)
        .collect();
    let truth = |t: usize| 200.0 + 0.3 * t as f64 + pattern[t % 24];
    let values: Vec<f64> = (0..5 * 24).map(truth).collect();
    let forecast = holt_winters(&values, 24, 48, 0.95).unwrap();
    assert_eq!(forecast.points.len(), 48);
    for p in &forecast.points {
        let expected = truth(values.len() - 1 + p.step);
        assert!(
            (p.value - expected).abs() <= 1e-6 * expected.abs(),
            "step {}: {} vs {expected}",
            p.step,
            p.value
        );
        assert!(p.upper - p.lower < 1e-6, "no residuals, no width: {p:?}");
    }
    assert!(forecast.fitted_sse < 1e-12);
    let names: Vec<&str> = forecast.params.iter().map(|p| p.0).collect();
    assert_eq!(names, ["alpha", "beta", "gamma", "sigma"]);
}

#[test]
fn holt_winters_interval_covers_noisy_continuations() {
    // 200 series of 8 seasons (m = 12) with normal noise (sd 2); forecast one season ahead.
    let (mut covered, mut total) = (0usize, 0usize);
    for seed in 0..200 {
        let mut rng = Rng::new(seed);
        let signal = |t: usize| 50.0 + 0.2 * t as f64 + 10.0 * (t as f64 / 12.0 * std::f64::consts::TAU).sin();
        let series: Vec<f64> = (0..9 * 12).map(|t| signal(t) + 2.0 * rng.normal()).collect();
        let (history, future) = series.split_at(8 * 12);
        let forecast = holt_winters(history, 12, 12, 0.95).unwrap();
        let (alpha, beta, gamma) = (
            param(&forecast, "alpha"),
            param(&forecast, "beta"),
            param(&forecast, "gamma"),
        );
        assert!(
            (0.0..=1.0).contains(&alpha) && (0.0..=1.0).contains(&beta) && (0.0..=1.0 - alpha + 1e-12).contains(&gamma)
        );
        for (p, &actual) in forecast.points.iter().zip(future) {
            assert!(p.lower <= p.value && p.value <= p.upper);
            total += 1;
            covered += usize::from(p.lower <= actual && actual <= p.upper);
        }
    }
    let rate = covered as f64 / total as f64;
    eprintln!("95% interval coverage over {total} points: {rate:.3}");
    assert!((0.85..=0.99).contains(&rate), "coverage {rate}");
}

#[test]
fn holt_winters_is_deterministic() {
    let mut rng = Rng::new(5);
    let values: Vec<f64> = (0..60).map(|t| (t % 6) as f64 + rng.normal()).collect();
    assert_eq!(
        holt_winters(&values, 6, 10, 0.9).unwrap(),
        holt_winters(&values, 6, 10, 0.9).unwrap()
    );
}

#[test]
fn holt_winters_errors_name_the_argument() {
    let short = vec![1.0; 30];
    let e = holt_winters(&short, 24, 12, 0.95).unwrap_err();
    assert_eq!(
        e.to_string(),
        "values: need at least 2 full seasons (48 points) for a seasonal model, got 30"
    );
    assert_eq!(e.argument(), "values");
    assert_eq!(
        holt_winters(&short, 1, 12, 0.95).unwrap_err().to_string(),
        "period must be at least 2, got 1"
    );
    assert_eq!(
        holt_winters(&short, usize::MAX, 12, 0.95).unwrap_err().argument(),
        "values"
    );
    assert_eq!(holt_winters(&short, 4, 0, 0.95).unwrap_err().argument(), "horizon");
    assert_eq!(holt_winters(&short, 4, 3, 95.0).unwrap_err().argument(), "level");
    let mut gap = vec![1.0; 30];
    gap[7] = f64::NAN;
    assert!(matches!(
        holt_winters(&gap, 4, 3, 0.95).unwrap_err(),
        AnalyticsError::Element {
            argument: "values",
            index: 7,
            ..
        }
    ));
}

#[test]
fn linear_continues_an_exact_line() {
    let values: Vec<f64> = (0..20).map(|x| 3.0 - 0.75 * x as f64).collect();
    let forecast = linear(&values, 5, 0.95).unwrap();
    for p in &forecast.points {
        let expected = 3.0 - 0.75 * (19 + p.step) as f64;
        assert!((p.value - expected).abs() < 1e-9);
        assert!(p.upper - p.lower < 1e-9);
    }
    assert!((param(&forecast, "slope") + 0.75).abs() < 1e-12);
    assert!((param(&forecast, "intercept") - 3.0).abs() < 1e-12);
}

#[test]
fn linear_interval_by_hand() {
    // y = 1 3 2 5 4 at x = 0..4: x̄ = 2, ȳ = 3, Sxx = 10, Sxy = 8, slope 0.8, intercept 1.4.
    // Fitted 1.4 2.2 3.0 3.8 4.6, residuals -0.4 0.8 -1.0 1.2 -0.6, SSE = 3.6, s² = 3.6 / 3 = 1.2.
    // t(0.975, 3) = 3.182446305.
    // h = 1: x₀ = 5, ŷ = 5.4, half width = t · √(1.2 · (1 + 1/5 + 9/10)) = t · √2.52 = 5.051976891.
    // h = 2: x₀ = 6, ŷ = 6.2, half width = t · √(1.2 · (1 + 1/5 + 16/10)) = t · √3.36 = 5.833520436.
    let forecast = linear(&[1.0, 3.0, 2.0, 5.0, 4.0], 2, 0.95).unwrap();
    let [h1, h2] = [forecast.points[0], forecast.points[1]];
    assert!((h1.value - 5.4).abs() < 1e-12 && (h2.value - 6.2).abs() < 1e-12);
    assert!(((h1.upper - h1.value) - 5.051_976_890_758_222).abs() < 1e-8);
    assert!(((h1.value - h1.lower) - 5.051_976_890_758_222).abs() < 1e-8);
    assert!(((h2.upper - h2.value) - 5.833_520_435_638_056).abs() < 1e-8);
    assert!((forecast.fitted_sse - 3.6).abs() < 1e-12);
    assert!((param(&forecast, "sigma") - 1.2f64.sqrt()).abs() < 1e-12);
}

#[test]
fn linear_skips_missing_points_without_shifting_time() {
    let values = [0.0, f64::NAN, 2.0, 3.0, f64::INFINITY, 5.0];
    let forecast = linear(&values, 1, 0.9).unwrap();
    assert!((forecast.points[0].value - 6.0).abs() < 1e-12);
    let e = linear(&[1.0, f64::NAN, 2.0], 1, 0.9).unwrap_err();
    assert_eq!(
        e.to_string(),
        "values: need at least 3 finite points for a linear fit, got 2"
    );
}

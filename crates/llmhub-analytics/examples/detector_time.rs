//! Time per call of `seasonal_trend` against the hour-of-day `seasonal` detector (the baseline)
//! on what the cost dashboard's spend panel passes for a 30-day range: 58 days of hourly values
//! (the range and its 28 days of history). `cargo run --release -p llmhub-analytics --example
//! detector_time`; figures in BENCHMARKS.md.

use std::time::{Duration, Instant};

fn per_call(mut f: impl FnMut()) -> Duration {
    f();
    let start = Instant::now();
    for _ in 0..20 {
        f();
    }
    start.elapsed() / 20
}

fn main() {
    let values: Vec<f64> = (0..58 * 24)
        .map(|g| (100.0 + 60.0 * (g as f64 / 3.8).sin()) * (1.0 + ((g * 7919 % 11) as f64 - 5.0) / 100.0))
        .collect();
    let keys: Vec<u32> = (0..values.len()).map(|g| (g % 24) as u32).collect();
    let trend = per_call(|| {
        std::hint::black_box(llmhub_analytics::seasonal_trend(&values, 0, 5.0).ok());
    });
    let daily = per_call(|| {
        std::hint::black_box(llmhub_analytics::seasonal(&values, &keys, 3, 3.5).ok());
    });
    println!(
        "{} hourly points: seasonal_trend {trend:?}, seasonal hour_of_day {daily:?} (ratio {:.1})",
        values.len(),
        trend.as_secs_f64() / daily.as_secs_f64()
    );
}

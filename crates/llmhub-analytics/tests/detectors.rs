//! Precision and recall of every detector on hourly series shaped like LLM spend and latency: a
//! daily and a weekly cycle, a trend, slow drifts of the level and noise that grows with the
//! value, with injected spikes, outages and level shifts as ground truth.
//!
//! `cargo test -p llmhub-analytics --test detectors -- --nocapture` prints the table that
//! BENCHMARKS.md quotes. Counting is by incident and by flagged run:
//! - recall: the share of incidents with at least one flagged hour inside them (a level shift's
//!   first 24 hours);
//! - precision: the share of flagged runs (maximal runs of consecutive flagged hours) that touch
//!   an incident; a run anywhere else is a false alarm.
//!
//! Only hours after two weeks of history are counted, for every detector alike.

mod common;

use common::Rng;
use llmhub_analytics::{ewma, robust_z, seasonal, seasonal_trend, Scored, SEASONAL_TREND_THRESHOLD};

/// The detector held to precision and recall of 0.9: `seasonal_trend` with its default threshold.
const DEFAULT: &str = "seasonal_trend (5, default)";

const DAY: usize = 24;
const WEEK: usize = 168;
const WEEKS: usize = 6;
const SCORED_FROM: usize = 2 * WEEK;
const SEEDS: u64 = 12;
const INCIDENTS_PER_SERIES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Spike,
    Outage,
    Shift,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// Spend or calls per hour: strong daily cycle (night at 0.3 of the peak), quiet weekends.
    Spend,
    /// p95 latency per hour: a mild cycle (slower under load) and relatively more noise.
    Latency,
}

struct Series {
    values: Vec<f64>,
    first_hour_of_week: u32,
    /// Incident windows `[start, end)`.
    incidents: Vec<(usize, usize)>,
}

fn generate(shape: Shape, kind: Kind, seed: u64) -> Series {
    let mut rng = Rng::new(seed * 7919 + kind as u64 * 31 + shape as u64);
    let n = WEEKS * WEEK;
    let first = (rng.uniform() * WEEK as f64) as usize;
    let (amplitude, weekend) = match shape {
        Shape::Spend => (0.55 + rng.symmetric(0.1), 0.5 + rng.symmetric(0.1)),
        Shape::Latency => (0.12 + rng.symmetric(0.04), 0.92),
    };
    let phase = 13.0 + rng.symmetric(3.0);
    let trend_per_day = rng.symmetric(0.02);
    // Incidents: four per series, at least three days apart, after the two weeks of history.
    let mut starts: Vec<usize> = Vec::new();
    while starts.len() < INCIDENTS_PER_SERIES {
        let s = SCORED_FROM + DAY + (rng.uniform() * (n - SCORED_FROM - 3 * DAY) as f64) as usize;
        if starts.iter().all(|o| o.abs_diff(s) >= 3 * DAY) {
            starts.push(s);
        }
    }
    starts.sort_unstable();
    let mut effects: Vec<(usize, usize, f64)> = Vec::new();
    let mut incidents = Vec::new();
    for &s in &starts {
        match kind {
            Kind::Spike => {
                let len = 1 + (rng.uniform() * 3.0) as usize;
                effects.push((s, s + len, 2.5 + rng.uniform() * 1.5));
                incidents.push((s, s + len));
            }
            Kind::Outage => {
                let len = 3 + (rng.uniform() * 6.0) as usize;
                effects.push((s, s + len, rng.uniform() * 0.05));
                incidents.push((s, s + len));
            }
            Kind::Shift => {
                let up = rng.uniform() < 0.5;
                let factor = if up {
                    1.4 + rng.uniform() * 0.4
                } else {
                    0.5 + rng.uniform() * 0.2
                };
                effects.push((s, n, factor));
                incidents.push((s, s + DAY));
            }
        }
    }
    let mut drift = 0.0;
    let values = (0..n)
        .map(|i| {
            let how = (first + i) % WEEK;
            let (dow, hod) = (how / DAY, (how % DAY) as f64);
            drift = 0.98 * drift + 0.006 * rng.normal();
            let daily = 1.0 + amplitude * (2.0 * std::f64::consts::PI * (hod - phase + 6.0) / 24.0).sin();
            let weekly = if dow == 0 || dow == 6 { weekend } else { 1.0 };
            let mut mean = 100.0 * (trend_per_day * i as f64 / DAY as f64).exp() * daily * weekly * drift.exp();
            for &(from, to, factor) in &effects {
                if (from..to).contains(&i) {
                    mean *= factor;
                }
            }
            let sd = match shape {
                // Poisson-like: the variance grows with the value (cv 5% at the peak, 15% at night).
                Shape::Spend => (0.5 * mean).sqrt(),
                Shape::Latency => 0.08 * mean,
            };
            (mean + sd * rng.normal()).max(0.0)
        })
        .collect();
    Series {
        values,
        first_hour_of_week: first as u32,
        incidents,
    }
}

type Detector = (&'static str, fn(&Series) -> Vec<Scored>);

fn detectors() -> Vec<Detector> {
    vec![
        ("robust_z (24 h, 3.5)", |s| robust_z(&s.values, 24, 3.5).unwrap()),
        ("ewma (0.3, 3)", |s| ewma(&s.values, 0.3, 3.0).unwrap()),
        ("seasonal hour_of_day (3.5)", |s| {
            let keys: Vec<u32> = (0..s.values.len())
                .map(|i| ((s.first_hour_of_week as usize + i) % DAY) as u32)
                .collect();
            seasonal(&s.values, &keys, 3, 3.5).unwrap()
        }),
        ("seasonal hour_of_week (3.5)", |s| {
            let keys: Vec<u32> = (0..s.values.len())
                .map(|i| ((s.first_hour_of_week as usize + i) % WEEK) as u32)
                .collect();
            seasonal(&s.values, &keys, 3, 3.5).unwrap()
        }),
        ("seasonal_trend (4)", |s| {
            seasonal_trend(&s.values, s.first_hour_of_week, 4.0).unwrap()
        }),
        (DEFAULT, |s| {
            seasonal_trend(&s.values, s.first_hour_of_week, SEASONAL_TREND_THRESHOLD).unwrap()
        }),
    ]
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    incidents: usize,
    found: usize,
    runs: usize,
    true_runs: usize,
}

impl Counts {
    fn add(&mut self, s: &Series, scored: &[Scored]) {
        let flagged = |i: usize| scored[i].anomaly;
        for &(a, b) in &s.incidents {
            self.incidents += 1;
            self.found += usize::from((a..b).any(flagged));
        }
        let mut i = SCORED_FROM;
        while i < scored.len() {
            if !flagged(i) {
                i += 1;
                continue;
            }
            let start = i;
            while i < scored.len() && flagged(i) {
                i += 1;
            }
            self.runs += 1;
            self.true_runs += usize::from(s.incidents.iter().any(|&(a, b)| start < b && i > a));
        }
    }

    fn recall(&self) -> f64 {
        self.found as f64 / self.incidents as f64
    }

    fn precision(&self) -> f64 {
        if self.runs == 0 {
            1.0
        } else {
            self.true_runs as f64 / self.runs as f64
        }
    }
}

fn evaluate(shape: Shape, kind: Kind) -> Vec<(&'static str, Counts)> {
    let mut counts: Vec<(&'static str, Counts)> = detectors().iter().map(|d| (d.0, Counts::default())).collect();
    for seed in 1..=SEEDS {
        let s = generate(shape, kind, seed);
        for (d, (_, c)) in detectors().iter().zip(counts.iter_mut()) {
            c.add(&s, &(d.1)(&s));
        }
    }
    counts
}

#[test]
fn seasonal_trend_finds_spikes_outages_and_shifts_with_precision_and_recall_of_0_9() {
    let mut failures = Vec::new();
    println!("| series | incidents | detector | recall | precision |\n|---|---|---|---|---|");
    for shape in [Shape::Spend, Shape::Latency] {
        for kind in [Kind::Spike, Kind::Outage, Kind::Shift] {
            for (name, c) in evaluate(shape, kind) {
                println!(
                    "| {shape:?} | {kind:?} ({} in {SEEDS} series) | {name} | {:.2} ({}/{}) | {:.2} ({}/{} runs) |",
                    c.incidents,
                    c.recall(),
                    c.found,
                    c.incidents,
                    c.precision(),
                    c.true_runs,
                    c.runs,
                );
                if name == DEFAULT && (c.recall() < 0.9 || c.precision() < 0.9) {
                    failures.push(format!(
                        "{shape:?}/{kind:?}: recall {:.2}, precision {:.2}",
                        c.recall(),
                        c.precision()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

//! The summary's promises, checked: quantiles within the declared relative error of the exact order
//! statistic on skewed data, merges equal to one summary over all values, the format round-trips,
//! and the decoder survives any bytes.

use llmhub_sketch::{AddError, FormatError, MergeError, QuantileSketch, DEFAULT_ALPHA, DEFAULT_MAX_BUCKETS};
use proptest::prelude::*;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }
    fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        (mu + sigma * self.normal()).exp()
    }
    fn pareto(&mut self, scale: f64, shape: f64) -> f64 {
        scale / self.uniform().powf(1.0 / shape)
    }
}

fn exact(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
}

fn check(name: &str, values: &[f64]) {
    let mut s = QuantileSketch::default();
    for &v in values {
        s.add(v).unwrap();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let bound = s.error_bound();
    for q in [0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999] {
        let want = exact(&sorted, q);
        let got = s.quantile(q).unwrap();
        let rel = if want == 0.0 {
            got.abs()
        } else {
            (got - want).abs() / want
        };
        assert!(
            rel <= bound * (1.0 + 1e-9),
            "{name} q={q}: got {got}, exact {want}, relative error {rel} > {bound}"
        );
    }
    assert_eq!(s.count(), values.len() as u64);
    assert_eq!(s.min(), sorted.first().copied());
    assert_eq!(s.max(), sorted.last().copied());
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    assert!((s.mean().unwrap() - mean).abs() <= 1e-9 * mean.abs());
}

#[test]
fn skewed_distributions_stay_within_the_bound() {
    let mut r = Rng(42);
    // Latency-like: lognormal around 800 ms.
    check(
        "lognormal",
        &(0..200_000).map(|_| r.lognormal(-0.2, 0.9)).collect::<Vec<_>>(),
    );
    // Bimodal: cache hits (~50 ms) and misses (~2 s).
    check(
        "bimodal",
        &(0..200_000)
            .map(|_| {
                if r.uniform() < 0.7 {
                    r.lognormal(-3.0, 0.3)
                } else {
                    r.lognormal(0.7, 0.4)
                }
            })
            .collect::<Vec<_>>(),
    );
    // Heavy tail: Pareto token counts.
    check("pareto", &(0..200_000).map(|_| r.pareto(10.0, 1.1)).collect::<Vec<_>>());
    // With zeros (cached responses report 0 output tokens).
    check(
        "zeros",
        &(0..50_000)
            .map(|k| if k % 5 == 0 { 0.0 } else { r.lognormal(5.0, 1.0).round() })
            .collect::<Vec<_>>(),
    );
}

#[test]
fn a_range_wider_than_the_buckets_collapses_and_keeps_its_weaker_bound() {
    let mut r = Rng(7);
    // Fourteen decades: 1e-5 s to 1e9.
    let values: Vec<f64> = (0..100_000).map(|_| 10f64.powf(-5.0 + 14.0 * r.uniform())).collect();
    let mut s = QuantileSketch::default();
    for &v in &values {
        s.add(v).unwrap();
    }
    assert!(s.collapses() >= 1);
    assert!(s.error_bound() > DEFAULT_ALPHA);
    check("fourteen decades", &values);
}

#[test]
fn worked_example() {
    let mut s = QuantileSketch::new(0.01, 256).unwrap();
    for v in 1..=10 {
        s.add(v as f64).unwrap();
    }
    // Rank floor(0.5 · 9) = 4 → the 5th value, 5; the estimate is its bucket's representative.
    // ln 10 / ln γ ≈ 114 buckets: no collapse, so the bound is α itself.
    assert_eq!(s.collapses(), 0);
    let p50 = s.quantile(0.5).unwrap();
    assert!((p50 - 5.0).abs() / 5.0 <= 0.01, "{p50}");
    assert_eq!(s.quantile(0.0), Some(1.0));
    assert_eq!(s.quantile(1.0), Some(10.0));
    assert_eq!(s.quantile(1.5), None);
    assert_eq!(s.quantile(f64::NAN), None);
    assert_eq!(s.mean(), Some(5.5));
    assert_eq!(QuantileSketch::default().quantile(0.5), None);
}

#[test]
fn bad_values_are_refused_and_leave_the_summary_unchanged() {
    let mut s = QuantileSketch::default();
    s.add(3.0).unwrap();
    let before = s.clone();
    assert!(matches!(s.add(f64::NAN), Err(AddError::NotFinite(_))));
    assert!(matches!(s.add(f64::INFINITY), Err(AddError::NotFinite(_))));
    assert!(matches!(s.add(-1.0), Err(AddError::Negative(_))));
    assert_eq!(s, before);
    s.add(0.0).unwrap();
    assert_eq!(s.zero_count(), 1);
    assert_eq!(s.quantile(0.0), Some(0.0));
}

#[test]
fn different_parameters_do_not_merge() {
    let mut a = QuantileSketch::new(0.01, 1024).unwrap();
    let b = QuantileSketch::new(0.02, 1024).unwrap();
    assert!(matches!(a.merge(&b), Err(MergeError::Parameters(..))));
    assert!(QuantileSketch::new(0.0, 1024).is_err());
    assert!(QuantileSketch::new(0.01, 8).is_err());
}

#[test]
fn the_format_starts_with_its_magic_and_version() {
    let mut s = QuantileSketch::default();
    s.add(1.5).unwrap();
    let b = s.to_bytes();
    assert_eq!(&b[..5], b"LHQS\x01");
    let mut v2 = b.clone();
    v2[4] = 2;
    assert_eq!(QuantileSketch::from_bytes(&v2), Err(FormatError::Version(2)));
    assert_eq!(QuantileSketch::from_bytes(b"nope"), Err(FormatError::Magic));
    assert!(matches!(
        QuantileSketch::from_bytes(&b[..b.len() - 1]),
        Err(FormatError::Truncated(_))
    ));
}

fn values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![
            Just(0.0),
            (1e-9f64..1e-3),
            (1e-3f64..10.0),
            (10.0f64..1e7),
            (1e7f64..1e12),
        ],
        0..400,
    )
}

fn sketch(vs: &[f64]) -> QuantileSketch {
    let mut s = QuantileSketch::new(DEFAULT_ALPHA, 256).unwrap();
    for &v in vs {
        s.add(v).unwrap();
    }
    s
}

proptest! {
    #[test]
    fn merging_parts_equals_one_summary_of_all(vs in values(), cuts in prop::collection::vec(0usize..400, 0..5)) {
        let whole = sketch(&vs);
        let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(vs.len())).collect();
        bounds.push(0);
        bounds.push(vs.len());
        bounds.sort_unstable();
        let mut merged = QuantileSketch::new(DEFAULT_ALPHA, 256).unwrap();
        for w in bounds.windows(2) {
            merged.merge(&sketch(&vs[w[0]..w[1]])).unwrap();
        }
        prop_assert_eq!(merged.count(), whole.count());
        prop_assert_eq!(merged.collapses(), whole.collapses());
        prop_assert_eq!(merged.buckets().collect::<Vec<_>>(), whole.buckets().collect::<Vec<_>>());
        prop_assert_eq!(merged.zero_count(), whole.zero_count());
        prop_assert_eq!(merged.min(), whole.min());
        prop_assert_eq!(merged.max(), whole.max());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
            prop_assert_eq!(merged.quantile(q), whole.quantile(q));
        }
        let tol = 1e-9 * whole.sum().abs().max(1.0);
        prop_assert!((merged.sum() - whole.sum()).abs() <= tol);
    }

    #[test]
    fn quantiles_stay_within_the_bound(vs in values(), q in 0.0f64..=1.0) {
        prop_assume!(!vs.is_empty());
        let s = sketch(&vs);
        let mut sorted = vs.clone();
        sorted.sort_by(f64::total_cmp);
        let want = exact(&sorted, q);
        let got = s.quantile(q).unwrap();
        let tol = s.error_bound() * (1.0 + 1e-9);
        if want < llmhub_sketch::MIN_POSITIVE {
            prop_assert!(got < llmhub_sketch::MIN_POSITIVE * (1.0 + tol) || got == want);
        } else {
            prop_assert!((got - want).abs() / want <= tol, "q {} got {} want {}", q, got, want);
        }
    }

    #[test]
    fn the_format_round_trips(vs in values()) {
        let s = sketch(&vs);
        let back = QuantileSketch::from_bytes(&s.to_bytes()).unwrap();
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(back.to_bytes(), s.to_bytes());
    }

    #[test]
    fn the_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = QuantileSketch::from_bytes(&bytes);
    }

    #[test]
    fn corrupted_encodings_are_refused_or_valid(vs in values(), at in 0usize..1000, xor in 1u8..=255) {
        let mut b = sketch(&vs).to_bytes();
        let k = at % b.len();
        b[k] ^= xor;
        if let Ok(s) = QuantileSketch::from_bytes(&b) {
            // Whatever decodes is a consistent summary.
            let total = s.zero_count() + s.buckets().map(|(_, c)| c).sum::<u64>();
            prop_assert_eq!(total, s.count());
        }
    }
}

#[test]
fn defaults() {
    let s = QuantileSketch::default();
    assert_eq!((s.alpha(), s.max_buckets()), (DEFAULT_ALPHA, DEFAULT_MAX_BUCKETS));
}

proptest! {
    /// Merging the encoded form equals merging the decoded summary, whatever the ranges and
    /// collapse levels of the two (the fast path and the fallback).
    #[test]
    fn merge_bytes_equals_merge_of_the_decoded_summary(
        a in proptest::collection::vec(1e-6f64..1e9, 0..300),
        b in proptest::collection::vec(1e-6f64..1e9, 0..300),
        max_buckets in 16u32..256,
    ) {
        let mut x = QuantileSketch::new(0.01, max_buckets).unwrap();
        let mut y = QuantileSketch::new(0.01, max_buckets).unwrap();
        for v in &a { x.add(*v).unwrap(); }
        for v in &b { y.add(*v).unwrap(); }
        let mut via_merge = x.clone();
        via_merge.merge(&QuantileSketch::from_bytes(&y.to_bytes()).unwrap()).unwrap();
        let mut via_bytes = x.clone();
        let mut scratch = Vec::new();
        via_bytes.merge_bytes(&y.to_bytes(), &mut scratch).unwrap();
        prop_assert_eq!(via_bytes.to_bytes(), via_merge.to_bytes());
    }
}

#[test]
fn merge_bytes_refuses_what_from_bytes_refuses() {
    let mut s = QuantileSketch::default();
    s.add(1.0).unwrap();
    let before = s.to_bytes();
    let mut scratch = Vec::new();
    assert!(s.merge_bytes(b"LHQS\x09", &mut scratch).is_err());
    assert!(s
        .merge_bytes(&QuantileSketch::new(0.02, 2048).unwrap().to_bytes(), &mut scratch)
        .is_err());
    assert_eq!(s.to_bytes(), before, "a refused merge leaves the summary unchanged");
}

//! The summary's promises, checked: quantiles within the declared relative error of the exact order
//! statistic on skewed data, merges equal to one summary over all values, the format round-trips,
//! and the decoder survives any bytes.

use llmhub_sketch::{
    AddError, FormatError, Mapping, MergeError, QuantileSketch, DEFAULT_ALPHA, DEFAULT_MAX_BUCKETS, MIN_ALPHA,
};
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
    assert_eq!(&b[..5], b"LHQS\x02");
    let mut v3 = b.clone();
    v3[4] = 3;
    assert_eq!(QuantileSketch::from_bytes(&v3), Err(FormatError::Version(3)));
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
    fn ranks_are_exact_shares_of_a_value_within_the_bound(vs in values(), scales in prop::collection::vec(0.9f64..1.1, 1..4)) {
        prop_assume!(!vs.is_empty());
        // The default bucket budget: over these values' 21 decades, 256 buckets would collapse to
        // a bound too loose to tell a wrong rank.
        let mut s = QuantileSketch::default();
        for &v in &vs {
            s.add(v).unwrap();
        }
        let share = |y: f64| vs.iter().filter(|&&v| v <= y).count() as f64 / vs.len() as f64;
        let e = s.error_bound() * (1.0 + 1e-9);
        // Values below MIN_POSITIVE are read as 0: the bound counts them as such.
        let tiny = vs.iter().filter(|&&v| v < llmhub_sketch::MIN_POSITIVE).count() as f64 / vs.len() as f64;
        // At every value and just off it, where a rank is most sensitive.
        for &v in &vs {
            for x in std::iter::once(v).chain(scales.iter().map(|k| v * k)) {
                let got = s.rank(x).unwrap();
                let (lo, hi) = (share(x / (1.0 + e)), share(x / (1.0 - e)));
                prop_assert!(got >= lo - tiny - 1e-12 && got <= hi + tiny + 1e-12, "x {} rank {} not in [{}, {}]", x, got, lo, hi);
                if x < s.min().unwrap() {
                    prop_assert_eq!(got, 0.0);
                }
                if x >= s.max().unwrap() {
                    prop_assert_eq!(got, 1.0);
                }
            }
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

#[test]
fn binary_buckets_worked_example() {
    // α = 0.5% needs m = 7 mantissa bits: 1/(2⁸ + 1) = 0.389% ≤ 0.5%, while m = 6 gives 0.775%.
    let mut s = QuantileSketch::default();
    assert_eq!(s.mapping(), Mapping::Binary);
    assert_eq!(s.error_bound(), 1.0 / 257.0);
    // 1.0 is 0x3FF0_0000_0000_0000: exponent 1023, mantissa 0, so bucket 1023·128 = 130944,
    // [1, 1 + 1/128). 1.5 has the mantissa's top bit set: 64 buckets further. 1.0078125 = 1 + 1/128
    // opens the next bucket, and 1.0078 stays in the first.
    for v in [1.0, 1.5, 1.0078125, 1.0078] {
        s.add(v).unwrap();
    }
    assert_eq!(
        s.buckets().collect::<Vec<_>>(),
        vec![(130_944, 2), (130_945, 1), (131_008, 1)]
    );
    // The first bucket's representative is 2·1·(129/128)/(1 + 129/128) = 258/257.
    assert_eq!(s.quantile(0.2), Some(258.0 / 257.0));
    // Requested accuracies map to mantissa bits: 1% → m = 6, 0.1% → m = 9 (1/1025).
    assert_eq!(QuantileSketch::new(0.01, 256).unwrap().error_bound(), 1.0 / 129.0);
    assert_eq!(QuantileSketch::new(0.001, 256).unwrap().error_bound(), 1.0 / 1025.0);
    assert!(matches!(
        QuantileSketch::new(MIN_ALPHA / 2.0, 256),
        Err(llmhub_sketch::ParamError::Alpha(_))
    ));
}

#[test]
fn a_binary_collapse_drops_one_mantissa_bit() {
    // 16 buckets at m = 7 cover an eighth of an octave; [1, 4) needs 256 at m = 7, so the summary
    // collapses to m = 3 (8 per octave, 16 over two octaves) and its bound becomes 1/(2⁴ + 1).
    let mut s = QuantileSketch::new(DEFAULT_ALPHA, 16).unwrap();
    for v in [1.0, 1.1, 2.0, 3.9] {
        s.add(v).unwrap();
    }
    assert_eq!(s.collapses(), 4);
    assert_eq!(s.error_bound(), 1.0 / 17.0);
    // At m = 3 the index is bits >> 49: 1.0 → 1023·8, 1.1 → same bucket (1.1 < 1.125), 2.0 → 1024·8,
    // 3.9 → 1024·8 + 7.
    assert_eq!(s.buckets().collect::<Vec<_>>(), vec![(8184, 2), (8192, 1), (8199, 1)]);
    // The same summary from a sketch that never needed to collapse, collapsed on merge.
    let mut wide = QuantileSketch::new(DEFAULT_ALPHA, 16).unwrap();
    wide.add(1.0).unwrap();
    let mut other = QuantileSketch::new(DEFAULT_ALPHA, 16).unwrap();
    for v in [1.1, 2.0, 3.9] {
        other.add(v).unwrap();
    }
    wide.merge(&other).unwrap();
    assert_eq!(wide.buckets().collect::<Vec<_>>(), s.buckets().collect::<Vec<_>>());
}

/// A format-1 summary written by the code before binary buckets existed (commit 2ede928), of
/// 0, 0.05, 0.2, 0.8, 0.8, 1.5, 3 and 12 at α = 0.5% and 2048 buckets.
const GOLDEN_V1: &str = "4c485153010000007b14ae47e17a743f00080000080000000000000001000000000000009a999999995932400000000000000000000000000000284006000000d504019602019402027e018a0101960201";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|k| u8::from_str_radix(&s[k..k + 2], 16).unwrap())
        .collect()
}

#[test]
fn format_1_summaries_are_still_read_merged_and_written_unchanged() {
    let bytes = unhex(GOLDEN_V1);
    let old = QuantileSketch::from_bytes(&bytes).unwrap();
    assert_eq!(old.mapping(), Mapping::Logarithmic);
    assert_eq!(
        (old.alpha(), old.max_buckets(), old.count(), old.zero_count()),
        (0.005, 2048, 8, 1)
    );
    assert!((old.error_bound() - 0.005).abs() < 1e-15);
    // The estimates the old code gave, to the bit.
    for (q, want) in [
        (0.0, 0.0),
        (0.25, 0.05003475280648612),
        (0.5, 0.7985047400240116),
        (0.75, 1.4992888188254971),
        (0.9, 2.9891725948608525),
        (1.0, 12.0),
    ] {
        assert_eq!(old.quantile(q), Some(want), "q = {q}");
    }
    assert_eq!(old.to_bytes(), bytes, "written back as format 1, byte for byte");
    // Two format-1 summaries merge; adding to one keeps its mapping.
    let mut twice = old.clone();
    twice.merge(&old).unwrap();
    twice.add(0.8).unwrap();
    assert_eq!(twice.count(), 17);
    assert_eq!(twice.to_bytes()[4], 1);
    // A format-1 summary and a format-2 one do not merge, either way round, and say why.
    let mut new = QuantileSketch::default();
    new.add(1.0).unwrap();
    let err = new.clone().merge(&old).unwrap_err();
    assert_eq!(err, MergeError::Mapping(Mapping::Binary, Mapping::Logarithmic));
    assert!(err.to_string().contains("format 1"), "{err}");
    assert!(new.merge_bytes(&bytes, &mut Vec::new()).is_err());
    assert!(old.clone().merge(&new).is_err());
}

#[test]
fn logarithmic_buckets_keep_their_bound() {
    let mut r = Rng(11);
    let values: Vec<f64> = (0..100_000).map(|_| r.lognormal(-0.2, 0.9)).collect();
    let mut s = QuantileSketch::with_mapping(Mapping::Logarithmic, DEFAULT_ALPHA, 2048).unwrap();
    for &v in &values {
        s.add(v).unwrap();
    }
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    for q in [0.01, 0.5, 0.95, 0.99] {
        let (want, got) = (exact(&sorted, q), s.quantile(q).unwrap());
        assert!(
            (got - want).abs() / want <= DEFAULT_ALPHA * (1.0 + 1e-9),
            "q={q}: {got} vs {want}"
        );
    }
    let back = QuantileSketch::from_bytes(&s.to_bytes()).unwrap();
    assert_eq!(back, s);
}

//! The math helpers against table values (normal and Student-t quantiles computed to 20 digits
//! with mpmath for the exact binary value of each `p`), and their symmetries and orderings as
//! properties.
// Reference values keep the digits of the reference computation, beyond what an f64 holds.
#![allow(clippy::excessive_precision)]

use llmhub_analytics::{mad, median, normal_quantile, student_t_quantile};
use proptest::prelude::*;

#[test]
fn normal_quantile_table() {
    let table = [
        (0.5, 0.0),
        (0.6, 0.253_347_103_135_799_74),
        (0.9, 1.281_551_565_544_600_5),
        (0.95, 1.644_853_626_951_472_3),
        (0.975, 1.959_963_984_540_053_9),
        (0.999, 3.090_232_306_167_813_3),
        (0.999_999, 4.753_424_308_817_088),
        (0.3, -0.524_400_512_708_040_8),
        (0.024_25, -1.972_961_051_311_884_9),
        (1e-10, -6.361_340_902_404_056),
        (1e-20, -9.262_340_089_798_408),
        (1e-300, -37.047_096_299_361_2),
    ];
    for (p, z) in table {
        let got = normal_quantile(p).unwrap();
        assert!((got - z).abs() <= 1e-14 * z.abs().max(1.0), "p = {p}: {got} vs {z}");
    }
}

#[test]
fn student_t_quantile_table() {
    let table = [
        (0.975, 1.0, 12.706_204_736_174_705),
        (0.975, 5.0, 2.570_581_835_636_315_5),
        (0.975, 30.0, 2.042_272_456_301_238),
        (0.975, 3.0, 3.182_446_305_283_709_6),
        (0.995, 10.0, 3.169_272_672_616_951),
        (0.95, 2.0, 2.919_985_580_353_725_7),
        (0.9, 4.0, 1.533_206_274_058_944),
        (0.999, 7.0, 4.785_289_628_638_334),
        (0.6, 3.5, 0.273_265_454_055_779_7),
        (0.975, 0.5, 164.557_673_480_488_53),
        (0.975, 1000.0, 1.962_339_080_826_408_5),
        (0.99, 100.0, 2.364_217_366_238_482),
        (0.975, 50_000.0, 1.960_011_431_093_680_1),
        (0.975, 200_000.0, 1.959_975_845_966_768_5),
        (1e-12, 3.0, -10_331.108_244_292_486),
        (1e-8, 10.0, -15.895_687_652_513_545),
        (1.0 - 1e-6, 0.3, 3.007_185_808_790_974e18),
    ];
    for (p, dof, t) in table {
        let got = student_t_quantile(p, dof).unwrap();
        assert!(
            (got - t).abs() <= 1e-10 * t.abs().max(1.0),
            "p = {p}, dof = {dof}: {got} vs {t}"
        );
    }
    // The three values of the brief, to 7 decimals.
    assert_eq!((student_t_quantile(0.975, 1.0).unwrap() * 1e7).round(), 127_062_047.0);
    assert_eq!((student_t_quantile(0.975, 5.0).unwrap() * 1e7).round(), 25_705_818.0);
    assert_eq!((student_t_quantile(0.975, 30.0).unwrap() * 1e7).round(), 20_422_725.0);
}

#[test]
fn helpers_refuse_bad_arguments() {
    for p in [0.0, 1.0, -0.5, f64::NAN, f64::INFINITY] {
        assert_eq!(normal_quantile(p).unwrap_err().argument(), "p");
        assert_eq!(student_t_quantile(p, 3.0).unwrap_err().argument(), "p");
    }
    for dof in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(student_t_quantile(0.9, dof).unwrap_err().argument(), "dof");
    }
    assert_eq!(median(&[]).unwrap_err().argument(), "values");
    assert_eq!(mad(&[f64::NAN, f64::INFINITY]).unwrap_err().argument(), "values");
}

proptest! {
    #[test]
    fn normal_quantile_is_odd_and_increasing(p in 1e-6f64..0.5, dp in 1e-9f64..0.4) {
        let lower = normal_quantile(p).unwrap();
        let upper = normal_quantile(1.0 - p).unwrap();
        prop_assert!((lower + upper).abs() < 1e-9, "{lower} {upper}");
        prop_assert!(normal_quantile(p + dp).unwrap() > lower);
    }

    #[test]
    fn t_quantile_is_odd_increasing_and_heavier_tailed_than_normal(
        p in 1e-6f64..0.5,
        dp in 1e-6f64..0.4,
        dof in 0.2f64..500.0,
    ) {
        let lower = student_t_quantile(p, dof).unwrap();
        let upper = student_t_quantile(1.0 - p, dof).unwrap();
        prop_assert!((lower + upper).abs() <= 1e-9 * upper.abs().max(1.0), "{lower} {upper}");
        prop_assert!(student_t_quantile(p + dp, dof).unwrap() > lower);
        // Fatter tails: |t| >= |z|, and fewer degrees of freedom give wider quantiles.
        let z = normal_quantile(1.0 - p).unwrap();
        prop_assert!(upper >= z * (1.0 - 1e-12));
        prop_assert!(student_t_quantile(1.0 - p, dof + 1.0).unwrap() <= upper * (1.0 + 1e-12));
    }

    #[test]
    fn t_quantile_tends_to_the_normal(p in 0.001f64..0.999) {
        let z = normal_quantile(p).unwrap();
        prop_assert!((student_t_quantile(p, 1e7).unwrap() - z).abs() < 1e-6);
    }

    #[test]
    fn median_and_mad_are_equivariant(
        values in prop::collection::vec(-1e3f64..1e3, 1..50),
        factor in 0.01f64..100.0,
        offset in -1e3f64..1e3,
    ) {
        let m = median(&values).unwrap();
        let d = mad(&values).unwrap();
        let moved: Vec<f64> = values.iter().map(|v| v * factor + offset).collect();
        prop_assert!((median(&moved).unwrap() - (m * factor + offset)).abs() < 1e-9 * (1.0 + m.abs() * factor + offset.abs()));
        prop_assert!((mad(&moved).unwrap() - d * factor).abs() < 1e-9 * (1.0 + m.abs() * factor + offset.abs()));
        // At least half the values on each side of the median.
        let below = values.iter().filter(|&&v| v <= m).count();
        let above = values.iter().filter(|&&v| v >= m).count();
        prop_assert!(2 * below >= values.len() && 2 * above >= values.len());
    }
}

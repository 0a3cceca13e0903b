//! Quantiles of the normal and Student-t distributions, for prediction intervals.
//!
//! The normal quantile is Wichura's algorithm AS 241 (PPND16, Applied Statistics 37, 1988), a
//! rational approximation accurate to about 1e-16. The Student-t quantile inverts the t CDF,
//! written with the regularized incomplete beta function (evaluated by its continued fraction),
//! by Newton steps on `ln(tail)` against `ln t` kept inside a bisection bracket; it has closed
//! forms for 1 and 2 degrees of freedom and uses the Cornish–Fisher expansion (Abramowitz and
//! Stegun 26.7.5) beyond 100 000 degrees of freedom. Accuracy is better than 1e-10 relative
//! (tests check table values to that).

use crate::error::check;
use crate::AnalyticsError;

/// The quantile function of the standard normal distribution: the `z` with `P(Z ≤ z) = p`.
///
/// `p` must be strictly between 0 and 1 (NaN refused); the error names `p`.
///
/// ```
/// let z = llmhub_analytics::normal_quantile(0.975).unwrap();
/// assert!((z - 1.959963984540054).abs() < 1e-12);
/// ```
pub fn normal_quantile(p: f64) -> Result<f64, AnalyticsError> {
    let p = check::open_unit("p", p, "0.975")?;
    Ok(ppnd16(p))
}

/// The `z > 0` with `P(Z > z) = q`, for `0 < q <= 0.5` (0 at 0.5); no rounding of `1 − q`, so
/// confidence levels within 1e-17 of 1 still work.
pub(crate) fn normal_upper_quantile(q: f64) -> f64 {
    -ppnd16(q)
}

/// The quantile function of Student's t distribution with `dof` degrees of freedom: the `t` with
/// `P(T ≤ t) = p`.
///
/// `p` must be strictly between 0 and 1 and `dof` a positive finite number (fractional degrees
/// of freedom are accepted); errors name the argument. Quantiles beyond the range of `f64` (only
/// for `dof` well below 1 and `p` within 1e-300 of 0 or 1) saturate to ±infinity.
///
/// ```
/// let t = llmhub_analytics::student_t_quantile(0.975, 5.0).unwrap();
/// assert!((t - 2.5705818).abs() < 1e-6);
/// ```
pub fn student_t_quantile(p: f64, dof: f64) -> Result<f64, AnalyticsError> {
    let p = check::open_unit("p", p, "0.975")?;
    let dof = check::positive_finite("dof", dof)?;
    if p == 0.5 {
        return Ok(0.0);
    }
    // Solve for the upper tail probability q = min(p, 1 - p) with t > 0, then restore the sign.
    let (q, sign) = if p < 0.5 { (p, -1.0) } else { (1.0 - p, 1.0) };
    Ok(sign * t_upper_quantile(q, dof))
}

/// Wichura's AS 241 for `0 < p < 1`.
fn ppnd16(p: f64) -> f64 {
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q * poly(&as241::CENTRAL_NUM, r) / poly(&as241::CENTRAL_DEN, r);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let r = (-tail.ln()).sqrt();
    let z = if r <= 5.0 {
        let r = r - 1.6;
        poly(&as241::NEAR_NUM, r) / poly(&as241::NEAR_DEN, r)
    } else {
        let r = r - 5.0;
        poly(&as241::FAR_NUM, r) / poly(&as241::FAR_DEN, r)
    };
    if q < 0.0 {
        -z
    } else {
        z
    }
}

/// Horner evaluation of `c[0] + c[1] x + … + c[n] xⁿ`.
fn poly(coefficients: &[f64], x: f64) -> f64 {
    coefficients.iter().rev().fold(0.0, |acc, c| acc * x + c)
}

/// The coefficients of AS 241, with the digits as published so they can be checked against the
/// paper (more than an `f64` holds).
#[allow(clippy::excessive_precision)]
mod as241 {
    // AS 241 coefficients, |q| <= 0.425.
    pub(super) const CENTRAL_NUM: [f64; 8] = [
        3.387_132_872_796_366_608,
        1.331_416_678_917_843_774_5e2,
        1.971_590_950_306_551_442_7e3,
        1.373_169_376_550_946_112_5e4,
        4.592_195_393_154_987_145_7e4,
        6.726_577_092_700_870_085_3e4,
        3.343_057_558_358_812_810_5e4,
        2.509_080_928_730_122_672_7e3,
    ];
    pub(super) const CENTRAL_DEN: [f64; 8] = [
        1.0,
        4.231_333_070_160_091_125_2e1,
        6.871_870_074_920_579_083e2,
        5.394_196_021_424_751_107_7e3,
        2.121_379_430_158_659_586_7e4,
        3.930_789_580_009_271_061e4,
        2.872_908_573_572_194_267_4e4,
        5.226_495_278_852_854_561e3,
    ];
    // sqrt(-ln(tail)) <= 5.
    pub(super) const NEAR_NUM: [f64; 8] = [
        1.423_437_110_749_683_577_34,
        4.630_337_846_156_545_295_9,
        5.769_497_221_460_691_405_5,
        3.647_848_324_763_204_605_04,
        1.270_458_252_452_368_382_58,
        2.417_807_251_774_506_117_7e-1,
        2.272_384_498_926_918_458_33e-2,
        7.745_450_142_783_414_076_4e-4,
    ];
    pub(super) const NEAR_DEN: [f64; 8] = [
        1.0,
        2.053_191_626_637_758_821_87,
        1.676_384_830_183_803_849_4,
        6.897_673_349_851_000_045_5e-1,
        1.481_039_764_274_800_745_9e-1,
        1.519_866_656_361_645_719_66e-2,
        5.475_938_084_995_344_946e-4,
        1.050_750_071_644_416_843_24e-9,
    ];
    // sqrt(-ln(tail)) > 5.
    pub(super) const FAR_NUM: [f64; 8] = [
        6.657_904_643_501_103_777_2,
        5.463_784_911_164_114_369_9,
        1.784_826_539_917_291_335_8,
        2.965_605_718_285_048_912_3e-1,
        2.653_218_952_657_612_309_3e-2,
        1.242_660_947_388_078_438_6e-3,
        2.711_555_568_743_487_578_15e-5,
        2.010_334_399_292_288_132_65e-7,
    ];
    pub(super) const FAR_DEN: [f64; 8] = [
        1.0,
        5.998_322_065_558_879_376_9e-1,
        1.369_298_809_227_358_053_1e-1,
        1.487_536_129_085_061_485_25e-2,
        7.868_691_311_456_132_591e-4,
        1.846_318_317_510_054_681_8e-5,
        1.421_511_758_316_445_888_7e-7,
        2.044_263_103_389_939_785_64e-15,
    ];
}

/// The `t > 0` with `P(T > t) = q`, for `0 < q <= 0.5` (0 at 0.5) and `dof > 0`.
pub(crate) fn t_upper_quantile(q: f64, dof: f64) -> f64 {
    if q >= 0.5 {
        return 0.0;
    }
    if dof == 1.0 {
        // Cauchy: P(T > t) = 1/2 − atan(t)/π.
        return 1.0 / (std::f64::consts::PI * q).tan();
    }
    if dof == 2.0 {
        // P(T > t) = (1 − t/√(2 + t²)) / 2.
        return (1.0 - 2.0 * q) / (2.0 * q * (1.0 - q)).sqrt();
    }
    let z = -ppnd16(q);
    let cornish_fisher = cornish_fisher(z, dof);
    if dof >= 1e5 {
        return cornish_fisher;
    }

    // Bracket the root in t, starting from the Cornish–Fisher guess (poor for small dof).
    let guess = if cornish_fisher.is_finite() && cornish_fisher > 0.0 {
        cornish_fisher
    } else {
        1.0
    };
    let ln_q = q.ln();
    let f = |t: f64| t_upper_tail(t, dof).ln() - ln_q; // decreasing in t
    let (mut lo, mut hi) = (guess, guess);
    while f(lo) < 0.0 {
        lo /= 2.0;
        if lo < f64::MIN_POSITIVE {
            return 0.0;
        }
    }
    while f(hi) > 0.0 {
        hi *= 2.0;
        if !hi.is_finite() {
            return f64::INFINITY;
        }
    }

    // Newton on u = ln t, where ln(tail) is close to linear both near 0 and in the tails; fall
    // back to bisection (geometric mean) whenever a step leaves the bracket.
    let mut t = guess.clamp(lo, hi);
    for _ in 0..200 {
        let value = f(t);
        if value == 0.0 {
            return t;
        }
        if value > 0.0 {
            lo = t;
        } else {
            hi = t;
        }
        // d ln(tail) / d ln t = −t · pdf(t) / tail(t).
        let slope = -t * t_density(t, dof) / t_upper_tail(t, dof);
        let newton = t * (-value / slope).exp();
        let next = if newton.is_finite() && newton > lo && newton < hi {
            newton
        } else {
            (lo * hi).sqrt()
        };
        if (next - t).abs() <= 1e-15 * t || hi - lo <= 1e-15 * hi {
            return next;
        }
        t = next;
    }
    t
}

/// Abramowitz and Stegun 26.7.5: t ≈ z + g₁/ν + g₂/ν² + g₃/ν³ + g₄/ν⁴.
fn cornish_fisher(z: f64, dof: f64) -> f64 {
    let z2 = z * z;
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
    z + (g1 + (g2 + (g3 + g4 / dof) / dof) / dof) / dof
}

/// `P(T > t)` for `t >= 0`: `I_x(ν/2, 1/2) / 2` with `x = ν / (ν + t²)`.
fn t_upper_tail(t: f64, dof: f64) -> f64 {
    let t2 = t * t;
    // x and 1 − x computed separately, so neither loses precision to cancellation.
    let (x, y) = if t2.is_finite() {
        (dof / (dof + t2), t2 / (dof + t2))
    } else {
        (0.0, 1.0)
    };
    0.5 * regularized_incomplete_beta(dof / 2.0, 0.5, x, y)
}

/// The Student-t density.
fn t_density(t: f64, dof: f64) -> f64 {
    let ln_norm = ln_gamma((dof + 1.0) / 2.0) - ln_gamma(dof / 2.0) - 0.5 * (dof * std::f64::consts::PI).ln();
    (ln_norm - (dof + 1.0) / 2.0 * (t * t / dof).ln_1p()).exp()
}

/// `I_x(a, b)` for `a, b > 0`, `0 <= x <= 1`, given `y = 1 − x` computed without cancellation.
fn regularized_incomplete_beta(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    // The continued fraction converges quickly for x < (a + 1) / (a + b + 2); use the symmetry
    // I_x(a, b) = 1 − I_{1−x}(b, a) on the other side.
    if x * (a + b + 2.0) < a + 1.0 {
        beta_front(a, b, x, y) * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - beta_front(b, a, y, x) * beta_continued_fraction(b, a, y) / b
    }
}

/// `xᵃ (1 − x)ᵇ / B(a, b)`.
fn beta_front(a: f64, b: f64, x: f64, y: f64) -> f64 {
    (a * x.ln() + b * y.ln() + ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b)).exp()
}

/// The continued fraction 1 / (1 + d₁ / (1 + d₂ / (1 + …))) of the incomplete beta function, with
/// d₂ₘ₊₁ = −(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)) and d₂ₘ = m (b − m) x / ((a + 2m − 1)(a + 2m)),
/// evaluated forward by the modified Lentz method.
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-16;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    // Term d₁ (m = 0, odd).
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
    let mut result = d;
    for m in 1..100_000 {
        let m = f64::from(m);
        let two_m = 2.0 * m;
        let even = m * (b - m) * x / ((a + two_m - 1.0) * (a + two_m));
        d = 1.0 / guard(1.0 + even * d);
        c = guard(1.0 + even / c);
        result *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + two_m) * (a + two_m + 1.0));
        d = 1.0 / guard(1.0 + odd * d);
        c = guard(1.0 + odd / c);
        let delta = d * c;
        result *= delta;
        if (delta - 1.0).abs() < EPS {
            break;
        }
    }
    result
}

/// `ln Γ(x)` for `x > 0`: the Lanczos approximation (g = 7, 9 terms), with the reflection
/// formula below 1/2.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    // The widely published g = 7, n = 9 coefficient set, digits as published.
    #[allow(clippy::excessive_precision)]
    const LANCZOS: [f64; 9] = [
        0.999_999_999_999_809_93,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_13,
        -176.615_029_162_140_59,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_571_6e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Γ(x) Γ(1 − x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = LANCZOS[0];
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-14);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
        assert!((ln_gamma(10.0) - 362_880f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.1) - 2.252_712_651_734_206).abs() < 1e-12);
    }

    #[test]
    fn incomplete_beta_known_values() {
        // I_x(1, 1) = x; I_x(a, 1) = xᵃ; I_{1/2}(a, a) = 1/2.
        assert!((regularized_incomplete_beta(1.0, 1.0, 0.3, 0.7) - 0.3).abs() < 1e-14);
        assert!((regularized_incomplete_beta(2.5, 1.0, 0.6, 0.4) - 0.6f64.powf(2.5)).abs() < 1e-14);
        assert!((regularized_incomplete_beta(7.0, 7.0, 0.5, 0.5) - 0.5).abs() < 1e-14);
    }

    #[test]
    fn t_tail_against_closed_forms() {
        for t in [0.1, 1.0, 3.0, 50.0] {
            let cauchy = 0.5 - f64::atan(t) / std::f64::consts::PI;
            assert!(
                (t_upper_tail(t, 1.0) - cauchy).abs() < 1e-14 * cauchy.max(1e-3),
                "t = {t}"
            );
            let two = 0.5 * (1.0 - t / (2.0 + t * t).sqrt());
            assert!((t_upper_tail(t, 2.0) - two).abs() < 1e-13 * two.max(1e-3), "t = {t}");
        }
    }
}

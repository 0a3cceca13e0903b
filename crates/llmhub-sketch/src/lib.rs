//! A mergeable quantile summary with a guaranteed relative error: the UDDSketch of Epicoco et al.
//! (DDSketch's relative-error buckets, collapsed uniformly when the bucket range is full).
//!
//! Every value of a bucket `[L, U)` is within relative error `(U − L) / (U + L)` of the bucket's
//! representative `2LU / (L + U)`, so a quantile read from the buckets is within that bound of the
//! true order statistic. Two bucket mappings exist ([`Mapping`]):
//!
//! - **Binary** (format version 2, what [`QuantileSketch::new`] builds): a positive value's bucket is
//!   its IEEE-754 bits shifted right, `bits(x) >> (52 − m)`: the exponent and the top `m` mantissa
//!   bits, so each octave `[2^e, 2^(e+1))` holds `2^m` equal-width buckets. The widest bucket
//!   relative to its values is the first of an octave, `U / L = 1 + 2^−m`, so the bound is
//!   `1 / (2^(m+1) + 1)`; `m` is the smallest that meets the requested `α` (0.389% for α = 0.5%).
//!   No logarithm is taken: adding a value is a shift, which is what makes the SQL aggregate cheap.
//! - **Logarithmic** (format version 1, still read, merged and extended): bucket `ceil(log_γ x)` with
//!   `γ = (1 + α) / (1 − α)`, bound `α`.
//!
//! When the buckets would span more than `max_buckets` indexes, adjacent pairs are merged for all
//! buckets at once (binary: one mantissa bit fewer, `i → ⌊i/2⌋`; logarithmic: `γ` becomes `γ²`,
//! `i → ⌈i/2⌉`): the guarantee degrades uniformly instead of failing at the tails. Two summaries of
//! the same mapping merge exactly (bucket counts add), after bringing the finer one to the coarser
//! one's collapse level, so merging hourly summaries gives the same buckets as one summary over all
//! the rows.
//!
//! Values: zero and positive values below [`MIN_POSITIVE`] count in a zero bucket (read back as 0);
//! NaN, infinities and negative values are not values a latency or a token count can take, and
//! [`QuantileSketch::add`] refuses them ([`AddError`]) so callers decide (the SQL aggregate skips
//! them, as documented there).
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod fastlog;
mod format;

pub use format::{FormatError, MergeBytesError, FORMAT_VERSION, MAGIC};

/// How a summary's buckets divide the values (see the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// `ceil(log_γ x)`: format version 1.
    Logarithmic,
    /// The value's exponent and top mantissa bits: format version 2.
    Binary,
}

impl std::fmt::Display for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mapping::Logarithmic => "logarithmic buckets (format 1)",
            Mapping::Binary => "binary buckets (format 2)",
        })
    }
}

/// Values below this (and zero) count as 0.
pub const MIN_POSITIVE: f64 = 1e-9;
/// `bits(f64::MAX) − bits(MIN_POSITIVE)`: the values from MIN_POSITIVE to f64::MAX, as bits.
const FINITE_SPAN: u64 = f64::MAX.to_bits() - MIN_POSITIVE.to_bits();
/// Default requested relative accuracy: 0.5% (binary buckets meet it with 0.389%, and one collapse
/// still keeps quantiles within 1%: 0.775%).
pub const DEFAULT_ALPHA: f64 = 0.005;
/// Default bucket range: 4096 binary buckets at 128 per octave span 32 octaves (about 9.6 decades)
/// before the first collapse.
pub const DEFAULT_MAX_BUCKETS: u32 = 4096;
/// The smallest accuracy a binary summary can be asked for: `m` = 19 mantissa bits, so that bucket
/// indexes stay below 2³¹.
pub const MIN_ALPHA: f64 = 1e-6;
/// Binary buckets: the shift never exceeds this (at 60 the whole finite range is 8 indexes, fewer
/// than the smallest `max_buckets`, so no further collapse is ever needed).
pub(crate) const MAX_SHIFT: u32 = 60;

/// A value the summary cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum AddError {
    /// NaN or ±infinity.
    #[error("value {0} is not finite")]
    NotFinite(f64),
    /// Below zero.
    #[error("value {0} is negative")]
    Negative(f64),
}

/// Summaries that cannot be merged.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum MergeError {
    /// Built with different accuracies or bucket ranges.
    #[error("summaries with different parameters cannot be merged (alpha {0} vs {1}, max_buckets {2} vs {3})")]
    Parameters(f64, f64, u32, u32),
    /// Built with different bucket mappings (format versions).
    #[error("summaries with {0} and {1} cannot be merged; rebuild the older ones from their rows")]
    Mapping(Mapping, Mapping),
}

/// Bad construction parameters.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// α outside [1e-6, 0.5) (binary) or (0, 0.5) (logarithmic).
    #[error("relative accuracy must be in [1e-6, 0.5), got {0}")]
    Alpha(f64),
    /// max_buckets outside [16, 65536].
    #[error("max_buckets must be in 16..=65536, got {0}")]
    MaxBuckets(u32),
}

/// The summary. Two summaries are equal when their parameters, collapse level, count, zero count,
/// sum, minimum, maximum and non-empty buckets are equal (the in-memory layout does not matter).
#[derive(Debug, Clone)]
pub struct QuantileSketch {
    mapping: Mapping,
    alpha: f64,
    max_buckets: u32,
    collapses: u8,
    /// Binary: mantissa bits before any collapse.
    bits: u8,
    /// Binary: `52 − bits + collapses`, what a value's bits are shifted right by.
    shift: u32,
    /// Logarithmic: 1 / ln(γ) at the current collapse level.
    inv_ln_gamma: f64,
    count: u64,
    zero_count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// Index of `counts[0]`.
    offset: i32,
    /// Dense counts from `offset` on; empty when no positive value was added.
    counts: Vec<u64>,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        QuantileSketch::new(DEFAULT_ALPHA, DEFAULT_MAX_BUCKETS).unwrap_or_else(|_| unreachable!("defaults are valid"))
    }
}

fn gamma(alpha: f64, collapses: u8) -> f64 {
    let mut g = (1.0 + alpha) / (1.0 - alpha);
    for _ in 0..collapses {
        g *= g;
    }
    g
}

/// The fewest mantissa bits whose buckets meet `alpha`: `1 / (2^(m+1) + 1) ≤ alpha`.
fn mantissa_bits(alpha: f64) -> u8 {
    (0u8..=19)
        .find(|&m| 1.0 / (f64::from(1u32 << (m + 1)) + 1.0) <= alpha)
        .unwrap_or(19)
}

impl QuantileSketch {
    /// An empty summary (binary buckets) with relative error at most `alpha` and at most
    /// `max_buckets` bucket indexes.
    pub fn new(alpha: f64, max_buckets: u32) -> Result<QuantileSketch, ParamError> {
        if !(MIN_ALPHA..0.5).contains(&alpha) {
            return Err(ParamError::Alpha(alpha));
        }
        QuantileSketch::with_mapping(Mapping::Binary, alpha, max_buckets)
    }

    /// An empty summary of the given mapping (logarithmic ones are what format 1 holds).
    pub fn with_mapping(mapping: Mapping, alpha: f64, max_buckets: u32) -> Result<QuantileSketch, ParamError> {
        let alpha_ok = match mapping {
            Mapping::Binary => (MIN_ALPHA..0.5).contains(&alpha),
            Mapping::Logarithmic => alpha > 0.0 && alpha < 0.5,
        };
        if !alpha_ok {
            return Err(ParamError::Alpha(alpha));
        }
        if !(16..=65_536).contains(&max_buckets) {
            return Err(ParamError::MaxBuckets(max_buckets));
        }
        let bits = mantissa_bits(alpha);
        Ok(QuantileSketch {
            mapping,
            alpha,
            max_buckets,
            collapses: 0,
            bits,
            shift: 52 - u32::from(bits),
            inv_ln_gamma: 1.0 / gamma(alpha, 0).ln(),
            count: 0,
            zero_count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            offset: 0,
            counts: Vec::new(),
        })
    }

    /// Its bucket mapping.
    pub fn mapping(&self) -> Mapping {
        self.mapping
    }

    /// The accuracy it was built with.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The bucket range it was built with.
    pub fn max_buckets(&self) -> u32 {
        self.max_buckets
    }

    /// How many times the buckets were collapsed.
    pub fn collapses(&self) -> u8 {
        self.collapses
    }

    /// The relative error bound that holds now, `(r − 1) / (r + 1)` for the widest bucket ratio
    /// `r = U / L`. Binary: `r = 1 + 2^−(m−k)` after `k ≤ m` collapses (`2^(2^(k−m))` after more).
    /// Logarithmic: `r = γ^(2^k)`, which is α after no collapse.
    pub fn error_bound(&self) -> f64 {
        let r = match self.mapping {
            Mapping::Logarithmic => gamma(self.alpha, self.collapses),
            Mapping::Binary => {
                let (m, k) = (i32::from(self.bits), i32::from(self.collapses));
                if k <= m {
                    1.0 + 2f64.powi(k - m)
                } else {
                    2f64.powi(1 << (k - m).min(30))
                }
            }
        };
        if r.is_finite() {
            (r - 1.0) / (r + 1.0)
        } else {
            1.0
        }
    }

    /// Values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the values added.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Mean, or `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// Smallest value added, or `None` when empty.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest value added, or `None` when empty.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    #[inline]
    fn index(&self, x: f64) -> i32 {
        if self.mapping == Mapping::Binary {
            // x is finite and positive, so its bits are below 2⁶³; the shift is at least 33.
            return (x.to_bits() >> self.shift) as i32;
        }
        // x ≥ MIN_POSITIVE and finite, so the logarithm is finite and the index in i32 range.
        // The ceiling by hand: `f64::ceil` is a libm call on baseline x86-64 (no SSE4.1).
        let y = fastlog::ln(x) * self.inv_ln_gamma;
        let t = y as i32;
        if (t as f64) < y {
            t + 1
        } else {
            t
        }
    }

    /// The representative of bucket `index`, `2LU / (L + U)` (computed as a harmonic mean).
    fn value_of(&self, index: i32) -> f64 {
        match self.mapping {
            Mapping::Logarithmic => {
                let g = gamma(self.alpha, self.collapses);
                2.0 * g.powi(index) / (g + 1.0)
            }
            Mapping::Binary => {
                // Indexes are at most `bits(f64::MAX) >> shift`, so `(i + 1) << shift` stays below
                // 2⁶⁴; past the finite range it is the top bucket's open end.
                let at = |i: i64| -> f64 {
                    let bits = u64::try_from(i).unwrap_or(0) << self.shift;
                    if bits >= f64::INFINITY.to_bits() {
                        f64::INFINITY
                    } else {
                        f64::from_bits(bits)
                    }
                };
                let (lo, hi) = (at(i64::from(index)), at(i64::from(index) + 1));
                2.0 / (1.0 / lo + 1.0 / hi)
            }
        }
    }

    /// The index of bucket `i` after one collapse.
    #[inline]
    fn collapse_index(&self, i: i32) -> i32 {
        match self.mapping {
            Mapping::Binary => i >> 1,
            Mapping::Logarithmic => (i as i64 + 1).div_euclid(2) as i32,
        }
    }

    /// Adds one value.
    #[inline]
    pub fn add(&mut self, x: f64) -> Result<(), AddError> {
        // The common case in one comparison of the bits: a binary summary and a finite value of
        // at least MIN_POSITIVE (positive doubles order as their bits; the sign bit, infinities
        // and NaN all compare above f64::MAX's bits). Everything else takes the general path.
        let b = x.to_bits();
        if self.mapping == Mapping::Binary && b.wrapping_sub(MIN_POSITIVE.to_bits()) <= FINITE_SPAN {
            self.count = self.count.saturating_add(1);
            self.sum += x;
            if x < self.min {
                self.min = x;
            }
            if x > self.max {
                self.max = x;
            }
            self.bump((b >> self.shift) as i32, 1);
            return Ok(());
        }
        self.add_n(x, 1)
    }

    /// Adds a value `n` times.
    pub fn add_n(&mut self, x: f64, n: u64) -> Result<(), AddError> {
        if !x.is_finite() {
            return Err(AddError::NotFinite(x));
        }
        if x < 0.0 {
            return Err(AddError::Negative(x));
        }
        if n == 0 {
            return Ok(());
        }
        self.count = self.count.saturating_add(n);
        self.sum += x * n as f64;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        if x < MIN_POSITIVE {
            self.zero_count = self.zero_count.saturating_add(n);
            return Ok(());
        }
        let i = self.index(x);
        self.bump(i, n);
        Ok(())
    }

    /// Adds `n` to bucket `i` (at the current collapse level), growing or collapsing the range.
    #[inline]
    fn bump(&mut self, i: i32, n: u64) {
        // The common case, kept inline: a bucket inside the current range.
        let k = (i64::from(i) - i64::from(self.offset)) as u64;
        if let Some(c) = usize::try_from(k).ok().and_then(|k| self.counts.get_mut(k)) {
            *c = c.saturating_add(n);
            return;
        }
        self.bump_outside(i, n);
    }

    /// [`Self::bump`] for a bucket outside the current range: grows or collapses the range.
    #[cold]
    fn bump_outside(&mut self, mut i: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = i;
            self.counts.push(n);
            return;
        }
        loop {
            let lo = self.offset.min(i) as i64;
            let hi = (self.offset as i64 + self.counts.len() as i64 - 1).max(i as i64);
            if hi - lo < self.max_buckets as i64 {
                break;
            }
            self.collapse();
            i = self.collapse_index(i);
        }
        if i < self.offset {
            let grow = (self.offset - i) as usize;
            let mut v = vec![0u64; grow + self.counts.len()];
            v[grow..].copy_from_slice(&self.counts);
            self.counts = v;
            self.offset = i;
        } else if (i - self.offset) as usize >= self.counts.len() {
            self.counts.resize((i - self.offset) as usize + 1, 0);
        }
        let k = (i - self.offset) as usize;
        self.counts[k] = self.counts[k].saturating_add(n);
    }

    /// Merges adjacent bucket pairs (binary: one mantissa bit fewer; logarithmic: γ becomes γ²).
    fn collapse(&mut self) {
        self.collapses = self.collapses.saturating_add(1);
        self.inv_ln_gamma = 1.0 / gamma(self.alpha, self.collapses).ln();
        self.shift = (self.shift + 1).min(MAX_SHIFT);
        if self.counts.is_empty() {
            return;
        }
        let new_offset = self.collapse_index(self.offset);
        let last = self.collapse_index(self.offset + self.counts.len() as i32 - 1);
        let mut v = vec![0u64; (last - new_offset + 1) as usize];
        for (k, &c) in self.counts.iter().enumerate() {
            let j = self.collapse_index(self.offset + k as i32);
            let slot = (j - new_offset) as usize;
            v[slot] = v[slot].saturating_add(c);
        }
        self.offset = new_offset;
        self.counts = v;
    }

    /// Merges `other` into this summary.
    pub fn merge(&mut self, other: &QuantileSketch) -> Result<(), MergeError> {
        if self.mapping != other.mapping {
            return Err(MergeError::Mapping(self.mapping, other.mapping));
        }
        if self.alpha != other.alpha || self.max_buckets != other.max_buckets {
            return Err(MergeError::Parameters(
                self.alpha,
                other.alpha,
                self.max_buckets,
                other.max_buckets,
            ));
        }
        if other.count == 0 {
            return Ok(());
        }
        let mut other = std::borrow::Cow::Borrowed(other);
        while self.collapses < other.collapses {
            self.collapse();
        }
        while other.collapses < self.collapses {
            other.to_mut().collapse();
        }
        self.count = self.count.saturating_add(other.count);
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if !other.counts.is_empty() {
            // Adding the far ends first lets `bump` collapse at most once per needed level.
            let first = other.offset;
            let last = other.offset + other.counts.len() as i32 - 1;
            let mut order: Vec<(i32, u64)> = Vec::with_capacity(other.counts.len());
            order.push((first, other.counts[0]));
            if last != first {
                order.push((last, other.counts[other.counts.len() - 1]));
            }
            for (k, &c) in other
                .counts
                .iter()
                .enumerate()
                .skip(1)
                .take(other.counts.len().saturating_sub(2))
            {
                order.push((other.offset + k as i32, c));
            }
            let level = other.collapses;
            for (i, c) in order {
                if c == 0 {
                    continue;
                }
                // `bump` may collapse self further; bring the index along.
                let mut j = i;
                for _ in level..self.collapses {
                    j = self.collapse_index(j);
                }
                self.bump(j, c);
            }
        }
        Ok(())
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) of the values added, within [`QuantileSketch::error_bound`]
    /// relative error of the order statistic at rank `q·(count − 1)` rounded down; clamped to the
    /// exact minimum and maximum. `None` when empty or `q` is outside [0, 1] or NaN.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        if q == 0.0 {
            return Some(self.min);
        }
        if q == 1.0 {
            return Some(self.max);
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        if rank < self.zero_count {
            return Some(0.0f64.max(self.min));
        }
        let mut seen = self.zero_count;
        for (k, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen > rank {
                let v = self.value_of(self.offset + k as i32);
                return Some(v.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// The share of the values at or below `x` (the inverse of [`QuantileSketch::quantile`]):
    /// a bucket counts when its representative value is `<= x`, the zero bucket when `x >= 0`.
    /// Exact below the minimum (0) and from the maximum on (1); otherwise, with `ε` the
    /// [`QuantileSketch::error_bound`], the true share of values `<= x'` for some `x'` between
    /// `x / (1 + ε)` and `x / (1 − ε)` (values below [`MIN_POSITIVE`] count as 0). `None` when
    /// empty or `x` is NaN.
    pub fn rank(&self, x: f64) -> Option<f64> {
        if self.count == 0 || x.is_nan() {
            return None;
        }
        if x < self.min {
            return Some(0.0);
        }
        if x >= self.max {
            return Some(1.0);
        }
        let mut at_or_below = if x >= 0.0 { self.zero_count } else { 0 };
        for (k, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            // Representatives increase with the index: the first one above x ends the count.
            if self.value_of(self.offset + k as i32) > x {
                break;
            }
            at_or_below += c;
        }
        Some(at_or_below as f64 / self.count as f64)
    }

    /// The buckets with a count, as (index at the current collapse level, count), zero bucket
    /// excluded.
    pub fn buckets(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(k, &c)| (self.offset + k as i32, c))
    }

    /// Values counted as 0.
    pub fn zero_count(&self) -> u64 {
        self.zero_count
    }
}

impl PartialEq for QuantileSketch {
    fn eq(&self, other: &Self) -> bool {
        self.mapping == other.mapping
            && self.alpha == other.alpha
            && self.max_buckets == other.max_buckets
            && self.collapses == other.collapses
            && self.count == other.count
            && self.zero_count == other.zero_count
            && self.sum.to_bits() == other.sum.to_bits()
            && (self.count == 0
                || (self.min.to_bits() == other.min.to_bits() && self.max.to_bits() == other.max.to_bits()))
            && self.buckets().eq(other.buckets())
    }
}

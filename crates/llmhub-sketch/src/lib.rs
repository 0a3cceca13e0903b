//! A mergeable quantile summary with a guaranteed relative error: the UDDSketch of Epicoco et al.
//! (DDSketch's logarithmic buckets, collapsed uniformly when the bucket range is full).
//!
//! A positive value `x` goes to bucket `ceil(log_γ x)` with `γ = (1 + α) / (1 − α)`; every value in
//! a bucket is within relative error `α` of the bucket's representative `2γ^i / (γ + 1)`, so a
//! quantile read from the buckets is within `α` of the true order statistic. When the buckets
//! would span more than `max_buckets` indexes, adjacent pairs are merged (`γ` becomes `γ²`, the
//! bound `α' = 2α / (1 + α²)`), for all buckets at once: the guarantee degrades uniformly instead of
//! failing at the tails. Two summaries merge exactly (bucket counts add), after bringing the finer
//! one to the coarser one's collapse level, so merging hourly summaries gives the same buckets as
//! one summary over all the rows.
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

/// Values below this (and zero) count as 0.
pub const MIN_POSITIVE: f64 = 1e-9;
/// Default relative accuracy: 0.5%, so one collapse still keeps quantiles within 1%.
pub const DEFAULT_ALPHA: f64 = 0.005;
/// Default bucket range: at α = 0.5% it spans about eight decades before the first collapse.
pub const DEFAULT_MAX_BUCKETS: u32 = 2048;

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
}

/// Bad construction parameters.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// α outside (0, 0.5).
    #[error("relative accuracy must be in (0, 0.5), got {0}")]
    Alpha(f64),
    /// max_buckets outside [16, 65536].
    #[error("max_buckets must be in 16..=65536, got {0}")]
    MaxBuckets(u32),
}

/// The summary. Two summaries are equal when their parameters, collapse level, count, zero count,
/// sum, minimum, maximum and non-empty buckets are equal (the in-memory layout does not matter).
#[derive(Debug, Clone)]
pub struct QuantileSketch {
    alpha: f64,
    max_buckets: u32,
    collapses: u8,
    /// 1 / ln(γ) at the current collapse level.
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

impl QuantileSketch {
    /// An empty summary with relative accuracy `alpha` and at most `max_buckets` bucket indexes.
    pub fn new(alpha: f64, max_buckets: u32) -> Result<QuantileSketch, ParamError> {
        if !(alpha > 0.0 && alpha < 0.5) {
            return Err(ParamError::Alpha(alpha));
        }
        if !(16..=65_536).contains(&max_buckets) {
            return Err(ParamError::MaxBuckets(max_buckets));
        }
        Ok(QuantileSketch {
            alpha,
            max_buckets,
            collapses: 0,
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

    /// The relative error bound that holds now: α after no collapse, `(γ^(2^k) − 1) / (γ^(2^k) + 1)`
    /// after `k`.
    pub fn error_bound(&self) -> f64 {
        let g = gamma(self.alpha, self.collapses);
        (g - 1.0) / (g + 1.0)
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

    fn index(&self, x: f64) -> i32 {
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

    fn value_of(&self, index: i32) -> f64 {
        let g = gamma(self.alpha, self.collapses);
        2.0 * g.powi(index) / (g + 1.0)
    }

    /// Adds one value.
    pub fn add(&mut self, x: f64) -> Result<(), AddError> {
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
            i = collapse_index(i);
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

    /// Merges adjacent bucket pairs: γ becomes γ².
    fn collapse(&mut self) {
        self.collapses = self.collapses.saturating_add(1);
        self.inv_ln_gamma = 1.0 / gamma(self.alpha, self.collapses).ln();
        if self.counts.is_empty() {
            return;
        }
        let new_offset = collapse_index(self.offset);
        let last = collapse_index(self.offset + self.counts.len() as i32 - 1);
        let mut v = vec![0u64; (last - new_offset + 1) as usize];
        for (k, &c) in self.counts.iter().enumerate() {
            let j = collapse_index(self.offset + k as i32);
            let slot = (j - new_offset) as usize;
            v[slot] = v[slot].saturating_add(c);
        }
        self.offset = new_offset;
        self.counts = v;
    }

    /// Merges `other` into this summary.
    pub fn merge(&mut self, other: &QuantileSketch) -> Result<(), MergeError> {
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
                    j = collapse_index(j);
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
        self.alpha == other.alpha
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

/// The index of bucket `i` after one collapse: `ceil(i / 2)`.
fn collapse_index(i: i32) -> i32 {
    (i as i64 + 1).div_euclid(2) as i32
}

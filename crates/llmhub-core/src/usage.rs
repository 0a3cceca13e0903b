//! Token arithmetic: the counts a dialect reports, under its own convention, turned into the
//! disjoint buckets of [`Usage`].
//!
//! Two conventions exist for input tokens. *Inclusive* (OpenTelemetry GenAI, OpenAI, and most
//! wrappers): the input count already contains cache reads and cache writes. *Exclusive*
//! (Anthropic's and Bedrock's raw usage as OpenLIT and the Vercel AI SDK before v6 pass it on): the
//! input count is the uncached
//! remainder and the cache counts come on top. [`input_convention`] picks the convention from the
//! dialect and provider; when the counts prove it wrong (cache tokens larger than an "inclusive"
//! input), the exclusive reading is used, since an inclusive total can never be smaller than a part.
//!
//! Reasoning tokens are part of output tokens (OpenAI, OpenTelemetry). When an instrumentation
//! reports more reasoning than output tokens, its output count evidently excludes reasoning
//! (Gemini's `candidates_token_count`), and the two are added instead.

use crate::dialect::Dialect;
use crate::record::Usage;

/// Largest token count accepted for one field of one call. Larger values are treated as corrupt.
pub const MAX_TOKENS: u64 = 1_000_000_000;

/// Whether a reported input count includes the cache buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputConvention {
    /// Input includes cache reads and writes.
    Inclusive,
    /// Input excludes cache reads and writes.
    Exclusive,
}

/// (dialect, provider) pairs known to report exclusive input counts. `None` matches any provider.
/// (Langfuse usage details are disjoint too, but normalization sums them into inclusive totals
/// when it reads them.)
pub static EXCLUSIVE_INPUT: &[(Dialect, Option<&str>)] = &[
    (Dialect::OpenLit, Some("anthropic")),
    (Dialect::VercelAi, Some("anthropic")),
    (Dialect::VercelAi, Some("aws.bedrock")),
];

/// The input convention for a dialect and (canonical) provider.
pub fn input_convention(dialect: Dialect, provider: Option<&str>) -> InputConvention {
    let exclusive = EXCLUSIVE_INPUT
        .iter()
        .any(|(d, p)| *d == dialect && (p.is_none() || *p == provider));
    if exclusive {
        InputConvention::Exclusive
    } else {
        InputConvention::Inclusive
    }
}

/// Token counts as reported, before bucketing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawUsage {
    /// Input tokens.
    pub input: Option<u64>,
    /// Output tokens.
    pub output: Option<u64>,
    /// Cache-read input tokens.
    pub cache_read: Option<u64>,
    /// Cache-write input tokens (all lifetimes).
    pub cache_write: Option<u64>,
    /// Of the cache writes, those with the one-hour lifetime.
    pub cache_write_1h: Option<u64>,
    /// Reasoning output tokens.
    pub reasoning: Option<u64>,
}

impl RawUsage {
    /// True when no count at all was reported.
    pub fn is_empty(&self) -> bool {
        self.input.is_none()
            && self.output.is_none()
            && self.cache_read.is_none()
            && self.cache_write.is_none()
            && self.cache_write_1h.is_none()
            && self.reasoning.is_none()
    }
}

/// Buckets reported counts. `None` when nothing was reported: a call without usage is never read as
/// zero tokens. Counts not reported inside a reported usage (an embedding's output) are zero.
pub fn to_buckets(raw: RawUsage, convention: InputConvention) -> Option<Usage> {
    if raw.is_empty() {
        return None;
    }
    let input = raw.input.unwrap_or(0);
    let cache_read = raw.cache_read.unwrap_or(0);
    let cache_write_1h = raw.cache_write_1h.unwrap_or(0);
    let cache_write = raw.cache_write.unwrap_or(cache_write_1h).max(cache_write_1h);
    let cached = cache_read.saturating_add(cache_write);
    let input_uncached = match convention {
        InputConvention::Inclusive if cached <= input => input - cached,
        // An inclusive input smaller than its cached part is an exclusive count in disguise.
        InputConvention::Inclusive | InputConvention::Exclusive => input,
    };
    let output = raw.output.unwrap_or(0);
    let reasoning = raw.reasoning.unwrap_or(0);
    let output_visible = if reasoning <= output {
        output - reasoning
    } else {
        output
    };
    Some(Usage {
        input_uncached,
        cache_read,
        cache_write: cache_write - cache_write_1h,
        cache_write_1h,
        output: output_visible,
        reasoning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn openai_style_inclusive() {
        let raw = RawUsage {
            input: Some(1000),
            cache_read: Some(800),
            output: Some(300),
            reasoning: Some(200),
            ..Default::default()
        };
        let u = to_buckets(raw, InputConvention::Inclusive).unwrap();
        assert_eq!(
            u,
            Usage {
                input_uncached: 200,
                cache_read: 800,
                cache_write: 0,
                cache_write_1h: 0,
                output: 100,
                reasoning: 200
            }
        );
        assert_eq!(u.input_total(), 1000);
        assert_eq!(u.output_total(), 300);
    }

    #[test]
    fn anthropic_raw_exclusive() {
        let raw = RawUsage {
            input: Some(12),
            cache_read: Some(5000),
            cache_write: Some(300),
            output: Some(50),
            ..Default::default()
        };
        let u = to_buckets(raw, InputConvention::Exclusive).unwrap();
        assert_eq!(u.input_uncached, 12);
        assert_eq!(u.input_total(), 5312);
        // The same counts read as "inclusive" are impossible (cache > input): read as exclusive.
        assert_eq!(to_buckets(raw, InputConvention::Inclusive).unwrap(), u);
    }

    #[test]
    fn one_hour_cache_writes_are_split_from_the_cache_write_total() {
        let raw = RawUsage {
            input: Some(10_000),
            cache_write: Some(3_000),
            cache_write_1h: Some(1_000),
            ..Default::default()
        };
        let u = to_buckets(raw, InputConvention::Inclusive).unwrap();
        assert_eq!(
            (u.input_uncached, u.cache_write, u.cache_write_1h),
            (7_000, 2_000, 1_000)
        );
        assert_eq!(u.input_total(), 10_000);
        // Only the split reported: all of it is 1-hour writes.
        let raw = RawUsage {
            input: Some(5_000),
            cache_write_1h: Some(1_000),
            ..Default::default()
        };
        let u = to_buckets(raw, InputConvention::Inclusive).unwrap();
        assert_eq!((u.input_uncached, u.cache_write, u.cache_write_1h), (4_000, 0, 1_000));
    }

    #[test]
    fn nothing_reported_is_not_zero() {
        assert_eq!(to_buckets(RawUsage::default(), InputConvention::Inclusive), None);
    }

    proptest! {
        /// The same call reported under either convention lands in the same buckets.
        #[test]
        fn conventions_agree(uncached in 0u64..1_000_000, cr in 0u64..1_000_000, cw in 0u64..1_000_000,
                             out in 0u64..1_000_000, reasoning in 0u64..1_000_000) {
            let inclusive = RawUsage { input: Some(uncached + cr + cw), cache_read: Some(cr), cache_write: Some(cw), cache_write_1h: None,
                                       output: Some(out + reasoning), reasoning: Some(reasoning) };
            let exclusive = RawUsage { input: Some(uncached), ..inclusive };
            let a = to_buckets(inclusive, InputConvention::Inclusive).unwrap();
            let b = to_buckets(exclusive, InputConvention::Exclusive).unwrap();
            prop_assert_eq!(a, b);
            prop_assert_eq!(a.input_total(), uncached + cr + cw);
            prop_assert_eq!(a.output_total(), out + reasoning);
        }

        /// Buckets never exceed what was reported, and nothing is counted twice.
        #[test]
        fn buckets_partition_reported_totals(input in 0u64..MAX_TOKENS, cr in 0u64..MAX_TOKENS, cw in 0u64..MAX_TOKENS,
                                              out in 0u64..MAX_TOKENS, reasoning in 0u64..MAX_TOKENS) {
            let raw = RawUsage { input: Some(input), cache_read: Some(cr), cache_write: Some(cw), cache_write_1h: None, output: Some(out), reasoning: Some(reasoning) };
            let u = to_buckets(raw, InputConvention::Inclusive).unwrap();
            let expected_in = if cr + cw <= input { input } else { input + cr + cw };
            let expected_out = if reasoning <= out { out } else { out + reasoning };
            prop_assert_eq!(u.input_total(), expected_in);
            prop_assert_eq!(u.output_total(), expected_out);
        }
    }
}

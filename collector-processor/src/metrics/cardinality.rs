//! Cardinality limits: a bound on distinct values per label key and on label sets per metric, so
//! the metrics state never grows without bound whatever the input.
//!
//! - A label value beyond `max_values_per_label` distinct values of its key becomes
//!   [`OVERFLOW_VALUE`].
//! - A label set beyond `max_series_per_metric` for its metric is replaced by the metric's overflow
//!   series: every label set to [`OVERFLOW_VALUE`] and `otel_metric_overflow="true"`, as the
//!   OpenTelemetry SDKs do.
//!
//! Both events are counted in `llmhub.cardinality.overflow` (by metric and label).

use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use std::sync::Mutex;

/// Value that replaces a label value past the limits.
pub const OVERFLOW_VALUE: &str = "__overflow__";

/// A label set: keys are static, values owned.
pub type Labels = Vec<(&'static str, String)>;

/// The limiter. One per metrics state; shared by all instruments.
#[derive(Debug)]
pub struct CardinalityLimiter {
    max_series: usize,
    hasher: ahash::RandomState,
    max_values: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    values: HashMap<&'static str, HashSet<String>>,
    /// Admitted label sets per metric, as 64-bit digests: the families hold the labels themselves,
    /// and keeping a second copy here doubled the memory of every series.
    series: HashMap<&'static str, HashSet<u64>>,
}

/// What the limiter did to a label set.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Admission {
    /// Label keys whose value was replaced by the overflow value.
    pub overflowed_labels: Vec<&'static str>,
    /// True when the whole label set went to the overflow series.
    pub overflowed_series: bool,
}

impl CardinalityLimiter {
    /// A limiter with the given bounds (each at least 1).
    pub fn new(max_series_per_metric: usize, max_values_per_label: usize) -> Self {
        CardinalityLimiter {
            max_series: max_series_per_metric.max(1),
            hasher: ahash::RandomState::new(),
            max_values: max_values_per_label.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Applies the limits to `labels` for `metric`, in place.
    pub fn admit(&self, metric: &'static str, labels: &mut Labels) -> Admission {
        let mut adm = Admission::default();
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Values new to their key are committed to the key's budget only once the label set is
        // admitted, so a burst that lands in the overflow series does not use up value budgets.
        let mut pending: Vec<(&'static str, String)> = Vec::new();
        for (key, value) in labels.iter_mut() {
            if value.is_empty() {
                continue;
            }
            let set = inner.values.entry(key).or_default();
            if !set.contains(value.as_str()) {
                if set.len() >= self.max_values {
                    *value = OVERFLOW_VALUE.to_owned();
                    adm.overflowed_labels.push(key);
                } else {
                    pending.push((key, value.clone()));
                }
            }
        }
        let digest = self.hasher.hash_one(&*labels);
        let series = inner.series.entry(metric).or_default();
        if !series.contains(&digest) {
            if series.len() >= self.max_series {
                for (_, v) in labels.iter_mut() {
                    *v = OVERFLOW_VALUE.to_owned();
                }
                labels.push(("otel_metric_overflow", "true".to_owned()));
                adm.overflowed_series = true;
                return adm;
            }
            series.insert(digest);
        }
        for (key, value) in pending {
            inner.values.entry(key).or_default().insert(value);
        }
        adm
    }

    /// Number of label sets held for a metric.
    pub fn series_count(&self, metric: &'static str) -> usize {
        let inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        inner.series.get(metric).map_or(0, |s| s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_limit_overflow() {
        let l = CardinalityLimiter::new(100, 2);
        for (i, want) in ["a", "b", OVERFLOW_VALUE, "a", OVERFLOW_VALUE].iter().enumerate() {
            let v = ["a", "b", "c", "a", "d"][i];
            let mut labels = vec![("model", v.to_owned())];
            l.admit("m", &mut labels);
            assert_eq!(labels[0].1, *want, "value {v}");
        }
    }

    #[test]
    fn series_past_the_limit_go_to_the_overflow_series() {
        let l = CardinalityLimiter::new(2, 100);
        let mut last = Admission::default();
        for v in ["x", "y", "z"] {
            let mut labels = vec![("model", v.to_owned())];
            last = l.admit("m", &mut labels);
            if v == "z" {
                assert_eq!(
                    labels,
                    vec![
                        ("model", OVERFLOW_VALUE.to_owned()),
                        ("otel_metric_overflow", "true".to_owned())
                    ]
                );
            }
        }
        assert!(last.overflowed_series);
        // The overflow series itself is not counted against the limit again and again.
        assert_eq!(l.series_count("m"), 2);
        // The value budget was not spent on the refused label set.
        assert_eq!(l.inner.lock().unwrap().values["model"].len(), 2);
        // Other metrics have their own budget.
        let mut labels = vec![("model", "x".to_owned())];
        assert_eq!(l.admit("other", &mut labels), Admission::default());
    }
}

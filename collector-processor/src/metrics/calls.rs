//! The series a model call is recorded into, resolved once per label identity.
//!
//! Recording a model call touches about fifteen series (requests, cost, six token buckets, token
//! usage, durations…) whose labels all derive from the same seven values. Resolving each one
//! means building its label set, passing it through the cardinality limiter and hashing it into
//! its family, which cost more than decoding and normalizing the span together. The first call
//! of an identity takes that general path; every series it resolves without any limit stepping in
//! is kept here as a handle (prometheus-client's counters and histograms share their value between
//! clones), and later calls of the identity add to the handles directly.
//!
//! This changes no figure: the limiter never forgets an admitted label set, so a kept series is
//! exactly where the general path would have led. Series a limit changed (an overflowed value, the
//! overflow series) are never kept, so each of their events is still counted. At most
//! [`MAX_IDENTITIES`] identities are kept; calls of others take the general path.

use ahash::AHashMap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Most label identities kept resolved (about 1 KiB each with all their series).
pub const MAX_IDENTITIES: usize = 4096;

/// A model call's label values: operation, provider, request model, response model, service,
/// environment and tenant (absent values as empty strings, as in the labels).
pub type Identity<'a> = [&'a str; 7];

/// A resolved series.
#[derive(Clone)]
pub enum Handle {
    /// A counter.
    Count(Counter),
    /// A fractional counter.
    Float(Counter<f64, AtomicU64>),
    /// A histogram.
    Hist(Histogram),
}

/// One kept series: metric, the value of its extra label ("" when none) and its handle.
pub type Slot = (&'static str, &'static str, Handle);

/// The series kept for one identity.
pub struct Resolved {
    identity: [Box<str>; 7],
    slots: Mutex<Vec<Slot>>,
}

impl Resolved {
    /// The kept series, locked for one call's updates.
    pub fn slots(&self) -> Kept<'_> {
        Kept {
            slots: self.slots.lock().unwrap_or_else(PoisonError::into_inner),
            next: 0,
        }
    }
}

/// The series kept for one identity, locked while one call is recorded, with a cursor: calls of an
/// identity update their series in the order they were first resolved, so the slot after the last
/// one found is nearly always the next one asked for.
pub struct Kept<'a> {
    slots: MutexGuard<'a, Vec<Slot>>,
    next: usize,
}

impl Kept<'_> {
    /// The handle of `metric` with extra label value `extra`, looked for from the cursor on (a
    /// call skips the series it does not touch, but keeps their order), then before it.
    pub fn find(&mut self, metric: &str, extra: &str) -> Option<&Handle> {
        let next = self.next.min(self.slots.len());
        let (before, after) = self.slots.split_at(next);
        let at = match position(after, metric, extra) {
            Some(i) => next + i,
            None => position(before, metric, extra)?,
        };
        self.next = at + 1;
        Some(&self.slots[at].2)
    }

    /// Keeps a newly resolved series.
    pub fn push(&mut self, slot: Slot) {
        self.slots.push(slot);
        self.next = self.slots.len();
    }
}

/// Equal strings; the names passed here are literals, so their addresses usually settle it.
fn same(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// Where the handle of `metric` with extra label value `extra` is among `slots`.
fn position(slots: &[Slot], metric: &str, extra: &str) -> Option<usize> {
    slots.iter().position(|(m, e, _)| same(m, metric) && same(e, extra))
}

/// The identities kept, by hash.
pub struct CallSeries {
    hasher: ahash::RandomState,
    max: usize,
    table: Mutex<Table>,
}

impl Default for CallSeries {
    fn default() -> Self {
        CallSeries::new(MAX_IDENTITIES)
    }
}

#[derive(Default)]
struct Table {
    by_hash: AHashMap<u64, Vec<Arc<Resolved>>>,
    len: usize,
}

impl CallSeries {
    /// A table keeping at most `max` identities (0: none, every call takes the general path).
    pub fn new(max: usize) -> Self {
        CallSeries {
            hasher: ahash::RandomState::new(),
            max,
            table: Mutex::new(Table::default()),
        }
    }

    /// The series kept for `id`, registering it if there is room; `None` when the table is full
    /// and `id` is not in it.
    pub fn get(&self, id: &Identity<'_>) -> Option<Arc<Resolved>> {
        let hash = self.hasher.hash_one(id);
        let mut t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let same = |r: &Arc<Resolved>| r.identity.iter().zip(id).all(|(a, b)| **a == **b);
        if let Some(r) = t.by_hash.get(&hash).and_then(|list| list.iter().find(|r| same(r))) {
            return Some(r.clone());
        }
        if t.len >= self.max {
            return None;
        }
        let r = Arc::new(Resolved {
            identity: id.map(Box::from),
            slots: Mutex::new(Vec::new()),
        });
        t.by_hash.entry(hash).or_default().push(r.clone());
        t.len += 1;
        Some(r)
    }

    /// Identities kept.
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(PoisonError::into_inner).len
    }

    /// True when none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_told_apart_by_value_and_bounded() {
        let t = CallSeries::default();
        let a = t
            .get(&["chat", "openai", "gpt-4o", "gpt-4o", "svc", "prod", ""])
            .unwrap();
        let b = t
            .get(&["chat", "openai", "gpt-4o", "gpt-4o", "svc", "prod", "acme"])
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        let owned = String::from("gpt-4o");
        let again = t.get(&["chat", "openai", &owned, "gpt-4o", "svc", "prod", ""]).unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(t.len(), 2);
        for i in 2..MAX_IDENTITIES {
            assert!(t.get(&["chat", "", &i.to_string(), "", "", "", ""]).is_some());
        }
        assert_eq!(t.len(), MAX_IDENTITIES);
        assert!(t.get(&["chat", "", "one more", "", "", "", ""]).is_none());
        // Those kept are still found once the table is full.
        assert!(t
            .get(&["chat", "openai", "gpt-4o", "gpt-4o", "svc", "prod", "acme"])
            .is_some());
    }

    #[test]
    fn slots_are_found_by_metric_and_extra_value_in_any_order() {
        let r = Resolved {
            identity: [""; 7].map(Box::from),
            slots: Mutex::new(Vec::new()),
        };
        let count = |n: u64| {
            let c = Counter::default();
            c.inc_by(n);
            Handle::Count(c)
        };
        let value = |h: Option<&Handle>| match h {
            Some(Handle::Count(c)) => Some(c.get()),
            _ => None,
        };
        let mut k = r.slots();
        k.push(("llmhub.tokens", "input_uncached", count(1)));
        k.push(("llmhub.tokens", "output", count(2)));
        k.push(("llmhub.requests", "", count(3)));
        drop(k);
        // In the order kept (each at the cursor), out of order (by the scan), and asked twice.
        let mut k = r.slots();
        let asked = [
            ("llmhub.tokens", "input_uncached", Some(1)),
            ("llmhub.tokens", "output", Some(2)),
            ("llmhub.requests", "", Some(3)),
            ("llmhub.tokens", "output", Some(2)),
            ("llmhub.tokens", "output", Some(2)),
            ("llmhub.tokens", "input_uncached", Some(1)),
            ("llmhub.tokens", "reasoning", None),
            ("llmhub.requests", "output", None),
            ("llmhub.requests", "", Some(3)),
        ];
        for (metric, extra, want) in asked {
            assert_eq!(value(k.find(metric, extra)), want, "{metric} {extra}");
        }
    }
}

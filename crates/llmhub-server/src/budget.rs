//! One memory budget for everything llmhub holds on behalf of its clients: request bodies being
//! read, decompressed and processed by the receivers, and the rows and spans waiting in the
//! exporters' memory queues.
//!
//! The limit is on the process's resident memory (`service.memory.limit_mib`). What the data takes
//! is counted as it is taken ([`MemoryBudget::try_reserve`], [`MemoryBudget::charge`]). The rest
//! is the process's own footprint, measured once when it starts serving
//! ([`MemoryBudget::sample`]'s first call), and a reserve of a quarter of the limit ([`RESERVE`])
//! for what is not counted: connection buffers, allocator slack, metric families and the
//! deduplication window growing to their configured bounds. A new request is admitted while the
//! data held stays under the rest; past it the receivers refuse it with OTLP's retryable statuses,
//! before reading more of it.
//!
//! The footprint is not re-measured under load on purpose: an allocator keeps memory freed after
//! a burst resident and reuses it, so resident memory minus data held would count it twice and
//! starve the receivers long after the burst.
//!
//! When nothing at all is held, one request is admitted whatever its size, so a request larger
//! than the room left is delayed, never refused forever.

use crate::catalogue::{register, Kind, MetricDef};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The budget's self-monitoring.
pub static METRICS: &[MetricDef] = &[
    MetricDef { name: "llmhub.memory.limit_bytes", unit: "By", kind: Kind::Gauge, attributes: &[],
        help: "The resident-memory limit (service.memory.limit_mib)." },
    MetricDef { name: "llmhub.memory.room_bytes", unit: "By", kind: Kind::Gauge, attributes: &[],
        help: "What requests and memory queues may hold: the limit less the process's footprint at start, the deduplication window's bound and a quarter kept in reserve." },
    MetricDef { name: "llmhub.memory.held_bytes", unit: "By", kind: Kind::Gauge, attributes: &[],
        help: "Bytes of client data held: requests being read and processed, and the exporters' memory queues." },
    MetricDef { name: "llmhub.memory.resident_bytes", unit: "By", kind: Kind::Gauge, attributes: &[],
        help: "Resident memory of the process at the last sample (every 100 ms)." },
];

/// The gauges of [`METRICS`], set by the sampler.
#[derive(Debug, Default, Clone)]
pub struct BudgetGauges {
    limit: Gauge,
    room: Gauge,
    held: Gauge,
    resident: Gauge,
}

impl BudgetGauges {
    /// Registers the three gauges.
    pub fn register(registry: &mut Registry) -> BudgetGauges {
        let g = BudgetGauges::default();
        if let [limit, room, held, resident] = METRICS {
            register(registry, limit, g.limit.clone());
            register(registry, room, g.room.clone());
            register(registry, held, g.held.clone());
            register(registry, resident, g.resident.clone());
        }
        g
    }
}

/// The share of the limit kept in reserve for memory that is not counted: `limit / RESERVE`, a
/// quarter.
pub const RESERVE: u64 = 4;

/// The budget; shared behind an `Arc`.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    /// Bytes of client data held now.
    used: AtomicU64,
    /// The process's own footprint: resident memory at the first sample (0 before it).
    other: AtomicU64,
    /// What bounded structures outside the data may grow to (the deduplication window).
    fixed: AtomicU64,
    /// Largest resident size sampled.
    peak_rss: AtomicU64,
}

/// A refusal: the request would take the process past its memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "llmhub is at its memory limit ({held} bytes of requests and queues held; {other} bytes of its own footprint and a quarter of the limit kept in reserve; limit {limit} from service.memory.limit_mib); retry later"
)]
pub struct OverBudget {
    /// Bytes of data held when refused.
    pub held: u64,
    /// The process's own footprint (resident memory when it started serving).
    pub other: u64,
    /// The limit.
    pub limit: u64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes of resident memory.
    pub fn new(limit: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicU64::new(0),
            other: AtomicU64::new(0),
            fixed: AtomicU64::new(0),
            peak_rss: AtomicU64::new(0),
        })
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes of client data held now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The process's own footprint (resident memory at the first sample).
    pub fn other(&self) -> u64 {
        self.other.load(Ordering::Relaxed)
    }

    /// Sets what bounded structures that grow under use (the deduplication window) may take at
    /// most: kept out of the data's room from the start.
    pub fn set_fixed(&self, bytes: u64) {
        self.fixed.store(bytes, Ordering::Relaxed);
    }

    /// Bytes the data may take: the limit less the footprint, the bounded structures and the
    /// [`RESERVE`].
    pub fn room(&self) -> u64 {
        self.limit
            .saturating_sub(self.other())
            .saturating_sub(self.fixed.load(Ordering::Relaxed))
            .saturating_sub(self.limit / RESERVE)
    }

    /// The largest resident size seen by [`MemoryBudget::sample`].
    pub fn peak_rss(&self) -> u64 {
        self.peak_rss.load(Ordering::Relaxed)
    }

    /// Records a resident-size measurement (bytes); the first one, less the data held then, is
    /// the process's footprint.
    pub fn sample(&self, rss: u64) {
        if self.peak_rss.fetch_max(rss, Ordering::Relaxed) == 0 {
            self.other.store(rss.saturating_sub(self.used()), Ordering::Relaxed);
        }
    }

    fn refusal(&self, held: u64) -> OverBudget {
        OverBudget {
            held,
            other: self.other(),
            limit: self.limit,
        }
    }

    /// Takes `bytes` if they fit (or if nothing is held at all); released when the reservation
    /// is dropped.
    pub fn try_reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, OverBudget> {
        self.take(bytes, 0)?;
        Ok(Reservation {
            budget: self.clone(),
            bytes,
        })
    }

    /// Adds `bytes` to what is held if they fit in the room, or if the caller's `own` bytes are
    /// all that is held (one request alone is admitted, and may grow, whatever its size).
    fn take(&self, bytes: u64, own: u64) -> Result<(), OverBudget> {
        let room = self.room();
        let mut held = self.used.load(Ordering::Relaxed);
        loop {
            if held != own && held.saturating_add(bytes) > room {
                return Err(self.refusal(held));
            }
            match self
                .used
                .compare_exchange_weak(held, held + bytes, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => held = now,
            }
        }
    }

    /// Counts `bytes` whatever the room left: for data already admitted (a request's rows entering
    /// a queue while the request's own reservation, which covered them, is still held).
    pub fn charge(&self, bytes: u64) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Gives back bytes counted by [`MemoryBudget::charge`].
    pub fn release(&self, bytes: u64) {
        let mut held = self.used.load(Ordering::Relaxed);
        loop {
            let next = held.saturating_sub(bytes);
            match self
                .used
                .compare_exchange_weak(held, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => held = now,
            }
        }
    }
}

/// Bytes taken from a [`MemoryBudget`], given back on drop.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Reservation {
    /// Takes `more` bytes into this reservation if they fit, or if this reservation is all that
    /// is held (so one request alone always gets through, whatever its size).
    pub fn grow(&mut self, more: u64) -> Result<(), OverBudget> {
        self.budget.take(more, self.bytes)?;
        self.bytes += more;
        Ok(())
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// This process's resident memory in bytes, where the platform says (Linux `/proc`).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Samples resident memory into `budget` (and the gauges) every `every` until `stop` is cancelled.
pub fn spawn_sampler(
    budget: Arc<MemoryBudget>,
    gauges: BudgetGauges,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {
                    if let Some(rss) = resident_bytes() {
                        budget.sample(rss);
                        gauges.resident.set(rss as i64);
                    }
                    gauges.limit.set(budget.limit() as i64);
                    gauges.room.set(budget.room() as i64);
                    gauges.held.set(budget.used() as i64);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_under_the_limit_and_come_back_on_drop() {
        let b = MemoryBudget::new(1000 * RESERVE / (RESERVE - 1));
        assert_eq!(b.room(), 1000, "a quarter of the limit is kept in reserve");
        let r1 = b.try_reserve(600).unwrap();
        let e = b.try_reserve(500).unwrap_err();
        assert_eq!((e.held, e.limit), (600, b.limit()));
        let mut r2 = b.try_reserve(400).unwrap();
        assert_eq!(b.used(), 1000);
        assert!(r2.grow(1).is_err());
        drop(r1);
        r2.grow(600).unwrap();
        assert_eq!((r2.bytes(), b.used()), (1000, 1000));
        drop(r2);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn one_request_larger_than_the_budget_passes_when_nothing_is_held() {
        let b = MemoryBudget::new(100);
        let big = b.try_reserve(5000).unwrap();
        assert!(b.try_reserve(1).is_err(), "nothing else while it is held");
        drop(big);
        assert!(b.try_reserve(1).is_ok());
        // The same when it grows from nothing, as request bodies do frame by frame.
        let mut alone = b.try_reserve(0).unwrap();
        alone.grow(3000).unwrap();
        alone.grow(3000).unwrap();
        let mut second = b.try_reserve(0).expect_err("6000 held, over the room");
        assert_eq!(second.held, 6000);
        drop(alone);
        let mut next = b.try_reserve(0).unwrap();
        next.grow(10).unwrap();
        // Anything else held (a queued row) ends the exception.
        b.charge(1);
        second = next.grow(1000).unwrap_err();
        assert_eq!(second.held, 11);
        b.release(1);
    }

    #[test]
    fn the_footprint_at_the_first_sample_and_the_reserve_shrink_the_room() {
        let b = MemoryBudget::new(8000);
        let r = b.try_reserve(100).unwrap();
        b.sample(700); // 100 of it is the reservation: the footprint is 600.
        assert_eq!(b.other(), 600);
        assert_eq!(b.room(), 8000 - 600 - 2000);
        // Later samples (memory kept after a burst) do not move it.
        b.sample(5000);
        assert_eq!((b.other(), b.peak_rss()), (600, 5000));
        b.set_fixed(100);
        assert_eq!(b.room(), 8000 - 600 - 100 - 2000);
        b.set_fixed(0);
        assert!(b.try_reserve(5301).is_err());
        let r2 = b.try_reserve(5300).unwrap();
        drop((r, r2));
    }

    #[test]
    fn charges_ignore_the_limit_and_release_saturates() {
        let b = MemoryBudget::new(16);
        b.charge(50);
        assert_eq!(b.used(), 50);
        assert!(b.try_reserve(1).is_err());
        b.release(80);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let b = MemoryBudget::new(10_000);
        let room = b.room();
        let peak = Arc::new(AtomicU64::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (b, peak) = (b.clone(), peak.clone());
                s.spawn(move || {
                    for k in 0..20_000u64 {
                        if let Ok(r) = b.try_reserve(1 + k % 700) {
                            peak.fetch_max(b.used(), Ordering::Relaxed);
                            drop(r);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= room);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn resident_size_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let rss = resident_bytes().unwrap();
            assert!(rss > 1024 * 1024, "{rss}");
        }
    }
}

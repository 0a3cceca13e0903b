//! A queue's self-monitoring gauges (depth, bytes, bytes on disk, oldest item's age), shared by
//! every exporter with a queue; each exporter declares the four under its own names.

use super::Stats;
use llmhub_server::catalogue::{register, MetricDef};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// The four gauges.
#[derive(Debug, Default)]
pub struct QueueGauges {
    items: Gauge,
    bytes: Gauge,
    disk_bytes: Gauge,
    oldest_age: Gauge<f64, AtomicU64>,
}

impl QueueGauges {
    /// Registers the gauges under `defs`: items, bytes, disk bytes, oldest age (in that order).
    pub fn register(registry: &mut Registry, [items, bytes, disk, age]: [&MetricDef; 4]) -> QueueGauges {
        let g = QueueGauges::default();
        register(registry, items, g.items.clone());
        register(registry, bytes, g.bytes.clone());
        register(registry, disk, g.disk_bytes.clone());
        register(registry, age, g.oldest_age.clone());
        g
    }

    /// Sets the gauges from a queue snapshot.
    pub fn observe(&self, s: &Stats) {
        self.items.set(s.items as i64);
        self.bytes.set(s.bytes as i64);
        self.disk_bytes.set(s.disk_bytes as i64);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.oldest_age
            .set(s.oldest_ms.map_or(0.0, |ms| now.saturating_sub(ms) as f64 / 1000.0));
    }
}

//! The sink's and its queue's self-monitoring, declared in [`METRICS`] (which feeds
//! `docs/metrics.md` with the rest of the catalogue).

use super::error::Failure;
use crate::queue::gauges::QueueGauges;
use crate::queue::Stats;
use llmhub_server::catalogue::{register, Kind, MetricDef};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Buckets of the batch write duration.
pub const BATCH_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

llmhub_server::instruments! {
    /// The PostgreSQL sink's instruments.
    pub enum SinkInstrument in METRICS {
        RowsWritten => MetricDef { name: "llmhub.postgres.rows.written", unit: "{row}", kind: Kind::Counter, attributes: &[],
            help: "Rows inserted into llm_calls." },
        RowsDuplicate => MetricDef { name: "llmhub.postgres.rows.duplicate", unit: "{row}", kind: Kind::Counter, attributes: &[],
            help: "Rows skipped because they were already in llm_calls (a retried or replayed batch); never inserted twice." },
        DeadLetters => MetricDef { name: "llmhub.postgres.dead_letters", unit: "{row}", kind: Kind::Counter, attributes: &[],
            help: "Rows the database rejected (or that could not be encoded), written to the dead-letter file with the reason." },
        RowsLost => MetricDef { name: "llmhub.postgres.rows.lost", unit: "{row}", kind: Kind::Counter, attributes: &[],
            help: "Rows still in the memory queue when the sink stopped at its drain deadline (a memory queue cannot keep them; set queue.directory)." },
        Retries => MetricDef { name: "llmhub.postgres.retries", unit: "{attempt}", kind: Kind::Counter, attributes: &["llmhub.reason"],
            help: "Failed batch writes that were retried, by reason (connection, conflict: a serialization failure or deadlock, at COMMIT too; missing_partition, transient)." },
        BatchDuration => MetricDef { name: "llmhub.postgres.batch.duration", unit: "s", kind: Kind::Histogram, attributes: &[],
            help: "Time to write one batch (COPY, and the deduplicating path when needed)." },
        QueueRows => MetricDef { name: "llmhub.postgres.queue.rows", unit: "{row}", kind: Kind::Gauge, attributes: &[],
            help: "Rows queued or being written, not yet confirmed by the database." },
        QueueBytes => MetricDef { name: "llmhub.postgres.queue.bytes", unit: "By", kind: Kind::Gauge, attributes: &[],
            help: "Bytes of rows not yet confirmed (the figure the queue's size limit applies to)." },
        QueueDiskBytes => MetricDef { name: "llmhub.postgres.queue.disk_bytes", unit: "By", kind: Kind::Gauge, attributes: &[],
            help: "Bytes of queue log files on disk (0 for a memory queue)." },
        QueueOldestAge => MetricDef { name: "llmhub.postgres.queue.oldest_age", unit: "s", kind: Kind::Gauge, attributes: &[],
            help: "Age of the oldest row not yet written (0 when the queue is empty): the sink's lag." },
    }
}

/// The live instruments.
#[derive(Debug)]
pub struct SinkMetrics {
    /// Rows inserted.
    pub rows_written: Counter,
    /// Rows already present.
    pub rows_duplicate: Counter,
    /// Rows dead-lettered.
    pub dead_letters: Counter,
    /// Rows lost from a memory queue at shutdown.
    pub rows_lost: Counter,
    retries: Family<Vec<(&'static str, &'static str)>, Counter>,
    /// Batch write time.
    pub batch_duration: Histogram,
    queue: QueueGauges,
}

impl SinkMetrics {
    /// Creates the instruments and registers them.
    pub fn new(registry: &mut Registry) -> SinkMetrics {
        let m = SinkMetrics {
            rows_written: Counter::default(),
            rows_duplicate: Counter::default(),
            dead_letters: Counter::default(),
            rows_lost: Counter::default(),
            retries: Family::default(),
            batch_duration: Histogram::new(BATCH_BUCKETS),
            queue: QueueGauges::register(
                registry,
                [
                    SinkInstrument::QueueRows.def(),
                    SinkInstrument::QueueBytes.def(),
                    SinkInstrument::QueueDiskBytes.def(),
                    SinkInstrument::QueueOldestAge.def(),
                ],
            ),
        };
        for i in SinkInstrument::ALL {
            let (r, def) = (&mut *registry, i.def());
            match i {
                SinkInstrument::RowsWritten => register(r, def, m.rows_written.clone()),
                SinkInstrument::RowsDuplicate => register(r, def, m.rows_duplicate.clone()),
                SinkInstrument::DeadLetters => register(r, def, m.dead_letters.clone()),
                SinkInstrument::RowsLost => register(r, def, m.rows_lost.clone()),
                SinkInstrument::Retries => register(r, def, m.retries.clone()),
                SinkInstrument::BatchDuration => register(r, def, m.batch_duration.clone()),
                // Registered together by the queue's gauges above.
                SinkInstrument::QueueRows
                | SinkInstrument::QueueBytes
                | SinkInstrument::QueueDiskBytes
                | SinkInstrument::QueueOldestAge => {}
            }
        }
        m
    }

    /// Counts a retried batch.
    pub fn retry(&self, why: Failure) {
        let reason = match why {
            Failure::Connection => "connection",
            Failure::MissingPartition => "missing_partition",
            Failure::Conflict => "conflict",
            Failure::Duplicate | Failure::RowRejected | Failure::Transient => "transient",
        };
        self.retries.get_or_create(&vec![("llmhub_reason", reason)]).inc();
    }

    /// Sets the queue gauges.
    pub fn observe_queue(&self, s: &Stats) {
        self.queue.observe(s);
    }
}

//! The forwarder's self-monitoring, declared in [`METRICS`] (which feeds `docs/metrics.md`).

use super::*;

llmhub_server::instruments! {
    /// The forwarder's instruments.
    pub enum ForwardInstrument in METRICS {
        Requests => MetricDef { name: "llmhub.forward.requests", unit: "{request}", kind: Kind::Counter, attributes: &["llmhub.outcome"],
            help: "Export requests forwarded downstream, by outcome: sent, partial (the endpoint rejected some spans), dead_letter (refused for good)." },
        Retries => MetricDef { name: "llmhub.forward.retries", unit: "{attempt}", kind: Kind::Counter, attributes: &["llmhub.reason"],
            help: "Forwarding attempts that failed and were retried, by reason (unreachable, retryable_status, dead_letter_unwritable: refused for good but its dead letter could not be written)." },
        QueueRequests => MetricDef { name: "llmhub.forward.queue.requests", unit: "{request}", kind: Kind::Gauge, attributes: &[],
            help: "Export requests queued or being sent, not yet confirmed by the endpoint." },
        QueueBytes => MetricDef { name: "llmhub.forward.queue.bytes", unit: "By", kind: Kind::Gauge, attributes: &[],
            help: "Bytes of requests not yet confirmed (the figure the queue's size limit applies to)." },
        QueueDiskBytes => MetricDef { name: "llmhub.forward.queue.disk_bytes", unit: "By", kind: Kind::Gauge, attributes: &[],
            help: "Bytes of forwarding queue log files on disk (0 for a memory queue)." },
        QueueOldestAge => MetricDef { name: "llmhub.forward.queue.oldest_age", unit: "s", kind: Kind::Gauge, attributes: &[],
            help: "Age of the oldest request not yet forwarded (0 when the queue is empty)." },
        ContentRemoved => MetricDef { name: "llmhub.forward.content.removed", unit: "{item}", kind: Kind::Counter, attributes: &["llmhub.kind"],
            help: "Content removed from forwarded spans by the content policy (processors.genai.content), by kind: attribute, event, request (a request that could not be filtered is not forwarded)." },
        Dropped => MetricDef { name: "llmhub.forward.dropped", unit: "{request}", kind: Kind::Counter, attributes: &["llmhub.reason"],
            help: "Export requests not forwarded because the forwarding queue could not take them (on_full: drop), by reason (queue_full, memory_limit, unavailable, queue_error)." },
        ContentRedacted => MetricDef { name: "llmhub.forward.content.redacted", unit: "{match}", kind: Kind::Counter, attributes: &["llmhub.rule"],
            help: "Matches masked or hashed in captured content by the redaction rules, by rule name (email, phone, card, api_key, or the rule's name)." },
    }
}

pub(super) type Labels = Vec<(&'static str, &'static str)>;

#[derive(Debug)]
pub(super) struct ForwardMetrics {
    pub(super) requests: Family<Labels, Counter>,
    pub(super) retries: Family<Labels, Counter>,
    pub(super) queue: QueueGauges,
    pub(super) content_removed: Family<Labels, Counter>,
    pub(super) content_redacted: Family<Vec<(&'static str, String)>, Counter>,
    pub(super) dropped: Family<Labels, Counter>,
}

impl ForwardMetrics {
    pub(super) fn new(registry: &mut Registry) -> ForwardMetrics {
        use ForwardInstrument as I;
        let m = ForwardMetrics {
            requests: Family::default(),
            retries: Family::default(),
            queue: QueueGauges::register(
                registry,
                [
                    I::QueueRequests.def(),
                    I::QueueBytes.def(),
                    I::QueueDiskBytes.def(),
                    I::QueueOldestAge.def(),
                ],
            ),
            content_removed: Family::default(),
            content_redacted: Family::default(),
            dropped: Family::default(),
        };
        for i in ForwardInstrument::ALL {
            let (r, def) = (&mut *registry, i.def());
            match i {
                I::Requests => register(r, def, m.requests.clone()),
                I::Retries => register(r, def, m.retries.clone()),
                I::ContentRemoved => register(r, def, m.content_removed.clone()),
                I::Dropped => register(r, def, m.dropped.clone()),
                I::ContentRedacted => register(r, def, m.content_redacted.clone()),
                // Registered together by the queue's gauges above.
                I::QueueRequests | I::QueueBytes | I::QueueDiskBytes | I::QueueOldestAge => {}
            }
        }
        m
    }
}

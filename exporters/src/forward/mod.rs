//! Span forwarding: every export request, with its spans enriched ([`enrich`]) and otherwise
//! unchanged, goes on to a downstream OTLP endpoint (an OpenTelemetry Collector, a tracing
//! backend, another llmhub) over gRPC or HTTP/protobuf, through the same bounded, optionally
//! durable [`Queue`] as the PostgreSQL sink, so llmhub can sit inline in a trace pipeline.
//!
//! Delivery is at least once: a request is retried (backoff with full jitter) while the endpoint
//! answers with an OTLP retryable status or cannot be reached; a request it refuses for good (a
//! permanent status) goes to the dead-letter file with the answer, and the next one is sent.

pub mod content;
pub mod enrich;
pub mod grpc_codec;

mod client;
mod config;
mod metrics;

pub use client::StartError;
use client::{attempt, client, client_tls, Attempt, Client, RetryReason};
pub use config::ForwardConfig;
use metrics::ForwardMetrics;
pub use metrics::{ForwardInstrument, METRICS};

use crate::delivery::{backoff, check_header, endpoint_problem, DeadLetters, HeaderPart};
use crate::otlp_metrics::OtlpProtocol;
use crate::queue::gauges::QueueGauges;
use crate::queue::{OnFull, PushError, Queue, QueueConfig};
use bytes::Bytes;
use llmhub_content::ContentPolicy;
use llmhub_core::LlmCall;
use llmhub_server::catalogue::{register, Kind, MetricDef};
use llmhub_server::tls::ClientTls;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The running forwarder.
pub struct Forwarder {
    cfg: ForwardConfig,
    queue: Arc<Queue>,
    metrics: Arc<ForwardMetrics>,
    dead_letters: DeadLetters,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: CancellationToken,
    /// Whether the endpoint answered the last attempt (true before the first).
    healthy: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("endpoint", &self.cfg.endpoint)
            .finish()
    }
}

impl Forwarder {
    /// Opens the queue (replaying what an earlier run left) and starts the senders.
    pub fn start(cfg: &ForwardConfig, registry: &mut Registry) -> Result<Arc<Forwarder>, StartError> {
        let queue = Queue::open("otlp", &cfg.queue).map_err(StartError::Queue)?;
        let dead_letters = DeadLetters::new(
            cfg.dead_letter_file.as_deref(),
            cfg.queue.directory.as_deref(),
            "otlp-dead-letters.jsonl",
        );
        let f = Arc::new(Forwarder {
            cfg: cfg.clone(),
            queue,
            metrics: Arc::new(ForwardMetrics::new(registry)),
            dead_letters,
            tasks: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
            healthy: std::sync::atomic::AtomicBool::new(true),
        });
        let tls = client_tls(cfg)?;
        let mut tasks = Vec::new();
        for id in 0..cfg.senders {
            let c = client(cfg, tls.as_ref())?;
            tasks.push(tokio::spawn(sender(f.clone(), c, id)));
        }
        let (q, m, stop) = (f.queue.clone(), f.metrics.clone(), f.stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => m.queue.observe(&q.stats()),
                }
            }
        }));
        if let Ok(mut t) = f.tasks.lock() {
            *t = tasks;
        }
        tracing::info!(endpoint = %cfg.endpoint, protocol = ?cfg.protocol, senders = cfg.senders,
            queue = ?cfg.queue.directory, durability = ?cfg.queue.durability, "span forwarding on");
        Ok(f)
    }

    /// Counts the memory queue's requests against the process-wide memory budget.
    pub fn use_budget(&self, budget: Arc<llmhub_server::budget::MemoryBudget>) {
        self.queue.use_budget(budget);
    }

    /// Whether the queue can take another request.
    pub fn admit(&self) -> Result<(), PushError> {
        self.queue.admit()
    }

    /// Why `/readyz` should say this forwarder is not ready: its endpoint did not answer the last
    /// attempt (it is retrying), or, with `on_full: refuse`, its queue cannot take a request, so
    /// requests are being refused. `None` while neither holds.
    pub fn problem(&self) -> Option<String> {
        if self.cfg.on_full == OnFull::Refuse {
            if let Err(e) = self.admit() {
                return Some(e.to_string());
            }
        }
        (!self.healthy.load(std::sync::atomic::Ordering::Relaxed))
            .then(|| format!("the last send to {} failed; retrying", self.cfg.endpoint))
    }

    /// What the pipeline does when this forwarder cannot take a request.
    pub fn on_full(&self) -> OnFull {
        self.cfg.on_full
    }

    /// Counts a request skipped under `on_full: drop`.
    pub fn count_dropped(&self, why: &PushError) {
        self.metrics
            .dropped
            .get_or_create(&vec![("llmhub_reason", why.reason().as_str())])
            .inc();
        tracing::debug!(reason = %why, "request not forwarded (on_full: drop)");
    }

    /// Applies the content policy to the request, writes the API key's tenant over its tenant
    /// attributes (`tenant`, when the client's key names one), enriches it with the records made
    /// of it and encodes it for the queue. `original` is the protobuf body as received, or the
    /// decoded request (OTLP/JSON). `None`: a request that the policy or the tenant would change
    /// but that cannot be decoded here is not forwarded (counted), rather than forwarded as it came.
    pub fn prepare(
        &self,
        original: Original<'_>,
        records: &[LlmCall],
        policy: &ContentPolicy,
        tenant: Option<enrich::TenantStamp<'_>>,
    ) -> Option<Bytes> {
        let mut req = match original {
            Original::Protobuf(body) => match ExportTraceServiceRequest::decode(body) {
                Ok(r) => r,
                Err(e) if policy.changes_spans() || tenant.is_some() => {
                    tracing::warn!(error = %e, "not forwarding a request: prost cannot decode it, so the content policy and the API key's tenant cannot be applied");
                    self.metrics
                        .content_removed
                        .get_or_create(&vec![("llmhub_kind", "request")])
                        .inc();
                    return None;
                }
                Err(e) => {
                    // The receiver's decoder accepted it; forward it as it came rather than lose it.
                    tracing::warn!(error = %e, "forwarding a request unenriched: prost cannot decode it");
                    return Some(Bytes::copy_from_slice(body));
                }
            },
            Original::Message(m) => m.clone(),
        };
        let applied = content::apply(&mut req, policy);
        for (kind, n) in [
            ("attribute", applied.attributes_removed),
            ("event", applied.events_removed),
        ] {
            if n > 0 {
                self.metrics
                    .content_removed
                    .get_or_create(&vec![("llmhub_kind", kind)])
                    .inc_by(n);
            }
        }
        for (rule, n) in applied.tally.redacted {
            self.metrics
                .content_redacted
                .get_or_create(&vec![("llmhub_rule", rule)])
                .inc_by(n);
        }
        if let Some(stamp) = tenant {
            enrich::stamp_tenant(&mut req, stamp);
        }
        enrich::enrich(&mut req, records);
        Some(Bytes::from(req.encode_to_vec()))
    }

    /// Queues a prepared request; with `durability: wal`, returns once it is on disk.
    pub async fn push(&self, item: Bytes) -> Result<(), PushError> {
        self.queue.push(vec![item]).await
    }

    /// Stops taking requests and sends what is queued until `deadline`; an on-disk queue keeps
    /// the rest for the next start.
    pub async fn shutdown(&self, deadline: Duration) {
        self.queue.close();
        let until = tokio::time::Instant::now() + deadline;
        let drained = async {
            while self.queue.stats().items > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let _ = tokio::time::timeout_at(until, drained).await;
        self.stop.cancel();
        let handles: Vec<_> = match self.tasks.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(p) => p.into_inner().drain(..).collect(),
        };
        let joined = tokio::time::Instant::now() + Duration::from_secs(1);
        for mut h in handles {
            if tokio::time::timeout_at(joined, &mut h).await.is_err() {
                h.abort();
            }
        }
        let left = self.queue.stats().items;
        if left > 0 {
            tracing::warn!(
                requests = left,
                kept_on_disk = self.cfg.queue.directory.is_some(),
                "span forwarding stopped with requests queued"
            );
        }
    }

    fn dead_letter(&self, item: &[u8], reason: &str) -> std::io::Result<()> {
        self.dead_letters.write(serde_json::json!({
            "endpoint": self.cfg.endpoint,
            "reason": reason,
            "request_protobuf_hex": hex::encode(item),
        }))?;
        self.metrics
            .requests
            .get_or_create(&vec![("llmhub_outcome", "dead_letter")])
            .inc();
        Ok(())
    }
}

/// The request as received.
#[derive(Debug, Clone, Copy)]
pub enum Original<'a> {
    /// A protobuf body (OTLP/gRPC, OTLP/HTTP protobuf).
    Protobuf(&'a [u8]),
    /// A decoded request (OTLP/HTTP JSON).
    Message(&'a ExportTraceServiceRequest),
}

async fn sender(f: Arc<Forwarder>, mut c: Client, id: usize) {
    loop {
        // One request per lease: a request stuck in retries holds up no other, and a stop never
        // releases (and later resends) requests that already went out.
        let lease = match f.queue.pop(1, Duration::ZERO, &f.stop).await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(sender = id, error = %e, "cannot read the forwarding queue; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for item in &lease.items {
            let mut tries: u32 = 0;
            loop {
                let outcome = attempt(&mut c, item).await;
                f.healthy.store(
                    !matches!(outcome, Attempt::Retry { .. }),
                    std::sync::atomic::Ordering::Relaxed,
                );
                let (reason, message, after) = match outcome {
                    Attempt::Sent { rejected } => {
                        let outcome = if rejected > 0 { "partial" } else { "sent" };
                        f.metrics
                            .requests
                            .get_or_create(&vec![("llmhub_outcome", outcome)])
                            .inc();
                        break;
                    }
                    Attempt::Permanent(reason) => match f.dead_letter(item, &reason) {
                        Ok(()) => break,
                        // Kept queued until its dead letter is on disk: tried again after a delay.
                        Err(e) => (RetryReason::DeadLetterUnwritable, e.to_string(), None),
                    },
                    Attempt::Retry { reason, message, after } => (reason, message, after),
                };
                f.metrics
                    .retries
                    .get_or_create(&vec![("llmhub_reason", reason.as_str())])
                    .inc();
                tries = tries.saturating_add(1);
                let mut delay = backoff(f.cfg.retry_initial_ms, f.cfg.retry_max_ms, tries);
                if let Some(a) = after {
                    delay = delay.max(a.min(Duration::from_millis(f.cfg.retry_max_ms)));
                }
                if tries == 1 || tries.is_power_of_two() {
                    tracing::warn!(sender = id, attempt = tries, error = %message, retry_in = ?delay,
                        "forwarding failed; retrying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = f.stop.cancelled() => {
                        // Unsent items stay queued (on disk they are sent by the next run).
                        f.queue.release(lease);
                        return;
                    }
                }
            }
        }
        f.queue.ack(lease);
    }
}

//! The GenAI processor: every span of an export request normalized, deduplicated and recorded into
//! the metrics state. Shared by all receivers, so a span counts the same whatever transport it
//! came on.

use crate::config::GenAiProcessor as GenAiConfig;
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::receivers::otlp::view::{self, ResourceView};
use llmhub_content::ContentPolicy;
use llmhub_core::dedup::Deduplicator;
use llmhub_core::span::ContextView;
use llmhub_core::{normalize, LlmCall, NormalizeOptions, Outcome};
use llmhub_exporters::budget::MemoryBudget;
use llmhub_exporters::forward::enrich::TenantStamp;
use llmhub_exporters::forward::{Forwarder, Original};
use llmhub_exporters::postgres::PostgresSink;
use llmhub_exporters::queue::PushError;
use llmhub_pricing::{price_call, Matcher};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::sync::{Arc, Mutex};

/// What the deduplication window of `cfg` may take at most, in bytes (0 when it is off).
pub fn dedup_max_bytes(cfg: &GenAiConfig) -> u64 {
    if cfg.dedup.enabled {
        cfg.dedup.max_entries as u64 * llmhub_core::dedup::APPROX_BYTES_PER_KEY
    } else {
        0
    }
}

/// At most this many problems are listed in one response message; the rest are counted.
const MAX_MESSAGES: usize = 5;

/// What became of one export request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExportSummary {
    /// Spans in the request.
    pub received: u64,
    /// Spans refused (reported to the client as `rejected_spans`).
    pub rejected: u64,
    /// Problems, one sentence each, for the partial-success message; empty when all was clean.
    pub message: String,
    /// The records to deliver to the record sinks (collected only when there is one).
    pub records: Vec<LlmCall>,
}

/// The processor.
pub struct GenAiProcessor {
    opts: NormalizeOptions,
    dedup: Option<Mutex<Deduplicator>>,
    matcher: Matcher,
    metrics: Arc<Metrics>,
    sink: Option<Arc<PostgresSink>>,
    forwarder: Option<Arc<Forwarder>>,
    content: ContentPolicy,
    limits: Limits,
    budget: Option<Arc<MemoryBudget>>,
    /// What the deduplication window may take at most.
    dedup_max_bytes: u64,
    collect: bool,
}

impl GenAiProcessor {
    /// Builds the processor from its validated config and the price matcher
    /// ([`crate::processors::pricing::matcher`]).
    pub fn new(cfg: &GenAiConfig, matcher: Matcher, metrics: Arc<Metrics>) -> Self {
        GenAiProcessor {
            opts: NormalizeOptions {
                max_value_len: cfg.max_attribute_value_length,
                tenant_keys: cfg.tenant_attributes.clone(),
            },
            dedup: cfg
                .dedup
                .enabled
                .then(|| Mutex::new(Deduplicator::new(cfg.dedup.max_entries))),
            matcher,
            metrics,
            sink: None,
            forwarder: None,
            // The configuration was validated; should it still not compile, nothing is captured.
            content: ContentPolicy::new(&cfg.content, "processors.genai.content").unwrap_or_default(),
            limits: Limits::default(),
            budget: None,
            dedup_max_bytes: dedup_max_bytes(cfg),
            collect: false,
        }
    }

    /// Keeps each request's records in its [`ExportSummary`] (what a sink would receive); for
    /// tests that compare a sink's output with the processor's.
    pub fn collecting(mut self) -> Self {
        self.collect = true;
        self
    }

    /// Delivers every record to `sink` from now on.
    pub fn with_sink(mut self, sink: Arc<PostgresSink>) -> Self {
        self.sink = Some(sink);
        self.collect = true;
        self
    }

    /// Forwards every request, enriched, to `forwarder` from now on.
    pub fn with_forwarder(mut self, forwarder: Arc<Forwarder>) -> Self {
        self.forwarder = Some(forwarder);
        self.collect = true;
        self
    }

    /// Applies the receivers' request limits from now on.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The receivers' request limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bounds what requests and the exporters' memory queues hold by `budget` from now on (set
    /// after the sink and forwarder, so their queues count against it too).
    pub fn with_budget(mut self, budget: Arc<MemoryBudget>) -> Self {
        if let Some(s) = &self.sink {
            s.use_budget(budget.clone());
        }
        if let Some(f) = &self.forwarder {
            f.use_budget(budget.clone());
        }
        budget.set_fixed(self.dedup_max_bytes);
        self.budget = Some(budget);
        self
    }

    /// The memory budget the receivers reserve from, if any.
    pub fn budget(&self) -> Option<&Arc<MemoryBudget>> {
        self.budget.as_ref()
    }

    /// How many exporters queue what a request produces (the sink, the forwarder).
    pub fn queues(&self) -> usize {
        usize::from(self.sink.is_some()) + usize::from(self.forwarder.is_some())
    }

    /// The record sink, if any.
    pub fn sink(&self) -> Option<&Arc<PostgresSink>> {
        self.sink.as_ref()
    }

    /// Processes a request, forwards it enriched and delivers its records to the sink: the
    /// receivers' entry point. `original` is the request as received (for forwarding).
    ///
    /// A full queue refuses the request before anything is processed (the client retries it
    /// later and it is not mistaken for a duplicate). With `durability: wal` this returns once the
    /// request and records are on disk, so the client's acknowledgement means they are kept.
    pub async fn export(
        &self,
        req: &[ResourceView<'_>],
        original: Original<'_>,
        transport: &'static str,
        tenant: Option<&str>,
    ) -> Result<ExportSummary, PushError> {
        let admitted = self
            .sink
            .as_ref()
            .map_or(Ok(()), |s| s.admit())
            .and_then(|()| self.forwarder.as_ref().map_or(Ok(()), |f| f.admit()));
        if let Err(e) = admitted {
            let spans: usize = req.iter().flat_map(|r| &r.scopes).map(|s| s.spans.len()).sum();
            let reason = match e {
                PushError::Full { .. } => "queue_full",
                PushError::OverBudget(_) => "memory_limit",
                _ => "unavailable",
            };
            self.metrics.record_refused(reason, spans as u64);
            return Err(e);
        }
        let mut summary = self.process_views_as(req, transport, tenant);
        let records = std::mem::take(&mut summary.records);
        let forward = self.forwarder.as_ref().and_then(|f| {
            let stamp = tenant.map(|tenant| TenantStamp {
                tenant,
                keys: &self.opts.tenant_keys,
            });
            Some((f.clone(), f.prepare(original, &records, &self.content, stamp)?))
        });
        let rows = self.sink.as_ref().map(|s| (s.clone(), s.encode(&records)));
        if forward.is_none() && rows.is_none() {
            return Ok(summary);
        }
        // Queued on a task of its own: a client that gives up while a sync is pending does not
        // stop what the deduplicator has already seen from being queued (its retry would be
        // taken for a duplicate). Both queues sync at the same time.
        let delivery = tokio::spawn(async move {
            let to_forwarder = async {
                match forward {
                    Some((f, item)) => f.push(item).await,
                    None => Ok(()),
                }
            };
            let to_sink = async {
                match rows {
                    Some((s, items)) => s.push(items).await,
                    None => Ok(()),
                }
            };
            let (a, b) = tokio::join!(to_forwarder, to_sink);
            a.and(b)
        });
        match delivery.await {
            Ok(r) => r.map(|()| summary),
            Err(e) => Err(PushError::Io {
                queue: "delivery".to_owned(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }

    /// The metrics state it records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Processes one decoded export request (metrics only: records are collected in the summary
    /// when a sink is attached, but delivered only by [`GenAiProcessor::export`]).
    pub fn process(&self, req: &ExportTraceServiceRequest, transport: &'static str) -> ExportSummary {
        self.process_views(&view::request(req), transport)
    }

    /// Processes a request already viewed (decoded by [`crate::receivers::otlp::wire`], or from
    /// prost messages by [`view::request`]).
    pub fn process_views(&self, req: &[ResourceView<'_>], transport: &'static str) -> ExportSummary {
        self.process_views_as(req, transport, None)
    }

    /// [`GenAiProcessor::process_views`] for an authenticated client whose key names `tenant`:
    /// every call is that tenant's, whatever tenant attribute its span or resource carries.
    pub fn process_views_as(
        &self,
        req: &[ResourceView<'_>],
        transport: &'static str,
        tenant: Option<&str>,
    ) -> ExportSummary {
        let mut summary = ExportSummary::default();
        let mut problems: Vec<String> = Vec::new();
        let mut more_problems = 0usize;
        let mut note = |problems: &mut Vec<String>, msg: String| {
            if problems.len() < MAX_MESSAGES {
                problems.push(msg);
            } else {
                more_problems += 1;
            }
        };
        let mut not_genai = 0u64;
        for (ri, rs) in req.iter().enumerate() {
            let base = ContextView::new(&rs.attributes, "", &self.opts.tenant_keys);
            for (si, ss) in rs.scopes.iter().enumerate() {
                let ctx = ContextView {
                    scope_name: ss.scope_name,
                    ..base.clone()
                };
                for (pi, span) in ss.spans.iter().enumerate() {
                    summary.received += 1;
                    // Past the limits only the first attributes and events are read.
                    let limited;
                    let span = if span.attributes.len() > self.limits.max_attributes_per_span
                        || span.events.len() > self.limits.max_events_per_span
                    {
                        let mut s = span.clone();
                        if s.attributes.len() > self.limits.max_attributes_per_span {
                            s.attributes.truncate(self.limits.max_attributes_per_span);
                            self.metrics.record_limited("attributes_per_span");
                        }
                        if s.events.len() > self.limits.max_events_per_span {
                            s.events.truncate(self.limits.max_events_per_span);
                            self.metrics.record_limited("events_per_span");
                        }
                        limited = s;
                        &limited
                    } else {
                        span
                    };
                    match normalize(&ctx, span, &self.opts) {
                        Outcome::NotGenAi => not_genai += 1,
                        Outcome::Rejected(reason) => {
                            summary.rejected += 1;
                            note(
                                &mut problems,
                                format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}] rejected: {reason}"),
                            );
                        }
                        Outcome::Call(mut n) => {
                            if let Some(t) = tenant {
                                n.call.tenant = Some(t.to_owned());
                            }
                            for w in &n.warnings {
                                note(
                                    &mut problems,
                                    format!(
                                        "resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}] ({:?}): {w}",
                                        llmhub_core::normalize::short(span.name)
                                    ),
                                );
                            }
                            self.metrics.record_normalization(n.warnings.len(), &n.conflicts);
                            let duplicate = self.dedup.as_ref().and_then(|d| match d.lock() {
                                Ok(mut g) => g.check(&n.call),
                                Err(poisoned) => poisoned.into_inner().check(&n.call),
                            });
                            match duplicate {
                                Some(reason) => self.metrics.record_duplicate(reason, &n.call.service_name),
                                None => {
                                    price_call(&self.matcher, &mut n.call);
                                    self.metrics.record_call(&n.call);
                                    if self.collect {
                                        summary.records.push(n.call);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        self.metrics.record_received(transport, summary.received);
        self.metrics
            .record_accepted(transport, summary.received - summary.rejected);
        self.metrics.record_refused("invalid_span", summary.rejected);
        self.metrics.record_not_genai(not_genai);
        if more_problems > 0 {
            problems.push(format!("and {more_problems} more"));
        }
        summary.message = problems.join("; ");
        summary
    }
}

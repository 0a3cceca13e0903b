//! The GenAI processor: every span of an export request normalized (and every log record that is a
//! GenAI event read, `llmhub_core::events`), deduplicated and recorded into the metrics state.
//! Shared by all receivers, so a call counts the same whatever transport and signal it came on.

use crate::config::GenAiProcessor as GenAiConfig;
use crate::config::Limits;
use crate::metrics::{LogRecordOutcome, Metrics, SpanLimit, SpanRefusal, Transport};
use crate::pipeline::{Batch, Fanout, Original, PushError, TenantStamp};
use crate::processors::view::{self, LogResourceView, ResourceView};
use llmhub_content::ContentPolicy;
use llmhub_core::dedup::{Deduplicator, DuplicateReason, Journal};
use llmhub_core::events::read_event;
use llmhub_core::keys::Field;
use llmhub_core::span::ContextView;
use llmhub_core::{normalize, Dialect, LlmCall, NormalizeOptions, Normalized, Outcome};
use llmhub_pricing::{price_call, Matcher};
use llmhub_server::budget::MemoryBudget;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// What the deduplication window of `cfg` may take at most, in bytes (0 when it is off).
pub fn dedup_max_bytes(cfg: &GenAiConfig) -> u64 {
    if cfg.dedup.enabled {
        llmhub_core::dedup::max_bytes(cfg.dedup.max_entries)
    } else {
        0
    }
}

/// At most this many problems are listed in one response message; the rest are counted.
const MAX_MESSAGES: usize = 5;

/// What became of one export request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExportSummary {
    /// Spans (or log records) in the request.
    pub received: u64,
    /// Spans (or log records) refused (reported to the client as `rejected_spans`, or
    /// `rejected_log_records`).
    pub rejected: u64,
    /// Problems, one sentence each, for the partial-success message; empty when all was clean.
    pub message: String,
    /// The records to deliver to the record sinks (collected only when there is one).
    pub records: Vec<LlmCall>,
}

/// What an export request carries.
#[derive(Clone, Copy)]
pub enum Input<'r, 'a> {
    /// Spans (a trace export request).
    Spans(&'r [ResourceView<'a>]),
    /// Log records (a logs export request).
    Logs(&'r [LogResourceView<'a>]),
}

impl Input<'_, '_> {
    /// Spans or log records in the request.
    pub fn items(&self) -> usize {
        match self {
            Input::Spans(req) => req.iter().flat_map(|r| &r.scopes).map(|s| s.spans.len()).sum(),
            Input::Logs(req) => req.iter().flat_map(|r| &r.scopes).map(|s| s.records.len()).sum(),
        }
    }
}

/// The problems of one request, for its partial-success message: the first few, then a count.
#[derive(Default)]
struct Problems {
    listed: Vec<String>,
    more: usize,
}

impl Problems {
    fn note(&mut self, msg: String) {
        if self.listed.len() < MAX_MESSAGES {
            self.listed.push(msg);
        } else {
            self.more += 1;
        }
    }

    fn message(mut self) -> String {
        if self.more > 0 {
            self.listed.push(format!("and {} more", self.more));
        }
        self.listed.join("; ")
    }
}

/// The deduplication window, and the requests checked into it that are not settled yet.
struct Window {
    dedup: Deduplicator,
    /// Each pending request's outcome once known (`Some(true)`: accepted), by journal id: a
    /// request holding a copy of one of their calls waits for it before it is acknowledged.
    pending: HashMap<u32, watch::Receiver<Option<bool>>>,
}

fn lock(window: &Mutex<Window>) -> MutexGuard<'_, Window> {
    match window.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// What a request's processing counted, held back until the exporters accepted its records (a
/// refused request is retried by its client and must count once, when it is taken).
#[derive(Debug, Default)]
struct Tally {
    /// Log records rather than spans.
    logs: bool,
    received: u64,
    rejected: u64,
    not_genai: u64,
    limited: Vec<SpanLimit>,
    normalization: Vec<(usize, Vec<Field>)>,
    unmapped: Vec<(Dialect, Vec<String>)>,
    duplicates: Vec<(DuplicateReason, String)>,
}

/// Where processing puts what it counts: into the metrics at once, or into a [`Tally`] with the
/// request's deduplication [`Journal`] until the request is settled.
enum Effects<'a> {
    Now,
    Later(&'a mut Pending),
}

/// A request processed for the exporters and not yet settled.
struct Pending {
    tally: Tally,
    /// The request's journal and the sender of its outcome (no journal without deduplication).
    journal: Option<(Journal, watch::Sender<Option<bool>>)>,
    /// Outcomes of the pending requests this one's duplicates were dropped for.
    waits: Vec<watch::Receiver<Option<bool>>>,
}

/// Settles or forgets a pending request's journal exactly once, even if its delivery task ends
/// early: dropped unsettled, the request counts as refused.
struct Settle {
    window: Arc<Mutex<Window>>,
    journal: Option<(Journal, watch::Sender<Option<bool>>)>,
}

impl Settle {
    fn finish(&mut self, accepted: bool) {
        let Some((journal, outcome)) = self.journal.take() else {
            return;
        };
        {
            let mut w = lock(&self.window);
            w.pending.remove(&journal.owner());
            if accepted {
                w.dedup.settle(journal);
            } else {
                w.dedup.forget(journal);
            }
        }
        outcome.send_replace(Some(accepted));
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// The processor.
pub struct GenAiProcessor {
    opts: NormalizeOptions,
    dedup: Option<Arc<Mutex<Window>>>,
    matcher: Matcher,
    metrics: Arc<Metrics>,
    exporters: Fanout,
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
            dedup: cfg.dedup.enabled.then(|| {
                Arc::new(Mutex::new(Window {
                    dedup: Deduplicator::new(cfg.dedup.max_entries),
                    pending: HashMap::new(),
                }))
            }),
            matcher,
            metrics,
            exporters: Fanout::default(),
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

    /// Hands every request and its records to `exporters` from now on.
    pub fn with_exporters(mut self, exporters: Fanout) -> Self {
        self.collect |= exporters.queues() > 0;
        self.exporters = exporters;
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
    /// after the exporters, so their queues count against it too).
    pub fn with_budget(mut self, budget: Arc<MemoryBudget>) -> Self {
        self.exporters.use_budget(&budget);
        budget.set_fixed(self.dedup_max_bytes);
        self.budget = Some(budget);
        self
    }

    /// The memory budget the receivers reserve from, if any.
    pub fn budget(&self) -> Option<&Arc<MemoryBudget>> {
        self.budget.as_ref()
    }

    /// How many exporters queue what a request produces.
    pub fn queues(&self) -> usize {
        self.exporters.queues()
    }

    /// Processes a request and hands it and its records to the exporters: the receivers' entry
    /// point. `original` is the request as received (for forwarding).
    ///
    /// An exporter whose queue cannot take the request is dealt with by its policy
    /// ([`crate::pipeline::Fanout::admit`]): the sink (and a forwarder with `on_full: refuse`)
    /// refuses the whole request before anything is processed, so the client retries it later; a
    /// forwarder with `on_full: drop` (the default) skips it, counted, and holds up nothing else.
    /// With `durability: wal` this returns once the records are on disk, so the client's
    /// acknowledgement means they are kept.
    ///
    /// What the request counts (metrics) and adds to the deduplication window takes effect only
    /// once every exporter that must take it did; a refused request leaves no trace, so its retry
    /// is not taken for a duplicate.
    pub async fn export(
        &self,
        input: Input<'_, '_>,
        original: Option<Original<'_>>,
        transport: Transport,
        tenant: Option<&str>,
    ) -> Result<ExportSummary, PushError> {
        let logs = matches!(input, Input::Logs(_));
        let taking = match self.exporters.admit() {
            Ok(taking) => taking,
            Err(e) => {
                count_refused(&self.metrics, logs, transport, &e, input.items() as u64);
                return Err(e);
            }
        };
        if taking.is_empty() {
            return Ok(self.process_into(input, transport, tenant, Effects::Now));
        }
        let mut pending = self.begin();
        let mut summary = self.process_into(input, transport, tenant, Effects::Later(&mut pending));
        let records = std::mem::take(&mut summary.records);
        let Pending { tally, journal, waits } = pending;
        let mut settle = self.dedup.as_ref().map(|w| Settle {
            window: w.clone(),
            journal,
        });
        let batch = Batch {
            original,
            records: &records,
            content: &self.content,
            tenant: tenant.map(|tenant| TenantStamp {
                tenant,
                keys: &self.opts.tenant_keys,
            }),
        };
        let prepared = match Fanout::prepare(taking, &batch) {
            Ok(p) => p,
            Err(e) => {
                if let Some(s) = settle.as_mut() {
                    s.finish(false);
                }
                count_refused(&self.metrics, logs, transport, &e, summary.received);
                return Err(e);
            }
        };
        // Delivered and settled on a task of its own: a client that gives up while a sync is
        // pending does not stop the request from being stored and counted (its retry is then a
        // duplicate, rightly), and the requests waiting on this one learn its outcome.
        let metrics = self.metrics.clone();
        let spans = summary.received;
        let delivery = tokio::spawn(async move {
            let result = async {
                for mut w in waits {
                    // A dropped sender never sent: the request it stood for was not accepted.
                    let accepted = matches!(w.wait_for(Option::is_some).await.as_deref(), Ok(Some(true)));
                    if !accepted {
                        return Err(PushError::Unconfirmed);
                    }
                }
                prepared.deliver().await
            }
            .await;
            if let Some(s) = settle.as_mut() {
                s.finish(result.is_ok());
            }
            match &result {
                Ok(()) => {
                    record_tally(&metrics, transport, tally);
                    for call in &records {
                        metrics.record_call(call);
                    }
                }
                Err(e) => count_refused(&metrics, logs, transport, e, spans),
            }
            result
        });
        match delivery.await {
            Ok(r) => r.map(|()| summary),
            Err(e) => Err(PushError::Io {
                queue: "delivery".to_owned(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }

    /// Starts a request whose effects wait for its exporters: a journal in the deduplication
    /// window, registered so that later copies of its calls can wait for its outcome.
    fn begin(&self) -> Pending {
        let journal = self.dedup.as_ref().map(|w| {
            let mut w = lock(w);
            let journal = w.dedup.begin();
            let (tx, rx) = watch::channel(None);
            w.pending.insert(journal.owner(), rx);
            (journal, tx)
        });
        Pending {
            tally: Tally::default(),
            journal,
            waits: Vec::new(),
        }
    }

    /// The metrics state it records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Processes one decoded export request (metrics only: records are collected in the summary
    /// when a sink is attached, but delivered only by [`GenAiProcessor::export`]).
    pub fn process(&self, req: &ExportTraceServiceRequest, transport: Transport) -> ExportSummary {
        self.process_views(&view::request(req), transport)
    }

    /// Processes one decoded logs export request (metrics only, as [`GenAiProcessor::process`]).
    pub fn process_logs(&self, req: &ExportLogsServiceRequest, transport: Transport) -> ExportSummary {
        self.process_into(Input::Logs(&view::logs_request(req)), transport, None, Effects::Now)
    }

    /// Processes a request already viewed (decoded by [`crate::receivers::otlp::wire`], or from
    /// prost messages by [`view::request`]).
    pub fn process_views(&self, req: &[ResourceView<'_>], transport: Transport) -> ExportSummary {
        self.process_views_as(req, transport, None)
    }

    /// [`GenAiProcessor::process_views`] for an authenticated client whose key names `tenant`:
    /// every call is that tenant's, whatever tenant attribute its span or resource carries.
    pub fn process_views_as(
        &self,
        req: &[ResourceView<'_>],
        transport: Transport,
        tenant: Option<&str>,
    ) -> ExportSummary {
        self.process_into(Input::Spans(req), transport, tenant, Effects::Now)
    }

    /// Normalizes, deduplicates and prices every span (or reads every log record); counts into the
    /// metrics now, or into the pending request (`Effects::Later`) to be counted once it is
    /// accepted.
    fn process_into(
        &self,
        input: Input<'_, '_>,
        transport: Transport,
        tenant: Option<&str>,
        mut effects: Effects<'_>,
    ) -> ExportSummary {
        let mut summary = ExportSummary::default();
        let mut problems = Problems::default();
        let mut not_genai = 0u64;
        let limited_now = |effects: &mut Effects<'_>, reason: SpanLimit| match effects {
            Effects::Now => self.metrics.record_limited(reason),
            Effects::Later(p) => p.tally.limited.push(reason),
        };
        match input {
            Input::Spans(req) => {
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
                                    limited_now(&mut effects, SpanLimit::AttributesPerSpan);
                                }
                                if s.events.len() > self.limits.max_events_per_span {
                                    s.events.truncate(self.limits.max_events_per_span);
                                    limited_now(&mut effects, SpanLimit::EventsPerSpan);
                                }
                                limited = s;
                                &limited
                            } else {
                                span
                            };
                            let at = || format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]");
                            match normalize(&ctx, span, &self.opts) {
                                Outcome::NotGenAi => not_genai += 1,
                                Outcome::Rejected(reason) => {
                                    summary.rejected += 1;
                                    problems.note(format!("{} rejected: {reason}", at()));
                                }
                                Outcome::Call(n) => {
                                    let at = || format!("{} ({:?})", at(), llmhub_core::normalize::short(span.name));
                                    self.take(n, &at, tenant, &mut effects, &mut summary, &mut problems);
                                }
                            }
                        }
                    }
                }
            }
            Input::Logs(req) => {
                for (ri, rl) in req.iter().enumerate() {
                    let base = ContextView::new(&rl.attributes, "", &self.opts.tenant_keys);
                    for (si, sl) in rl.scopes.iter().enumerate() {
                        let ctx = ContextView {
                            scope_name: sl.scope_name,
                            ..base.clone()
                        };
                        for (li, log) in sl.records.iter().enumerate() {
                            summary.received += 1;
                            let limited;
                            let log = if log.attributes.len() > self.limits.max_attributes_per_span {
                                let mut l = log.clone();
                                l.attributes.truncate(self.limits.max_attributes_per_span);
                                limited_now(&mut effects, SpanLimit::AttributesPerSpan);
                                limited = l;
                                &limited
                            } else {
                                log
                            };
                            let at = || format!("resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]");
                            match read_event(&ctx, log, &self.opts) {
                                Outcome::NotGenAi => not_genai += 1,
                                Outcome::Rejected(reason) => {
                                    summary.rejected += 1;
                                    problems.note(format!("{} rejected: {reason}", at()));
                                }
                                Outcome::Call(n) => {
                                    self.take(n, &at, tenant, &mut effects, &mut summary, &mut problems);
                                }
                            }
                        }
                    }
                }
            }
        }
        let tally = Tally {
            logs: matches!(input, Input::Logs(_)),
            received: summary.received,
            rejected: summary.rejected,
            not_genai,
            ..Tally::default()
        };
        match effects {
            Effects::Now => record_tally(&self.metrics, transport, tally),
            Effects::Later(p) => {
                p.tally.logs = tally.logs;
                p.tally.received = tally.received;
                p.tally.rejected = tally.rejected;
                p.tally.not_genai = tally.not_genai;
            }
        }
        summary.message = problems.message();
        summary
    }

    /// Takes one call read from a span or an event: its tenant, its warnings (`at` names where it
    /// was in the request), deduplication, pricing, and its record.
    fn take(
        &self,
        mut n: Box<Normalized>,
        at: &dyn Fn() -> String,
        tenant: Option<&str>,
        effects: &mut Effects<'_>,
        summary: &mut ExportSummary,
        problems: &mut Problems,
    ) {
        if let Some(t) = tenant {
            n.call.tenant = Some(t.to_owned());
        }
        for w in &n.warnings {
            problems.note(format!("{}: {w}", at()));
        }
        let duplicate = self.dedup.as_ref().and_then(|w| {
            let mut w = lock(w);
            match effects {
                Effects::Now => w.dedup.check(&n.call),
                Effects::Later(p) => {
                    let Some((journal, _)) = p.journal.as_mut() else {
                        return w.dedup.check(&n.call);
                    };
                    let before = journal.waits().len();
                    let found = w.dedup.check_in(&n.call, journal);
                    // A copy of a call another pending request holds: this request waits for that
                    // one's outcome.
                    for owner in &journal.waits()[before..] {
                        if let Some(rx) = w.pending.get(owner) {
                            p.waits.push(rx.clone());
                        }
                    }
                    found
                }
            }
        });
        match effects {
            Effects::Now => {
                self.metrics.record_normalization(n.warnings.len(), &n.conflicts);
                if !n.unmapped.is_empty() {
                    self.metrics.record_unmapped(n.call.dialect, &n.unmapped);
                }
            }
            Effects::Later(p) => {
                if !n.warnings.is_empty() || !n.conflicts.is_empty() {
                    p.tally
                        .normalization
                        .push((n.warnings.len(), std::mem::take(&mut n.conflicts)));
                }
                if !n.unmapped.is_empty() {
                    p.tally.unmapped.push((n.call.dialect, std::mem::take(&mut n.unmapped)));
                }
            }
        }
        match duplicate {
            Some(reason) => match effects {
                Effects::Now => self.metrics.record_duplicate(reason, &n.call.service_name),
                Effects::Later(p) => p.tally.duplicates.push((reason, n.call.service_name.clone())),
            },
            None => {
                price_call(&self.matcher, &mut n.call);
                if matches!(effects, Effects::Now) {
                    self.metrics.record_call(&n.call);
                }
                if self.collect {
                    summary.records.push(n.call);
                }
            }
        }
    }
}

/// Counts what a request's processing tallied (its calls are recorded one by one beside it).
fn record_tally(metrics: &Metrics, transport: Transport, t: Tally) {
    for reason in t.limited {
        metrics.record_limited(reason);
    }
    for (warnings, conflicts) in &t.normalization {
        metrics.record_normalization(*warnings, conflicts);
    }
    for (dialect, keys) in &t.unmapped {
        metrics.record_unmapped(*dialect, keys);
    }
    for (reason, service) in &t.duplicates {
        metrics.record_duplicate(*reason, service);
    }
    if t.logs {
        let read = t.received - t.rejected - t.not_genai;
        metrics.record_log_records(transport, LogRecordOutcome::Read, read);
        metrics.record_log_records(transport, LogRecordOutcome::NotGenAi, t.not_genai);
        metrics.record_log_records(transport, LogRecordOutcome::Invalid, t.rejected);
        return;
    }
    metrics.record_received(transport, t.received);
    metrics.record_accepted(transport, t.received - t.rejected);
    metrics.record_refused(SpanRefusal::InvalidSpan, t.rejected);
    metrics.record_not_genai(t.not_genai);
}

/// Counts the spans or log records of a request an exporter refused whole.
fn count_refused(metrics: &Metrics, logs: bool, transport: Transport, e: &PushError, n: u64) {
    if logs {
        metrics.record_log_records(transport, LogRecordOutcome::Refused, n);
    } else {
        metrics.record_refused(SpanRefusal::Push(e.reason()), n);
    }
}

//! The metrics state: GenAI semantic-convention instruments and llmhub's own metrics, fed by the
//! processor, read by the Prometheus exporter. Every metric is declared once in [`CATALOGUE`], which
//! also feeds `docs/metrics.md` (a test keeps the two equal).

pub mod calls;
pub mod cardinality;
pub mod catalogue;
pub mod labels;
pub mod otel;
pub mod process;

use calls::{CallSeries, Handle};
use cardinality::{CardinalityLimiter, Labels};
pub use catalogue::{
    all, Instrument, CATALOGUE, DURATION_BUCKETS, REQUEST_BUCKETS, SERVER_TPOT_BUCKETS, SERVER_TTFT_BUCKETS,
    TOKEN_BUCKETS, TPS_BUCKETS,
};
pub use labels::{LogRecordOutcome, RequestOutcome, SpanLimit, SpanRefusal, Transport};
use llmhub_core::dedup::DuplicateReason;
use llmhub_core::Dialect;
use llmhub_core::{LlmCall, PriceStatus, SpanRole};
pub use llmhub_server::catalogue::{register, Kind, MetricDef};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rust_decimal::prelude::ToPrimitive;
use std::sync::atomic::{AtomicU64, Ordering};

type HistFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// A model call's series family and the update its series gets.
enum CallUpdate<'f> {
    /// Add to a counter.
    Add(&'f Family<Labels, Counter>, u64),
    /// Add to a fractional counter.
    AddF(&'f Family<Labels, Counter<f64, AtomicU64>>, f64),
    /// Observe in a histogram.
    Observe(&'f HistFamily, f64),
}

/// The series kept for a model call's identity, locked while the call is recorded (`None` when
/// the identity is not kept).
type Kept<'a> = Option<calls::Kept<'a>>;

const TOKEN_HIST: fn() -> Histogram = || Histogram::new(TOKEN_BUCKETS);
const DURATION_HIST: fn() -> Histogram = || Histogram::new(DURATION_BUCKETS);
const SERVER_TTFT_HIST: fn() -> Histogram = || Histogram::new(SERVER_TTFT_BUCKETS);
const SERVER_TPOT_HIST: fn() -> Histogram = || Histogram::new(SERVER_TPOT_BUCKETS);
const REQUEST_HIST: fn() -> Histogram = || Histogram::new(REQUEST_BUCKETS);
const TPS_HIST: fn() -> Histogram = || Histogram::new(TPS_BUCKETS);

/// The live metrics.
pub struct Metrics {
    limiter: CardinalityLimiter,
    token_usage: HistFamily,
    duration: HistFamily,
    ttfc: HistFamily,
    server_ttft: HistFamily,
    server_tpot: HistFamily,
    tokens: Family<Labels, Counter>,
    requests: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    usage_missing: Family<Labels, Counter>,
    cost: Family<Labels, Counter<f64, AtomicU64>>,
    unknown_price: Family<Labels, Counter>,
    sdk_cost: Family<Labels, Counter<f64, AtomicU64>>,
    tps: HistFamily,
    duplicates: Family<Labels, Counter>,
    agent_duration: HistFamily,
    tool_duration: HistFamily,
    spans_received: Family<Labels, Counter>,
    spans_accepted: Family<Labels, Counter>,
    spans_refused: Family<Labels, Counter>,
    spans_limited: Family<Labels, Counter>,
    log_records: Family<Labels, Counter>,
    spans_by_role: Family<Labels, Counter>,
    warnings: Counter,
    conflicts: Family<Labels, Counter>,
    unmapped: Family<Labels, Counter>,
    requests_in: Family<Labels, Counter>,
    request_duration: HistFamily,
    overflow: Family<Labels, Counter>,
    accepted_total: AtomicU64,
    cost_total_nano_usd: AtomicU64,
    otel: Option<otel::OtelMirror>,
    calls: CallSeries,
}

impl Metrics {
    /// Creates the instruments and registers them in `registry`.
    pub fn new(registry: &mut Registry, max_series_per_metric: usize, max_values_per_label: usize) -> Self {
        let m = Metrics {
            limiter: CardinalityLimiter::new(max_series_per_metric, max_values_per_label),
            token_usage: Family::new_with_constructor(TOKEN_HIST),
            duration: Family::new_with_constructor(DURATION_HIST),
            ttfc: Family::new_with_constructor(DURATION_HIST),
            server_ttft: Family::new_with_constructor(SERVER_TTFT_HIST),
            server_tpot: Family::new_with_constructor(SERVER_TPOT_HIST),
            tokens: Family::default(),
            requests: Family::default(),
            errors: Family::default(),
            usage_missing: Family::default(),
            cost: Family::default(),
            unknown_price: Family::default(),
            sdk_cost: Family::default(),
            tps: Family::new_with_constructor(TPS_HIST),
            duplicates: Family::default(),
            agent_duration: Family::new_with_constructor(DURATION_HIST),
            tool_duration: Family::new_with_constructor(DURATION_HIST),
            spans_received: Family::default(),
            spans_accepted: Family::default(),
            spans_refused: Family::default(),
            spans_limited: Family::default(),
            log_records: Family::default(),
            spans_by_role: Family::default(),
            warnings: Counter::default(),
            conflicts: Family::default(),
            unmapped: Family::default(),
            requests_in: Family::default(),
            request_duration: Family::new_with_constructor(REQUEST_HIST),
            overflow: Family::default(),
            accepted_total: AtomicU64::new(0),
            cost_total_nano_usd: AtomicU64::new(0),
            otel: None,
            calls: CallSeries::default(),
        };
        for i in Instrument::ALL {
            let (r, def) = (&mut *registry, i.def());
            use Instrument as I;
            match i {
                I::TokenUsage => register(r, def, m.token_usage.clone()),
                I::OperationDuration => register(r, def, m.duration.clone()),
                I::TimeToFirstChunk => register(r, def, m.ttfc.clone()),
                I::ServerTimeToFirstToken => register(r, def, m.server_ttft.clone()),
                I::ServerTimePerOutputToken => register(r, def, m.server_tpot.clone()),
                I::Tokens => register(r, def, m.tokens.clone()),
                I::Requests => register(r, def, m.requests.clone()),
                I::Errors => register(r, def, m.errors.clone()),
                I::UsageMissing => register(r, def, m.usage_missing.clone()),
                I::CostUsd => register(r, def, m.cost.clone()),
                I::UnknownPrice => register(r, def, m.unknown_price.clone()),
                I::SdkReportedCost => register(r, def, m.sdk_cost.clone()),
                I::OutputTokensPerSecond => register(r, def, m.tps.clone()),
                I::DuplicateCalls => register(r, def, m.duplicates.clone()),
                I::AgentDuration => register(r, def, m.agent_duration.clone()),
                I::ToolDuration => register(r, def, m.tool_duration.clone()),
                I::ReceiverSpans => register(r, def, m.spans_received.clone()),
                I::ReceiverSpansAccepted => register(r, def, m.spans_accepted.clone()),
                I::ReceiverSpansRefused => register(r, def, m.spans_refused.clone()),
                I::ReceiverSpansLimited => register(r, def, m.spans_limited.clone()),
                I::ReceiverLogRecords => register(r, def, m.log_records.clone()),
                I::ProcessorSpans => register(r, def, m.spans_by_role.clone()),
                I::ProcessorWarnings => register(r, def, m.warnings.clone()),
                I::ProcessorConflicts => register(r, def, m.conflicts.clone()),
                I::UnmappedUsageKeys => register(r, def, m.unmapped.clone()),
                I::ReceiverRequests => register(r, def, m.requests_in.clone()),
                I::RequestDuration => register(r, def, m.request_duration.clone()),
                I::CardinalityOverflow => register(r, def, m.overflow.clone()),
            }
        }
        m
    }

    /// Keeps the series of at most `max` model-call identities resolved ([`calls`]; the default is
    /// [`calls::MAX_IDENTITIES`], 0 sends every call through the general path). For tests and
    /// benchmarks that compare the two.
    pub fn keeping_call_series(mut self, max: usize) -> Self {
        self.calls = CallSeries::new(max);
        self
    }

    /// Also feeds every instrument to an OTLP metrics push provider.
    pub fn with_otlp_push(mut self, provider: opentelemetry_sdk::metrics::SdkMeterProvider) -> Self {
        self.otel = Some(otel::OtelMirror::new(provider, Instrument::ALL, |i| {
            let b: &[f64] = match i {
                Instrument::TokenUsage => &TOKEN_BUCKETS,
                Instrument::ServerTimeToFirstToken => &SERVER_TTFT_BUCKETS,
                Instrument::ServerTimePerOutputToken => &SERVER_TPOT_BUCKETS,
                Instrument::RequestDuration => &REQUEST_BUCKETS,
                Instrument::OutputTokensPerSecond => &TPS_BUCKETS,
                _ => &DURATION_BUCKETS,
            };
            b.to_vec()
        }));
        self
    }

    /// Exports pending OTLP metrics and stops the push (no-op without it).
    pub fn shutdown_push(&self) {
        if let Some(o) = &self.otel {
            o.shutdown();
        }
    }

    fn count(&self, fam: &Family<Labels, Counter>, metric: Instrument, labels: Labels, n: u64) {
        let labels = self.admit(metric, labels);
        self.count_unlimited(fam, metric, labels, n);
    }

    fn count_unlimited(&self, fam: &Family<Labels, Counter>, metric: Instrument, labels: Labels, n: u64) {
        fam.get_or_create(&labels).inc_by(n);
        if let Some(o) = &self.otel {
            o.add(metric, &labels, n);
        }
    }

    fn observe(&self, fam: &HistFamily, metric: Instrument, labels: Labels, v: f64) {
        let labels = self.admit(metric, labels);
        self.observe_unlimited(fam, metric, labels, v);
    }

    fn observe_unlimited(&self, fam: &HistFamily, metric: Instrument, labels: Labels, v: f64) {
        fam.get_or_create(&labels).observe(v);
        if let Some(o) = &self.otel {
            o.record(metric, &labels, v);
        }
    }

    fn admit(&self, metric: Instrument, labels: Labels) -> Labels {
        self.admit_checked(metric, labels).0
    }

    /// The label set as the cardinality limiter admits it, and whether it is unchanged (no value
    /// overflowed and it is not the overflow series). Overflow events are counted.
    fn admit_checked(&self, metric: Instrument, mut labels: Labels) -> (Labels, bool) {
        let adm = self.limiter.admit(metric.name(), &mut labels);
        let clean = adm.overflowed_labels.is_empty() && !adm.overflowed_series;
        for label in adm.overflowed_labels {
            self.count_unlimited(
                &self.overflow,
                Instrument::CardinalityOverflow,
                vec![
                    ("llmhub_metric", metric.name().to_owned()),
                    ("llmhub_label", label.to_owned()),
                ],
                1,
            );
        }
        if adm.overflowed_series {
            self.count_unlimited(
                &self.overflow,
                Instrument::CardinalityOverflow,
                vec![
                    ("llmhub_metric", metric.name().to_owned()),
                    ("llmhub_label", String::new()),
                ],
                1,
            );
        }
        (labels, clean)
    }

    fn genai_labels(call: &LlmCall) -> Labels {
        vec![
            ("gen_ai_operation_name", call.operation.clone()),
            ("gen_ai_provider_name", call.provider.clone().unwrap_or_default()),
            ("gen_ai_request_model", call.request_model.clone().unwrap_or_default()),
            ("gen_ai_response_model", call.response_model.clone().unwrap_or_default()),
            ("service_name", call.service_name.clone()),
            (
                "deployment_environment_name",
                call.environment.clone().unwrap_or_default(),
            ),
        ]
    }

    fn with(mut labels: Labels, key: &'static str, value: impl Into<String>) -> Labels {
        labels.push((key, value.into()));
        labels
    }

    /// Records one normalized call (already deduplicated).
    pub fn record_call(&self, call: &LlmCall) {
        let error = call.error_class.map(|c| c.as_str()).unwrap_or("");
        if call.role == SpanRole::ModelCall {
            return self.record_model_call(call, error);
        }
        self.count_unlimited(
            &self.spans_by_role,
            Instrument::ProcessorSpans,
            vec![("llmhub_span_role", call.role.as_str().to_owned())],
            1,
        );
        let env = call.environment.clone().unwrap_or_default();
        match call.role {
            SpanRole::Agent | SpanRole::Tool => {
                let (family, metric, key, name) = if call.role == SpanRole::Agent {
                    (
                        &self.agent_duration,
                        Instrument::AgentDuration,
                        "gen_ai_agent_name",
                        &call.agent.agent_name,
                    )
                } else {
                    (
                        &self.tool_duration,
                        Instrument::ToolDuration,
                        "gen_ai_tool_name",
                        &call.agent.tool_name,
                    )
                };
                if let Some(d) = call.timings.duration_s {
                    let labels = vec![
                        (key, name.clone().unwrap_or_default()),
                        ("service_name", call.service_name.clone()),
                        ("deployment_environment_name", env),
                        ("error_type", error.to_owned()),
                    ];
                    self.observe(family, metric, labels, d);
                    // Under the step's operation name whatever the span said (a framework's
                    // agent span may carry `chat`), so "model calls only" can exclude them.
                    let mut labels = Self::genai_labels(call);
                    labels[0].1 = match (call.role, call.operation.as_str()) {
                        (SpanRole::Agent, op @ ("invoke_agent" | "create_agent")) => op.to_owned(),
                        (SpanRole::Agent, _) => "invoke_agent".to_owned(),
                        _ => "execute_tool".to_owned(),
                    };
                    let labels = Self::with(labels, "error_type", error);
                    self.observe(&self.duration, Instrument::OperationDuration, labels, d);
                }
            }
            SpanRole::ModelCall | SpanRole::Workflow => {}
        }
    }

    /// A model call: every series it touches is labelled by its identity (the GenAI labels, plus
    /// the tenant on llmhub's own counters) and at most one extra label, so they are found through
    /// the series kept for that identity ([`calls`]).
    fn record_model_call(&self, call: &LlmCall, error: &'static str) {
        let id: calls::Identity<'_> = [
            &call.operation,
            call.provider.as_deref().unwrap_or(""),
            call.request_model.as_deref().unwrap_or(""),
            call.response_model.as_deref().unwrap_or(""),
            &call.service_name,
            call.environment.as_deref().unwrap_or(""),
            call.tenant.as_deref().unwrap_or(""),
        ];
        let resolved = self.calls.get(&id);
        let mut kept = resolved.as_deref().map(calls::Resolved::slots);
        let kept = &mut kept;
        let role = call.role.as_str();
        let labels = || vec![("llmhub_span_role", role.to_owned())];
        let spans = CallUpdate::Add(&self.spans_by_role, 1);
        self.update_call(kept, Instrument::ProcessorSpans, role, false, labels, spans);
        let base = || Self::genai_labels(call);
        // llmhub's own counters also carry the tenant (the configured tenant attribute, `tenant.id`
        // by default), under the same cardinality limits; the semantic-convention histograms keep
        // exactly their specified attributes.
        let own = || Self::with(base(), "llmhub_tenant", call.tenant.clone().unwrap_or_default());
        self.record_cost(call, kept, &base, &own);
        self.update_call(
            kept,
            Instrument::Requests,
            "",
            true,
            own,
            CallUpdate::Add(&self.requests, 1),
        );
        if !error.is_empty() {
            let labels = || Self::with(own(), "error_type", error);
            self.update_call(
                kept,
                Instrument::Errors,
                error,
                true,
                labels,
                CallUpdate::Add(&self.errors, 1),
            );
        }
        if let Some(d) = call.timings.duration_s {
            let labels = || Self::with(base(), "error_type", error);
            let metric = Instrument::OperationDuration;
            self.update_call(
                kept,
                metric,
                error,
                true,
                labels,
                CallUpdate::Observe(&self.duration, d),
            );
        }
        if let Some(t) = call.timings.ttft_s {
            let metric = Instrument::TimeToFirstChunk;
            self.update_call(kept, metric, "", true, base, CallUpdate::Observe(&self.ttfc, t));
            if call.timings.ttft_from_server {
                let metric = Instrument::ServerTimeToFirstToken;
                self.update_call(kept, metric, "", true, base, CallUpdate::Observe(&self.server_ttft, t));
            }
        }
        if let (Some(t), true) = (call.timings.tpot_s, call.timings.tpot_from_server) {
            let metric = Instrument::ServerTimePerOutputToken;
            self.update_call(kept, metric, "", true, base, CallUpdate::Observe(&self.server_tpot, t));
        }
        if let Some(t) = call.timings.output_tokens_per_s {
            self.update_call(
                kept,
                Instrument::OutputTokensPerSecond,
                "",
                true,
                base,
                CallUpdate::Observe(&self.tps, t),
            );
        }
        match (&call.usage, call.counts_usage) {
            (Some(u), true) => {
                for (kind, n) in [("input", u.input_total()), ("output", u.output_total())] {
                    let labels = || Self::with(base(), "gen_ai_token_type", kind);
                    let metric = Instrument::TokenUsage;
                    self.update_call(
                        kept,
                        metric,
                        kind,
                        true,
                        labels,
                        CallUpdate::Observe(&self.token_usage, n as f64),
                    );
                }
                for (bucket, n) in [
                    ("input_uncached", u.input_uncached),
                    ("cache_read", u.cache_read),
                    ("cache_write", u.cache_write),
                    ("cache_write_1h", u.cache_write_1h),
                    ("output", u.output),
                    ("reasoning", u.reasoning),
                ] {
                    let labels = || Self::with(own(), "llmhub_token_bucket", bucket);
                    self.update_call(
                        kept,
                        Instrument::Tokens,
                        bucket,
                        true,
                        labels,
                        CallUpdate::Add(&self.tokens, n),
                    );
                }
            }
            (None, true) => {
                let dialect = call.dialect.as_str();
                let labels = || Self::with(own(), "llmhub_dialect", dialect);
                self.update_call(
                    kept,
                    Instrument::UsageMissing,
                    dialect,
                    true,
                    labels,
                    CallUpdate::Add(&self.usage_missing, 1),
                );
            }
            _ => {}
        }
    }

    fn record_cost(&self, call: &LlmCall, kept: &mut Kept<'_>, base: &dyn Fn() -> Labels, own: &dyn Fn() -> Labels) {
        match call.price_status {
            PriceStatus::Priced => {
                if let Some(usd) = call.cost.as_ref().and_then(|c| c.total.to_f64()) {
                    self.cost_total_nano_usd
                        .fetch_add((usd * 1e9).round() as u64, Ordering::Relaxed);
                    self.update_call(
                        kept,
                        Instrument::CostUsd,
                        "",
                        true,
                        own,
                        CallUpdate::AddF(&self.cost, usd),
                    );
                }
            }
            PriceStatus::UnknownModel | PriceStatus::NoPriceAtDate => {
                let labels = vec![
                    ("gen_ai_provider_name", call.provider.clone().unwrap_or_default()),
                    ("gen_ai_request_model", call.request_model.clone().unwrap_or_default()),
                    ("gen_ai_response_model", call.response_model.clone().unwrap_or_default()),
                    ("service_name", call.service_name.clone()),
                    ("llmhub_price_status", call.price_status.as_str().to_owned()),
                    ("llmhub_tenant", call.tenant.clone().unwrap_or_default()),
                ];
                self.count(&self.unknown_price, Instrument::UnknownPrice, labels, 1);
            }
            PriceStatus::NotPriced | PriceStatus::NoUsage => {}
        }
        if let (Some(usd), true) = (call.sdk_reported_cost_usd, call.counts_usage) {
            let dialect = call.dialect.as_str();
            let labels = || Self::with(base(), "llmhub_dialect", dialect);
            let metric = Instrument::SdkReportedCost;
            self.update_call(
                kept,
                metric,
                dialect,
                true,
                labels,
                CallUpdate::AddF(&self.sdk_cost, usd),
            );
        }
    }

    /// Applies `update` to a model call's series of `metric` whose extra label has value `extra`:
    /// the kept handle when there is one, otherwise the series the general path resolves (through
    /// the cardinality limiter when `limited`), kept for next time when no limit stepped in. The
    /// OTLP mirror, when on, gets the same update with the labels.
    fn update_call(
        &self,
        kept: &mut Kept<'_>,
        metric: Instrument,
        extra: &'static str,
        limited: bool,
        labels: impl Fn() -> Labels,
        update: CallUpdate<'_>,
    ) {
        if let Some(h) = kept.as_mut().and_then(|k| k.find(metric.name(), extra)) {
            let l = self.otel.is_some().then(&labels);
            return self.apply(h, metric, l.as_ref(), &update);
        }
        let (l, clean) = if limited {
            self.admit_checked(metric, labels())
        } else {
            (labels(), true)
        };
        let h = match update {
            CallUpdate::Add(fam, _) => Handle::Count(fam.get_or_create(&l).clone()),
            CallUpdate::AddF(fam, _) => Handle::Float(fam.get_or_create(&l).clone()),
            CallUpdate::Observe(fam, _) => Handle::Hist(fam.get_or_create(&l).clone()),
        };
        self.apply(&h, metric, Some(&l), &update);
        if let (true, Some(k)) = (clean, kept.as_mut()) {
            k.push((metric.name(), extra, h));
        }
    }

    /// Applies `update` to a resolved series, and to its OTLP mirror given the labels.
    fn apply(&self, h: &Handle, metric: Instrument, labels: Option<&Labels>, update: &CallUpdate<'_>) {
        match (h, update) {
            (Handle::Count(c), CallUpdate::Add(_, n)) => {
                c.inc_by(*n);
            }
            (Handle::Float(c), CallUpdate::AddF(_, v)) => {
                c.inc_by(*v);
            }
            (Handle::Hist(hist), CallUpdate::Observe(_, v)) => hist.observe(*v),
            // A kept handle is found by its metric's name, which fixes its kind.
            _ => {}
        }
        if let (Some(o), Some(l)) = (&self.otel, labels) {
            match *update {
                CallUpdate::Add(_, n) => o.add(metric, l, n),
                CallUpdate::AddF(_, v) => o.add_f(metric, l, v),
                CallUpdate::Observe(_, v) => o.record(metric, l, v),
            }
        }
    }

    /// Records a duplicate emission.
    pub fn record_duplicate(&self, reason: DuplicateReason, service: &str) {
        let labels = vec![
            ("llmhub_duplicate_reason", reason.as_str().to_owned()),
            ("service_name", service.to_owned()),
        ];
        self.count(&self.duplicates, Instrument::DuplicateCalls, labels, 1);
    }

    /// Records spans received on a transport.
    pub fn record_received(&self, transport: Transport, n: u64) {
        self.count_unlimited(
            &self.spans_received,
            Instrument::ReceiverSpans,
            vec![("llmhub_transport", transport.as_str().to_owned())],
            n,
        );
    }

    /// Records accepted spans on a transport.
    pub fn record_accepted(&self, transport: Transport, n: u64) {
        self.accepted_total.fetch_add(n, Ordering::Relaxed);
        self.count_unlimited(
            &self.spans_accepted,
            Instrument::ReceiverSpansAccepted,
            vec![("llmhub_transport", transport.as_str().to_owned())],
            n,
        );
    }

    /// Records refused spans.
    pub fn record_refused(&self, reason: SpanRefusal, n: u64) {
        if n > 0 {
            self.count_unlimited(
                &self.spans_refused,
                Instrument::ReceiverSpansRefused,
                vec![("llmhub_reason", reason.as_str().to_owned())],
                n,
            );
        }
    }

    /// Records log records received on a transport, by what became of them.
    pub fn record_log_records(&self, transport: Transport, outcome: LogRecordOutcome, n: u64) {
        if n > 0 {
            self.count_unlimited(
                &self.log_records,
                Instrument::ReceiverLogRecords,
                vec![
                    ("llmhub_transport", transport.as_str().to_owned()),
                    ("llmhub_outcome", outcome.as_str().to_owned()),
                ],
                n,
            );
        }
    }

    /// Records a span read only in part (past a limit).
    pub fn record_limited(&self, reason: SpanLimit) {
        self.count_unlimited(
            &self.spans_limited,
            Instrument::ReceiverSpansLimited,
            vec![("llmhub_reason", reason.as_str().to_owned())],
            1,
        );
    }

    /// Records spans with no GenAI attributes.
    pub fn record_not_genai(&self, n: u64) {
        if n > 0 {
            self.count_unlimited(
                &self.spans_by_role,
                Instrument::ProcessorSpans,
                vec![("llmhub_span_role", "not_genai".to_owned())],
                n,
            );
        }
    }

    /// Records usage-like keys a span of `dialect` carried that nothing reads.
    pub fn record_unmapped(&self, dialect: Dialect, keys: &[String]) {
        for k in keys {
            let labels = vec![
                ("llmhub_dialect", dialect.as_str().to_owned()),
                ("llmhub_key", k.clone()),
            ];
            self.count(&self.unmapped, Instrument::UnmappedUsageKeys, labels, 1);
        }
    }

    /// Records normalization warnings and conflicts.
    pub fn record_normalization(&self, warnings: usize, conflicts: &[llmhub_core::keys::Field]) {
        self.warnings.inc_by(warnings as u64);
        for f in conflicts {
            self.count_unlimited(
                &self.conflicts,
                Instrument::ProcessorConflicts,
                vec![("llmhub_field", f.name().to_owned())],
                1,
            );
        }
    }

    /// Records the outcome of a request that was answered but not processed (metrics, logs).
    pub fn record_outcome(&self, transport: Transport, outcome: RequestOutcome) {
        self.count_unlimited(
            &self.requests_in,
            Instrument::ReceiverRequests,
            vec![
                ("llmhub_transport", transport.as_str().to_owned()),
                ("llmhub_outcome", outcome.as_str().to_owned()),
            ],
            1,
        );
    }

    /// Spans accepted since start, all transports (for progress displays).
    pub fn accepted_spans(&self) -> u64 {
        self.accepted_total.load(Ordering::Relaxed)
    }

    /// Catalog cost of all priced calls since start, in USD (rounded to the nano-dollar).
    pub fn cost_usd(&self) -> f64 {
        self.cost_total_nano_usd.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// Records one export request.
    pub fn record_request(&self, transport: Transport, outcome: RequestOutcome, seconds: f64) {
        self.count_unlimited(
            &self.requests_in,
            Instrument::ReceiverRequests,
            vec![
                ("llmhub_transport", transport.as_str().to_owned()),
                ("llmhub_outcome", outcome.as_str().to_owned()),
            ],
            1,
        );
        self.observe_unlimited(
            &self.request_duration,
            Instrument::RequestDuration,
            vec![("llmhub_transport", transport.as_str().to_owned())],
            seconds,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::genai::GenAiProcessor;
    use llmhub_testkit::{realistic_request, Restamp};
    use prost::Message;
    use std::sync::Arc;

    /// The exposition after processing `rounds` of realistic requests, lines sorted (families
    /// list their series in hash order).
    fn exposition(max_series: usize, max_values: usize, kept: usize, rounds: u64) -> Vec<String> {
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::new(&mut registry, max_series, max_values).keeping_call_series(kept));
        let matcher = crate::processors::pricing::matcher(&Default::default()).expect("built-in catalog");
        let p = GenAiProcessor::new(&Default::default(), matcher, metrics);
        let stamps: Vec<Restamp> = (0..4)
            .map(|seed| Restamp::new(&realistic_request(128, seed).encode_to_vec()))
            .collect();
        for round in 0..rounds {
            for s in &stamps {
                let body = s.round(round);
                let views = crate::receivers::otlp::wire::decode_request(&body).expect("decodes");
                p.process_views(&views, Transport::Grpc);
            }
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    }

    #[test]
    fn kept_call_series_change_no_figure() {
        // Roomy limits: every series kept after its first call.
        let kept = exposition(10_000, 1_000, calls::MAX_IDENTITIES, 3);
        assert_eq!(kept, exposition(10_000, 1_000, 0, 3));
        assert!(kept.iter().any(|l| l.starts_with("llmhub_tokens_total{")));
        // Tight limits: values and label sets overflow, and every overflow is still counted.
        let tight = exposition(12, 6, calls::MAX_IDENTITIES, 3);
        assert_eq!(tight, exposition(12, 6, 0, 3));
        let overflows: Vec<&String> = tight
            .iter()
            .filter(|l| l.starts_with("llmhub_cardinality_overflow_total{"))
            .collect();
        assert!(!overflows.is_empty(), "the tight limits overflow");
        // A table with room for a single identity: the rest take the general path beside it.
        assert_eq!(exposition(10_000, 1_000, 1, 2), exposition(10_000, 1_000, 0, 2));
    }
}

//! Every metric of the receivers and the processor, declared once ([`CATALOGUE`] and its
//! [`Instrument`] enum), with the histograms' buckets. [`all`] adds the exporters' own.

use super::process;

/// `gen_ai.client.token.usage` advisory buckets (semantic conventions v1.41).
pub const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];
/// `gen_ai.client.operation.duration` and `gen_ai.client.operation.time_to_first_chunk` buckets.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// `gen_ai.server.time_to_first_token` buckets.
pub const SERVER_TTFT_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// `gen_ai.server.time_per_output_token` buckets.
pub const SERVER_TPOT_BUCKETS: [f64; 13] = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5];
/// Buckets of llmhub's own request latency.
pub const REQUEST_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

use llmhub_server::catalogue::{Kind, MetricDef};

macro_rules! attrs {
    ($($extra:literal),*) => {
        &[
            "gen_ai.operation.name",
            "gen_ai.provider.name",
            "gen_ai.request.model",
            "gen_ai.response.model",
            "service.name",
            "deployment.environment.name",
            $($extra),*
        ]
    };
}

/// The attributes of every GenAI instrument.
const GENAI: &[&str] = attrs!();

llmhub_server::instruments! {
    /// Every instrument of the receivers and the processor; [`all`] adds the exporters' own.
    pub enum Instrument in CATALOGUE {
        TokenUsage => MetricDef { name: "gen_ai.client.token.usage", unit: "{token}", kind: Kind::Histogram, attributes: attrs!("gen_ai.token.type"),
            help: "Input and output tokens per model call (semantic conventions; reasoning is part of output, cache reads and writes part of input)." },
        OperationDuration => MetricDef { name: "gen_ai.client.operation.duration", unit: "s", kind: Kind::Histogram, attributes: attrs!("error.type"),
            help: "Duration of GenAI operations: model calls, agent invocations and tool executions (agent and tool steps always under `invoke_agent`, `create_agent` or `execute_tool`, whatever operation their span named)." },
        TimeToFirstChunk => MetricDef { name: "gen_ai.client.operation.time_to_first_chunk", unit: "s", kind: Kind::Histogram, attributes: GENAI,
            help: "Time to the first chunk of a streamed response, from any dialect's attribute or event." },
        ServerTimeToFirstToken => MetricDef { name: "gen_ai.server.time_to_first_token", unit: "s", kind: Kind::Histogram, attributes: GENAI,
            help: "Time to first token as reported by gen_ai.server.* span attributes (OpenLIT)." },
        ServerTimePerOutputToken => MetricDef { name: "gen_ai.server.time_per_output_token", unit: "s", kind: Kind::Histogram, attributes: GENAI,
            help: "Time per output token after the first, as reported by gen_ai.server.* span attributes (OpenLIT)." },
        Tokens => MetricDef { name: "llmhub.tokens", unit: "{token}", kind: Kind::Counter, attributes: attrs!("llmhub.tenant", "llmhub.token.bucket"),
            help: "Tokens of leaf model calls by disjoint bucket: input_uncached, cache_read, cache_write (5-minute or unspecified), cache_write_1h, output, reasoning." },
        Requests => MetricDef { name: "llmhub.requests", unit: "{request}", kind: Kind::Counter, attributes: attrs!("llmhub.tenant"),
            help: "Model calls, counted once each (duplicate emissions removed)." },
        Errors => MetricDef { name: "llmhub.errors", unit: "{request}", kind: Kind::Counter, attributes: attrs!("llmhub.tenant", "error.type"),
            help: "Failed model calls by error class (rate_limited, context_length_exceeded, content_filtered, timeout, auth, invalid_request, server_error, cancelled, other)." },
        UsageMissing => MetricDef { name: "llmhub.usage.missing", unit: "{request}", kind: Kind::Counter, attributes: attrs!("llmhub.tenant", "llmhub.dialect"),
            help: "Model calls whose span reported no (valid) token usage; never counted as zero tokens." },
        CostUsd => MetricDef { name: "llmhub.cost.usd", unit: "{USD}", kind: Kind::Counter, attributes: attrs!("llmhub.tenant"),
            help: "Cost of priced model calls in US dollars, from the price catalog (exact decimal per call in the record; summed here as a double)." },
        UnknownPrice => MetricDef { name: "llmhub.cost.unknown_price", unit: "{request}", kind: Kind::Counter, attributes: &["gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model", "service.name", "llmhub.price.status", "llmhub.tenant"],
            help: "Model calls with usage that the catalog cannot price (unknown_model, no_price_at_date): they have no cost, never a zero cost. `llmhub prices check` lists them." },
        SdkReportedCost => MetricDef { name: "llmhub.cost.sdk_reported.usd", unit: "{USD}", kind: Kind::Counter, attributes: attrs!("llmhub.dialect"),
            help: "Cost as reported by the instrumenting SDK (OpenLIT gen_ai.usage.cost, pydantic-ai operation.cost, Langfuse cost details), kept apart from catalog pricing for comparison." },
        OutputTokensPerSecond => MetricDef { name: "llmhub.output_tokens_per_second", unit: "{token}/s", kind: Kind::Histogram, attributes: GENAI,
            help: "Output tokens per second of generation time (after the first token when known)." },
        DuplicateCalls => MetricDef { name: "llmhub.calls.duplicate", unit: "{request}", kind: Kind::Counter, attributes: &["llmhub.duplicate.reason", "service.name"],
            help: "Model calls reported more than once (retried export, wrapper plus provider SDK) and counted once." },
        AgentDuration => MetricDef { name: "llmhub.agent.duration", unit: "s", kind: Kind::Histogram, attributes: &["gen_ai.agent.name", "service.name", "deployment.environment.name", "error.type"],
            help: "Duration of agent invocations; its count is the number of invocations." },
        ToolDuration => MetricDef { name: "llmhub.tool.duration", unit: "s", kind: Kind::Histogram, attributes: &["gen_ai.tool.name", "service.name", "deployment.environment.name", "error.type"],
            help: "Duration of tool executions; its count is the number of tool calls." },
        ReceiverSpans => MetricDef { name: "llmhub.receiver.spans", unit: "{span}", kind: Kind::Counter, attributes: &["llmhub.transport"],
            help: "Spans received, by transport (grpc, http_protobuf, http_json)." },
        ReceiverSpansAccepted => MetricDef { name: "llmhub.receiver.spans.accepted", unit: "{span}", kind: Kind::Counter, attributes: &["llmhub.transport"],
            help: "Spans accepted (all received spans minus those refused), by transport." },
        ReceiverSpansRefused => MetricDef { name: "llmhub.receiver.spans.refused", unit: "{span}", kind: Kind::Counter, attributes: &["llmhub.reason"],
            help: "Spans refused, by reason: invalid_span (reported back as rejected), queue_full, memory_limit (service.memory.limit_mib) and unavailable (the whole request answered with a retryable status), too_many_spans (a request past receivers.otlp.limits.max_spans_per_request, refused whole and final)." },
        ReceiverLogRecords => MetricDef { name: "llmhub.receiver.log_records", unit: "{log_record}", kind: Kind::Counter, attributes: &["llmhub.transport", "llmhub.outcome"],
            help: "OTLP log records received, by transport and outcome: read (a GenAI event made a record, e.g. claude_code.api_request), not_genai (accepted, not read), invalid (reported back as rejected), refused (the whole request answered with a retryable or final error)." },
        ReceiverSpansLimited => MetricDef { name: "llmhub.receiver.spans.limited", unit: "{span}", kind: Kind::Counter, attributes: &["llmhub.reason"],
            help: "Spans read only in part because they passed a limit, by reason: attributes_per_span, events_per_span (receivers.otlp.limits)." },
        ProcessorSpans => MetricDef { name: "llmhub.processor.spans", unit: "{span}", kind: Kind::Counter, attributes: &["llmhub.span.role"],
            help: "Accepted spans by what they describe: model_call, agent, tool, workflow, or not_genai (passed over)." },
        ProcessorWarnings => MetricDef { name: "llmhub.processor.warnings", unit: "{warning}", kind: Kind::Counter, attributes: &[],
            help: "Values ignored or cut during normalization (absurd token counts, invalid durations, oversized strings)." },
        ProcessorConflicts => MetricDef { name: "llmhub.processor.conflicts", unit: "{span}", kind: Kind::Counter, attributes: &["llmhub.field"],
            help: "Spans where two dialect keys for one field disagreed; the documented precedence decided." },
        UnmappedUsageKeys => MetricDef { name: "llmhub.processor.unmapped_usage_keys", unit: "{attribute}", kind: Kind::Counter, attributes: &["llmhub.dialect", "llmhub.key"],
            help: "Usage-like attribute keys (token, usage or cost in the name) on GenAI spans that llmhub does not read, by dialect and key (cardinality-limited): an instrumentation's rename shows here before it shows in a bill. Totals and per-modality subsets are read on purpose as nothing (docs/normalization.md)." },
        ReceiverRequests => MetricDef { name: "llmhub.receiver.requests", unit: "{request}", kind: Kind::Counter, attributes: &["llmhub.transport", "llmhub.outcome"],
            help: "Export requests by transport and outcome (ok, partial, invalid, unsupported, too_large, unauthenticated: no or a wrong API key, refused: a full or closing exporter queue, memory_limit: past service.memory.limit_mib; both answered with a retryable status)." },
        RequestDuration => MetricDef { name: "llmhub.receiver.request.duration", unit: "s", kind: Kind::Histogram, attributes: &["llmhub.transport"],
            help: "Time to decode and process one export request." },
        CardinalityOverflow => MetricDef { name: "llmhub.cardinality.overflow", unit: "{event}", kind: Kind::Counter, attributes: &["llmhub.metric", "llmhub.label"],
            help: "Label values or label sets replaced by __overflow__ because a cardinality limit was reached." },
    }
}

/// Every metric llmhub can expose: [`CATALOGUE`] and the exporters' own (the PostgreSQL sink's
/// and the forwarder's appear only when those exporters run).
pub fn all() -> impl Iterator<Item = &'static MetricDef> {
    CATALOGUE
        .iter()
        .chain(llmhub_exporters::postgres::metrics::METRICS)
        .chain(llmhub_exporters::forward::METRICS)
        .chain(llmhub_server::budget::METRICS)
        .chain(process::METRICS)
}

/// Output-tokens-per-second buckets.
pub const TPS_BUCKETS: [f64; 13] = [
    1.0, 5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 150.0, 200.0, 300.0, 500.0, 1000.0,
];

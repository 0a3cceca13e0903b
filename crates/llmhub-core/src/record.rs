//! The canonical LLM call record: one per model call (or agent/tool step), whatever dialect it was
//! read from. Every exporter and the SQL extension consume this shape.

use crate::dialect::Dialect;
use rust_decimal::Decimal;

/// What a span describes, decided from the dialect's span-kind markers and the operation name.
///
/// Only [`SpanRole::ModelCall`] spans count tokens: agent, workflow and chain spans often carry the
/// sum of their children's usage, and counting it again would double every figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanRole {
    /// A leaf call to a model (chat, completion, embeddings, ...). Its usage counts.
    #[default]
    ModelCall,
    /// An agent invocation (`invoke_agent`, OpenInference `AGENT`, ...). Usage, if any, is an aggregate.
    Agent,
    /// A tool execution (`execute_tool`, OpenInference `TOOL`, ...).
    Tool,
    /// A workflow, chain or task that groups other steps. Usage, if any, is an aggregate.
    Workflow,
}

impl SpanRole {
    /// Every role, in declaration order.
    pub const ALL: [SpanRole; 4] = [SpanRole::ModelCall, SpanRole::Agent, SpanRole::Tool, SpanRole::Workflow];

    /// Stable lower-case name used in metrics and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanRole::ModelCall => "model_call",
            SpanRole::Agent => "agent",
            SpanRole::Tool => "tool",
            SpanRole::Workflow => "workflow",
        }
    }
}

/// The class of a failed call, derived from span status, `error.type`, exception events, HTTP
/// status codes and finish reasons. See `docs/normalization.md` for the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// HTTP 429, provider rate limit or quota errors.
    RateLimited,
    /// The prompt did not fit the model's context window.
    ContextLengthExceeded,
    /// The provider's safety system blocked the request or the response.
    ContentFiltered,
    /// Client or server timeout.
    Timeout,
    /// Authentication or permission failure (401/403).
    Auth,
    /// The request was rejected as invalid (400/404/422).
    InvalidRequest,
    /// Provider-side failure (5xx, overloaded).
    ServerError,
    /// The caller cancelled the request.
    Cancelled,
    /// An error that matched no other class.
    Other,
}

impl ErrorClass {
    /// All classes, in documentation order.
    pub const ALL: [ErrorClass; 9] = [
        ErrorClass::RateLimited,
        ErrorClass::ContextLengthExceeded,
        ErrorClass::ContentFiltered,
        ErrorClass::Timeout,
        ErrorClass::Auth,
        ErrorClass::InvalidRequest,
        ErrorClass::ServerError,
        ErrorClass::Cancelled,
        ErrorClass::Other,
    ];

    /// Stable snake_case name used in metrics and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::ContextLengthExceeded => "context_length_exceeded",
            ErrorClass::ContentFiltered => "content_filtered",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Auth => "auth",
            ErrorClass::InvalidRequest => "invalid_request",
            ErrorClass::ServerError => "server_error",
            ErrorClass::Cancelled => "cancelled",
            ErrorClass::Other => "other",
        }
    }
}

/// Token usage in disjoint buckets: every token is in exactly one bucket, so sums never count a
/// token twice, whatever convention the instrumentation used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Usage {
    /// Input tokens read neither from nor into the provider's prompt cache.
    pub input_uncached: u64,
    /// Input tokens served from the prompt cache.
    pub cache_read: u64,
    /// Input tokens written into the prompt cache for the default (5-minute) lifetime, or with
    /// no lifetime reported.
    pub cache_write: u64,
    /// Input tokens written into the prompt cache for one hour (Anthropic's extended lifetime),
    /// when the instrumentation reports the split.
    pub cache_write_1h: u64,
    /// Output tokens that are not reasoning tokens.
    pub output: u64,
    /// Reasoning ("thinking") output tokens.
    pub reasoning: u64,
}

impl Usage {
    /// All input tokens: uncached + cache read + cache writes.
    pub fn input_total(&self) -> u64 {
        self.input_uncached
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
            .saturating_add(self.cache_write_1h)
    }

    /// All output tokens: visible output + reasoning.
    pub fn output_total(&self) -> u64 {
        self.output.saturating_add(self.reasoning)
    }

    /// Input plus output.
    pub fn total(&self) -> u64 {
        self.input_total().saturating_add(self.output_total())
    }
}

/// Durations derived for a call. All in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timings {
    /// End minus start of the span; `None` when the span's times are invalid (end before start).
    pub duration_s: Option<f64>,
    /// Time to first token (or first chunk) of a streamed response.
    pub ttft_s: Option<f64>,
    /// Time per output token after the first: (duration - ttft) / (output tokens - 1).
    pub tpot_s: Option<f64>,
    /// Output tokens (including reasoning) per second of generation time.
    pub output_tokens_per_s: Option<f64>,
    /// True when the time to first token came from a `gen_ai.server.*` attribute (OpenLIT); it then
    /// also feeds the `gen_ai.server.time_to_first_token` instrument.
    pub ttft_from_server: bool,
    /// True when the time per output token came from a `gen_ai.server.*` attribute.
    pub tpot_from_server: bool,
}

/// Agent, workflow and tool context of a span.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentContext {
    /// `gen_ai.agent.id`.
    pub agent_id: Option<String>,
    /// `gen_ai.agent.name` or the dialect's equivalent.
    pub agent_name: Option<String>,
    /// Workflow or chain name (`traceloop.workflow.name`, Vercel `ai.telemetry.functionId`, ...).
    pub workflow_name: Option<String>,
    /// `gen_ai.conversation.id` or a session id.
    pub conversation_id: Option<String>,
    /// Tool name for tool spans.
    pub tool_name: Option<String>,
    /// Tool call id for tool spans.
    pub tool_call_id: Option<String>,
}

/// Status of the span as OTLP reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CallStatus {
    /// Status unset.
    #[default]
    Unset,
    /// Status OK.
    Ok,
    /// Status ERROR (or an error derived from attributes).
    Error,
}

impl CallStatus {
    /// Every status, in declaration order.
    pub const ALL: [CallStatus; 3] = [CallStatus::Unset, CallStatus::Ok, CallStatus::Error];

    /// Stable lower-case name used in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Unset => "unset",
            CallStatus::Ok => "ok",
            CallStatus::Error => "error",
        }
    }
}

/// Cost of one call in USD, exact decimal, per bucket and in total, with what priced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCost {
    /// Sum of every component.
    pub total: Decimal,
    /// Uncached input tokens.
    pub input_uncached: Decimal,
    /// Cache-read input tokens.
    pub cache_read: Decimal,
    /// Cache-write input tokens (5-minute or unspecified lifetime).
    pub cache_write: Decimal,
    /// One-hour cache-write input tokens.
    pub cache_write_1h: Decimal,
    /// Visible output tokens.
    pub output: Decimal,
    /// Reasoning tokens.
    pub reasoning: Decimal,
    /// Per-request fee.
    pub request: Decimal,
    /// Version of the catalog that priced the call.
    pub catalog_version: String,
    /// The matched rule: how the model name was found, e.g. `exact openai/gpt-4o`.
    pub rule: String,
}

/// Whether and how a call was priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PriceStatus {
    /// Not (yet) priced: agent, tool and workflow spans, or pricing not run.
    #[default]
    NotPriced,
    /// Priced from the catalog; `cost` holds the figures.
    Priced,
    /// The call reported no usage, so nothing can be priced (never priced as zero).
    NoUsage,
    /// No model name, or the model matches no catalog entry.
    UnknownModel,
    /// The model is in the catalog but has no price for the call's date.
    NoPriceAtDate,
}

impl PriceStatus {
    /// Every status, in declaration order.
    pub const ALL: [PriceStatus; 5] = [
        PriceStatus::NotPriced,
        PriceStatus::Priced,
        PriceStatus::NoUsage,
        PriceStatus::UnknownModel,
        PriceStatus::NoPriceAtDate,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PriceStatus::NotPriced => "not_priced",
            PriceStatus::Priced => "priced",
            PriceStatus::NoUsage => "no_usage",
            PriceStatus::UnknownModel => "unknown_model",
            PriceStatus::NoPriceAtDate => "no_price_at_date",
        }
    }
}

/// The canonical record of one model call (or one agent or tool step). `Default` gives an empty
/// model call, for tests and builders.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmCall {
    /// 16-byte trace id.
    pub trace_id: [u8; 16],
    /// 8-byte span id.
    pub span_id: [u8; 8],
    /// Parent span id, when the span has one.
    pub parent_span_id: Option<[u8; 8]>,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End time, nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,

    /// Tenant, from the configured resource or span attribute.
    pub tenant: Option<String>,
    /// `service.name` of the resource (`unknown_service` when absent, as the SDKs default).
    pub service_name: String,
    /// Deployment environment (`deployment.environment.name`, older `deployment.environment`, ...).
    pub environment: Option<String>,
    /// The dialect the span was read from.
    pub dialect: Dialect,
    /// Instrumentation scope name, used to tell two instrumentations of one call apart.
    pub scope_name: String,

    /// What the span describes.
    pub role: SpanRole,
    /// Operation name in OpenTelemetry terms (`chat`, `embeddings`, `execute_tool`, ...).
    pub operation: String,
    /// Provider, mapped to the current well-known `gen_ai.provider.name` value.
    pub provider: Option<String>,
    /// The model the caller asked for.
    pub request_model: Option<String>,
    /// The model the provider says answered.
    pub response_model: Option<String>,
    /// Response model if known, else request model; lower-cased, provider prefix removed.
    pub normalized_model: Option<String>,
    /// The provider's response id (`chatcmpl-...`, `msg_...`), used to find duplicate emissions.
    pub response_id: Option<String>,
    /// Whether the response was streamed, when the instrumentation says.
    pub streaming: Option<bool>,
    /// Finish reasons, one per choice.
    pub finish_reasons: Vec<String>,
    /// Span status.
    pub status: CallStatus,
    /// Error class, when the call failed.
    pub error_class: Option<ErrorClass>,
    /// The raw error type (`error.type`, exception type or HTTP status), when the call failed.
    pub error_type: Option<String>,
    /// `server.address`.
    pub server_address: Option<String>,
    /// `server.port`.
    pub server_port: Option<u16>,

    /// Token usage; `None` when the span reported no usage at all (never read as zero).
    pub usage: Option<Usage>,
    /// Whether this span's usage counts. False for aggregate spans (agents, workflows) whose usage
    /// sums their children.
    pub counts_usage: bool,
    /// Durations.
    pub timings: Timings,
    /// Cost in USD as reported by the instrumenting SDK (OpenLIT `gen_ai.usage.cost`, ...). Kept apart
    /// from catalog pricing and never used in its place.
    pub sdk_reported_cost_usd: Option<f64>,

    /// Service tier the provider served the call in (`default`, `flex`, `priority`, `batch`...).
    pub service_tier: Option<String>,
    /// Cost from the price catalog; `None` unless `price_status` is `Priced`.
    pub cost: Option<CallCost>,
    /// Whether the call was priced, and if not why.
    pub price_status: PriceStatus,

    /// Agent, workflow and tool context.
    pub agent: AgentContext,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

impl CallCost {
    /// The cost as JSON: amounts as exact decimal strings.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "total": self.total.to_string(),
            "input_uncached": self.input_uncached.to_string(),
            "cache_read": self.cache_read.to_string(),
            "cache_write": self.cache_write.to_string(),
            "cache_write_1h": self.cache_write_1h.to_string(),
            "output": self.output.to_string(),
            "reasoning": self.reasoning.to_string(),
            "request": self.request.to_string(),
            "catalog_version": self.catalog_version,
            "rule": self.rule,
        })
    }
}

impl LlmCall {
    /// The record as JSON, fields in a fixed order, ids in lowercase hex. Used by golden files and
    /// debugging output; the database sink writes the same fields.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let usage = self.usage.map(|u| {
            json!({
                "input_uncached": u.input_uncached,
                "cache_read": u.cache_read,
                "cache_write": u.cache_write,
                "cache_write_1h": u.cache_write_1h,
                "output": u.output,
                "reasoning": u.reasoning,
            })
        });
        let t = &self.timings;
        json!({
            "trace_id": hex(&self.trace_id),
            "span_id": hex(&self.span_id),
            "parent_span_id": self.parent_span_id.map(|p| hex(&p)),
            "start_unix_nano": self.start_unix_nano,
            "end_unix_nano": self.end_unix_nano,
            "tenant": self.tenant,
            "service_name": self.service_name,
            "environment": self.environment,
            "dialect": self.dialect.as_str(),
            "scope_name": self.scope_name,
            "role": self.role.as_str(),
            "operation": self.operation,
            "provider": self.provider,
            "request_model": self.request_model,
            "response_model": self.response_model,
            "normalized_model": self.normalized_model,
            "response_id": self.response_id,
            "streaming": self.streaming,
            "finish_reasons": self.finish_reasons,
            "status": self.status.as_str(),
            "error_class": self.error_class.map(|c| c.as_str()),
            "error_type": self.error_type,
            "server_address": self.server_address,
            "server_port": self.server_port,
            "usage": usage,
            "counts_usage": self.counts_usage,
            "duration_s": t.duration_s,
            "ttft_s": t.ttft_s,
            "tpot_s": t.tpot_s,
            "output_tokens_per_s": t.output_tokens_per_s,
            "ttft_from_server": t.ttft_from_server,
            "tpot_from_server": t.tpot_from_server,
            "sdk_reported_cost_usd": self.sdk_reported_cost_usd,
            "service_tier": self.service_tier,
            "price_status": self.price_status.as_str(),
            "cost": self.cost.as_ref().map(CallCost::to_json),
            "agent_id": self.agent.agent_id,
            "agent_name": self.agent.agent_name,
            "workflow_name": self.agent.workflow_name,
            "conversation_id": self.agent.conversation_id,
            "tool_name": self.agent.tool_name,
            "tool_call_id": self.agent.tool_call_id,
        })
    }
}

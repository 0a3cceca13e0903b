//! The attribute table: every GenAI attribute key llmhub reads, the canonical field it fills, and
//! its precedence. When two keys for one field disagree inside a span, the lower rank wins.
//!
//! This table is the single source of the dialect documentation: `docs/normalization.md` is checked
//! against it by a test, so the docs cannot drift from the code.

use crate::dialect::Dialect;
// Keyed (DoS-resistant) and several times faster than SipHash for short keys.
use ahash::AHashMap as HashMap;
use std::sync::OnceLock;

/// A field of the canonical record that one or more attribute keys fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Provider name (mapped to the well-known `gen_ai.provider.name` values).
    Provider,
    /// Requested model.
    RequestModel,
    /// Responding model.
    ResponseModel,
    /// Provider response id.
    ResponseId,
    /// Operation name.
    Operation,
    /// Input tokens (inclusive or exclusive of cache, per the dialect's convention).
    InputTokens,
    /// Output tokens (including reasoning).
    OutputTokens,
    /// Input tokens read from cache.
    CacheReadTokens,
    /// Input tokens written to cache (all lifetimes).
    CacheWriteTokens,
    /// Of the cache writes, those with a one-hour lifetime (structured keys only).
    CacheWrite1hTokens,
    /// Reasoning output tokens.
    ReasoningTokens,
    /// Whether the response was streamed.
    Streaming,
    /// Time to first token or chunk.
    Ttft,
    /// Time per output token.
    Tpot,
    /// Finish reasons.
    FinishReasons,
    /// Error type.
    ErrorType,
    /// HTTP response status code.
    HttpStatus,
    /// Server address.
    ServerAddress,
    /// Server port.
    ServerPort,
    /// Agent id.
    AgentId,
    /// Agent name.
    AgentName,
    /// Workflow name.
    WorkflowName,
    /// Conversation or session id.
    ConversationId,
    /// Tool name.
    ToolName,
    /// Tool call id.
    ToolCallId,
    /// Cost reported by the SDK, in USD.
    SdkCost,
    /// Deployment environment set on the span.
    Environment,
    /// Service tier (`default`, `flex`, `priority`, `batch`).
    ServiceTier,
}

/// Number of [`Field`] variants.
pub const FIELD_COUNT: usize = 28;

impl Field {
    /// Index into per-field arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Name used in docs and conflict messages.
    pub fn name(self) -> &'static str {
        match self {
            Field::Provider => "provider",
            Field::RequestModel => "request_model",
            Field::ResponseModel => "response_model",
            Field::ResponseId => "response_id",
            Field::Operation => "operation",
            Field::InputTokens => "input_tokens",
            Field::OutputTokens => "output_tokens",
            Field::CacheReadTokens => "cache_read_tokens",
            Field::CacheWriteTokens => "cache_write_tokens",
            Field::CacheWrite1hTokens => "cache_write_1h_tokens",
            Field::ReasoningTokens => "reasoning_tokens",
            Field::Streaming => "streaming",
            Field::Ttft => "time_to_first_token",
            Field::Tpot => "time_per_output_token",
            Field::FinishReasons => "finish_reasons",
            Field::ErrorType => "error_type",
            Field::HttpStatus => "http_status",
            Field::ServerAddress => "server_address",
            Field::ServerPort => "server_port",
            Field::AgentId => "agent_id",
            Field::AgentName => "agent_name",
            Field::WorkflowName => "workflow_name",
            Field::ConversationId => "conversation_id",
            Field::ToolName => "tool_name",
            Field::ToolCallId => "tool_call_id",
            Field::SdkCost => "sdk_reported_cost_usd",
            Field::Environment => "environment",
            Field::ServiceTier => "service_tier",
        }
    }
}

/// How a key's value is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Taken as is (seconds for durations).
    Plain,
    /// Milliseconds, converted to seconds.
    Millis,
}

/// One row of the attribute table.
#[derive(Debug, Clone, Copy)]
pub struct KeyRule {
    /// The attribute key, exactly as emitted.
    pub key: &'static str,
    /// The canonical field it fills.
    pub field: Field,
    /// Precedence among keys for the same field: lower wins.
    pub rank: u8,
    /// Value conversion.
    pub unit: Unit,
    /// The dialect that defines the key (several dialects reuse OpenTelemetry keys).
    pub dialect: Dialect,
}

const fn rule(key: &'static str, field: Field, rank: u8, dialect: Dialect) -> KeyRule {
    KeyRule {
        key,
        field,
        rank,
        unit: Unit::Plain,
        dialect,
    }
}

const fn millis(key: &'static str, field: Field, rank: u8, dialect: Dialect) -> KeyRule {
    KeyRule {
        key,
        field,
        rank,
        unit: Unit::Millis,
        dialect,
    }
}

use Dialect::{Langfuse as LF, OpenInference as OI, OpenLit as OL, OpenLlmetry as TL, OtelGenAi as OT};
use Dialect::{PydanticAi as PY, VercelAi as VA};
use Field::*;

/// Every plain attribute key llmhub reads. Keys whose values need parsing (Langfuse JSON usage,
/// OpenInference invocation parameters, timestamps, indexed keys, span events) are handled in
/// `normalize.rs` and listed in `docs/normalization.md` under "Structured keys".
pub static KEY_RULES: &[KeyRule] = &[
    // Provider
    rule("gen_ai.provider.name", Provider, 0, OT),
    rule("gen_ai.system", Provider, 1, OT),
    rule("llm.provider", Provider, 2, OI),
    rule("llm.system", Provider, 3, OI),
    rule("ai.model.provider", Provider, 4, VA),
    rule("langfuse.observation.model.provider", Provider, 5, LF),
    // Models
    rule("gen_ai.request.model", RequestModel, 0, OT),
    rule("llm.model_name", RequestModel, 1, OI),
    rule("embedding.model_name", RequestModel, 2, OI),
    rule("ai.model.id", RequestModel, 3, VA),
    rule("langfuse.observation.model.name", RequestModel, 4, LF),
    rule("model_name", RequestModel, 5, PY),
    rule("llm.request.model_name", RequestModel, 6, OI),
    rule("gen_ai.response.model", ResponseModel, 0, OT),
    rule("ai.response.model", ResponseModel, 1, VA),
    rule("llm.response.model_name", ResponseModel, 2, OI),
    rule("gen_ai.response.id", ResponseId, 0, OT),
    rule("ai.response.id", ResponseId, 1, VA),
    // Operation
    rule("gen_ai.operation.name", Operation, 0, OT),
    rule("llm.request.type", Operation, 1, TL),
    // Input tokens
    rule("gen_ai.usage.input_tokens", InputTokens, 0, OT),
    rule("gen_ai.usage.prompt_tokens", InputTokens, 1, OT),
    rule("llm.token_count.prompt", InputTokens, 2, OI),
    rule("llm.usage.prompt_tokens", InputTokens, 3, TL),
    rule("ai.usage.inputTokens", InputTokens, 4, VA),
    rule("ai.usage.promptTokens", InputTokens, 5, VA),
    rule("ai.usage.tokens", InputTokens, 6, VA),
    // Output tokens
    rule("gen_ai.usage.output_tokens", OutputTokens, 0, OT),
    rule("gen_ai.usage.completion_tokens", OutputTokens, 1, OT),
    rule("llm.token_count.completion", OutputTokens, 2, OI),
    rule("llm.usage.completion_tokens", OutputTokens, 3, TL),
    rule("ai.usage.outputTokens", OutputTokens, 4, VA),
    rule("ai.usage.completionTokens", OutputTokens, 5, VA),
    // Cache read
    rule("gen_ai.usage.cache_read.input_tokens", CacheReadTokens, 0, OT),
    rule("gen_ai.usage.cache_read_input_tokens", CacheReadTokens, 1, TL),
    rule("llm.token_count.prompt_details.cache_read", CacheReadTokens, 2, OI),
    rule("ai.usage.inputTokenDetails.cacheReadTokens", CacheReadTokens, 3, VA),
    rule("ai.usage.cachedInputTokens", CacheReadTokens, 4, VA),
    rule("gen_ai.usage.details.cache_read_tokens", CacheReadTokens, 5, PY),
    rule("gen_ai.usage.details.cache_read_input_tokens", CacheReadTokens, 6, PY),
    // Cache write
    // (`cache_write` is the GenAI conventions' name since semantic-conventions-genai PR #440;
    // `cache_creation` the v1.41 one, which the Anthropic SDK 2.x no longer emits.)
    rule("gen_ai.usage.cache_write.input_tokens", CacheWriteTokens, 0, OT),
    rule("gen_ai.usage.cache_creation.input_tokens", CacheWriteTokens, 1, OT),
    rule("gen_ai.usage.cache_creation_input_tokens", CacheWriteTokens, 2, TL),
    rule("llm.token_count.prompt_details.cache_write", CacheWriteTokens, 3, OI),
    rule("ai.usage.inputTokenDetails.cacheWriteTokens", CacheWriteTokens, 4, VA),
    rule("gen_ai.usage.details.cache_write_tokens", CacheWriteTokens, 5, PY),
    rule(
        "gen_ai.usage.details.cache_creation_input_tokens",
        CacheWriteTokens,
        6,
        PY,
    ),
    // One-hour cache writes (Anthropic SDK 2.x spans: the 5-minute part is the rest of the writes)
    rule(
        "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",
        CacheWrite1hTokens,
        0,
        OT,
    ),
    // Reasoning
    rule("gen_ai.usage.reasoning.output_tokens", ReasoningTokens, 0, OT),
    rule("gen_ai.usage.reasoning_tokens", ReasoningTokens, 1, TL),
    rule("llm.token_count.completion_details.reasoning", ReasoningTokens, 2, OI),
    rule("ai.usage.outputTokenDetails.reasoningTokens", ReasoningTokens, 3, VA),
    rule("ai.usage.reasoningTokens", ReasoningTokens, 4, VA),
    rule("gen_ai.usage.details.reasoning_tokens", ReasoningTokens, 5, PY),
    // Streaming
    rule("gen_ai.request.stream", Streaming, 0, OT),
    rule("gen_ai.is_streaming", Streaming, 1, TL),
    rule("llm.is_streaming", Streaming, 2, TL),
    rule("gen_ai.request.is_stream", Streaming, 3, OL),
    // Time to first token
    rule("gen_ai.response.time_to_first_chunk", Ttft, 0, OT),
    rule("gen_ai.client.operation.time_to_first_chunk", Ttft, 1, PY),
    rule("gen_ai.server.time_to_first_token", Ttft, 2, OL),
    rule("gen_ai.server.ttft", Ttft, 3, OL),
    millis("ai.response.msToFirstChunk", Ttft, 4, VA),
    millis("ai.stream.msToFirstChunk", Ttft, 5, VA),
    // Time per output token
    rule("gen_ai.server.time_per_output_token", Tpot, 0, OL),
    rule("gen_ai.server.tbt", Tpot, 1, OL),
    // Finish reasons
    rule("gen_ai.response.finish_reasons", FinishReasons, 0, OT),
    rule("ai.response.finishReason", FinishReasons, 1, VA),
    rule("llm.response.finish_reason", FinishReasons, 2, TL),
    rule("llm.finish_reason", FinishReasons, 3, OI),
    // Errors
    rule("error.type", ErrorType, 0, OT),
    rule("http.response.status_code", HttpStatus, 0, OT),
    rule("http.status_code", HttpStatus, 1, OT),
    // Server
    rule("server.address", ServerAddress, 0, OT),
    rule("server.port", ServerPort, 0, OT),
    // Agents, workflows, tools
    rule("gen_ai.agent.id", AgentId, 0, OT),
    rule("gen_ai.agent.name", AgentName, 0, OT),
    rule("agent_name", AgentName, 1, PY),
    rule("agent.name", AgentName, 2, OI),
    rule("gen_ai.workflow.name", WorkflowName, 0, OT),
    rule("traceloop.workflow.name", WorkflowName, 1, TL),
    rule("ai.telemetry.functionId", WorkflowName, 2, VA),
    rule("langfuse.trace.name", WorkflowName, 3, LF),
    rule("gen_ai.conversation.id", ConversationId, 0, OT),
    rule("session.id", ConversationId, 1, OI),
    rule("langfuse.session.id", ConversationId, 2, LF),
    rule("gen_ai.tool.name", ToolName, 0, OT),
    rule("tool.name", ToolName, 1, OI),
    rule("ai.toolCall.name", ToolName, 2, VA),
    rule("gen_ai.tool.call.id", ToolCallId, 0, OT),
    rule("ai.toolCall.id", ToolCallId, 1, VA),
    // SDK-reported cost
    rule("gen_ai.usage.cost", SdkCost, 0, OL),
    rule("operation.cost", SdkCost, 1, PY),
    rule("llm.cost.total", SdkCost, 2, OI),
    rule("gen_ai.cost.total_cost", SdkCost, 3, TL),
    // Environment on the span (the resource's deployment.environment.name comes first)
    rule("deployment.environment.name", Environment, 0, OT),
    rule("deployment.environment", Environment, 1, OL),
    rule("gen_ai.environment", Environment, 2, OL),
    rule("langfuse.environment", Environment, 3, LF),
    // Service tier (the served tier wins over the requested one)
    rule("openai.response.service_tier", ServiceTier, 0, OT),
    rule("gen_ai.openai.response.service_tier", ServiceTier, 1, OT),
    rule("openai.request.service_tier", ServiceTier, 2, OT),
    rule("gen_ai.openai.request.service_tier", ServiceTier, 3, OT),
    rule("gen_ai.usage.service_tier", ServiceTier, 4, OT),
];

/// Usage-like keys llmhub knows and deliberately does not bucket: totals (the sum of buckets read
/// elsewhere), per-modality breakdowns (subsets of the totals: a text, image or audio token is
/// priced as an input or output token of its kind), and the context of a reported cost. They are
/// not drift ([`is_unmapped_usage_key`]).
pub static KNOWN_UNBUCKETED: &[&str] = &[
    "gen_ai.usage.total_tokens",
    "llm.usage.total_tokens",
    "llm.token_count.total",
    "ai.usage.totalTokens",
    "ai.usage.inputTokenDetails.noCacheTokens",
    "ai.usage.outputTokenDetails.textTokens",
    "gen_ai.usage.text.input_tokens",
    "gen_ai.usage.text.output_tokens",
    "gen_ai.usage.text.cache_read.input_tokens",
    "gen_ai.usage.image.input_tokens",
    "gen_ai.usage.image.output_tokens",
    "gen_ai.usage.image.cache_read.input_tokens",
    "gen_ai.usage.audio.input_tokens",
    "gen_ai.usage.audio.output_tokens",
    "gen_ai.usage.audio.cache_read.input_tokens",
    "llm.token_count.prompt_details.audio",
    "llm.token_count.completion_details.audio",
    "gen_ai.usage.cost.currency",
    "gen_ai.usage.cost.source",
    "gen_ai.request.max_tokens",
    "gen_ai.openai.request.max_tokens",
    "llm.request.max_tokens",
    "ai.settings.maxOutputTokens",
    "ai.settings.maxTokens",
    "anthropic.usage.cache_creation.ephemeral_5m_input_tokens",
    "gen_ai.usage.details.audio_tokens",
    "gen_ai.usage.details.accepted_prediction_tokens",
    "gen_ai.usage.details.rejected_prediction_tokens",
    "metadata.used_client_oauth_token",
];

/// Key prefixes of the same kind as [`KNOWN_UNBUCKETED`]: agent-level sums of their calls'
/// usage (pydantic-ai `gen_ai.aggregated_usage.*`), and the parts of a reported cost
/// (LiteLLM `gen_ai.cost.*` beside the `gen_ai.cost.total_cost` read as the SDK's cost).
pub static KNOWN_UNBUCKETED_PREFIXES: &[&str] = &["gen_ai.aggregated_usage.", "gen_ai.cost."];

/// Whether `key`, read from a GenAI span and absent from [`KEY_RULES`] and the structured keys,
/// looks like usage or cost (`token`, `usage` or `cost` in its name) without being one of
/// [`KNOWN_UNBUCKETED`]: an instrumentation reporting usage under a name llmhub does not read
/// (a rename upstream), counted per dialect so that it shows in a scrape before it shows in a bill.
pub fn is_unmapped_usage_key(key: &str) -> bool {
    usage_like(key.as_bytes())
        && !KNOWN_UNBUCKETED.contains(&key)
        && !KNOWN_UNBUCKETED_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Whether `token`, `usage` or `cost` occurs in `b`, any case: one pass over the bytes (this runs
/// for every attribute key no rule reads, content keys mostly).
fn usage_like(b: &[u8]) -> bool {
    let at = |i: usize, word: &[u8]| b.get(i..i + word.len()).is_some_and(|w| w.eq_ignore_ascii_case(word));
    (0..b.len()).any(|i| match b[i] | 0x20 {
        b't' => at(i, b"token"),
        b'u' => at(i, b"usage"),
        b'c' => at(i, b"cost"),
        _ => false,
    })
}

/// The table as a map from key to rule, built once.
pub fn rules_by_key() -> &'static HashMap<&'static str, KeyRule> {
    static MAP: OnceLock<HashMap<&'static str, KeyRule>> = OnceLock::new();
    MAP.get_or_init(|| KEY_RULES.iter().map(|r| (r.key, *r)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_ranks_unique_per_field() {
        let mut keys = std::collections::HashSet::new();
        let mut ranks = std::collections::HashSet::new();
        for r in KEY_RULES {
            assert!(keys.insert(r.key), "duplicate key {}", r.key);
            assert!(
                ranks.insert((r.field, r.rank)),
                "duplicate rank {} for {:?}",
                r.rank,
                r.field
            );
        }
    }

    #[test]
    fn unmapped_usage_keys_are_the_usage_like_keys_nothing_reads() {
        for k in [
            "gen_ai.usage.cache_write.input_tokens",
            "gen_ai.usage.input_tokens",
            "llm.token_count.prompt",
        ] {
            assert!(rules_by_key().contains_key(k), "{k} is read");
        }
        assert!(is_unmapped_usage_key("gen_ai.usage.video.input_tokens"));
        assert!(is_unmapped_usage_key("gen_ai.usage.cost.amount_usd"));
        assert!(is_unmapped_usage_key("llm.TokenCount.prompt"));
        assert!(!is_unmapped_usage_key("gen_ai.usage.total_tokens"));
        assert!(!is_unmapped_usage_key("gen_ai.usage.audio.input_tokens"));
        assert!(!is_unmapped_usage_key("gen_ai.prompt.0.content"));
        assert!(!is_unmapped_usage_key("gen_ai.request.temperature"));
        // The known-but-unbucketed list holds nothing the table reads.
        for k in KNOWN_UNBUCKETED {
            assert!(!rules_by_key().contains_key(k), "{k}");
        }
    }

    #[test]
    fn field_count_matches_enum() {
        assert_eq!(Field::ServiceTier.index() + 1, FIELD_COUNT);
    }
}

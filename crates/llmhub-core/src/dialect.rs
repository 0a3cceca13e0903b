//! The GenAI attribute dialects llmhub reads, and how a span's dialect is recognised.

use crate::span::{Attribute, Value};

/// The attribute dialect a span was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Dialect {
    /// OpenTelemetry GenAI semantic conventions (`gen_ai.*`), v1.26 to v1.41.
    #[default]
    OtelGenAi,
    /// OpenInference (Arize Phoenix): `openinference.span.kind`, `llm.*`.
    OpenInference,
    /// OpenLLMetry / Traceloop: `traceloop.*`, `llm.request.type`, `llm.usage.*`.
    OpenLlmetry,
    /// OpenLIT: `telemetry.sdk.name = openlit` on spans.
    OpenLit,
    /// Vercel AI SDK: `ai.operationId`, `ai.model.*`, `ai.usage.*`.
    VercelAi,
    /// Langfuse OpenTelemetry mode: `langfuse.observation.*`.
    Langfuse,
    /// pydantic-ai / Logfire: scope `pydantic-ai`, `logfire.*`.
    PydanticAi,
}

impl Dialect {
    /// All dialects.
    pub const ALL: [Dialect; 7] = [
        Dialect::OtelGenAi,
        Dialect::OpenInference,
        Dialect::OpenLlmetry,
        Dialect::OpenLit,
        Dialect::VercelAi,
        Dialect::Langfuse,
        Dialect::PydanticAi,
    ];

    /// Stable name used in metrics, the database and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OtelGenAi => "otel_genai",
            Dialect::OpenInference => "openinference",
            Dialect::OpenLlmetry => "openllmetry",
            Dialect::OpenLit => "openlit",
            Dialect::VercelAi => "vercel_ai",
            Dialect::Langfuse => "langfuse",
            Dialect::PydanticAi => "pydantic_ai",
        }
    }
}

/// Recognises the dialect of a span from its most specific markers, in this order:
/// Langfuse, Vercel AI SDK, OpenInference, OpenLIT, pydantic-ai/Logfire, OpenLLMetry, and last the
/// plain OpenTelemetry GenAI conventions (any `gen_ai.*` key). Returns `None` for spans that carry no
/// GenAI marker at all: those are not model, agent or tool spans and are passed over.
pub fn detect(attrs: &[Attribute<'_>], scope_name: &str) -> Option<Dialect> {
    let mut langfuse = false;
    let mut vercel = false;
    let mut openinference = false;
    let mut openlit = false;
    let pydantic_scope = scope_name == "pydantic-ai";
    let mut logfire = scope_name.starts_with("logfire");
    let mut openllmetry = false;
    let mut genai = false;
    for (key, value) in attrs {
        let key = *key;
        if key.starts_with("langfuse.observation.") {
            langfuse = true;
        } else if key == "ai.operationId" || key == "ai.model.id" || key == "ai.model.provider" {
            vercel = true;
        } else if key == "openinference.span.kind" {
            openinference = true;
        } else if key == "telemetry.sdk.name" {
            openlit |= matches!(value, Value::Str(s) if s.eq_ignore_ascii_case("openlit"));
        } else if key.starts_with("logfire.") {
            logfire = true;
        } else if key.starts_with("traceloop.")
            || key.starts_with("llm.usage.")
            || key == "llm.request.type"
            || key == "llm.is_streaming"
            || key == "gen_ai.is_streaming"
        {
            openllmetry = true;
        } else if key.starts_with("gen_ai.") {
            genai = true;
        }
    }
    if scope_name.starts_with("openlit") {
        openlit = true;
    }
    if langfuse {
        Some(Dialect::Langfuse)
    } else if vercel {
        Some(Dialect::VercelAi)
    } else if openinference {
        Some(Dialect::OpenInference)
    } else if openlit {
        Some(Dialect::OpenLit)
    } else if pydantic_scope || (logfire && genai) {
        Some(Dialect::PydanticAi)
    } else if openllmetry {
        Some(Dialect::OpenLlmetry)
    } else if genai {
        Some(Dialect::OtelGenAi)
    } else {
        None
    }
}

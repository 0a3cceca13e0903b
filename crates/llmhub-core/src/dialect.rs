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
    /// Claude Code's log events (`claude_code.api_request`), read by [`crate::events`]; never
    /// detected on a span.
    ClaudeCode,
    /// Gemini CLI's log events (`gemini_cli.api_response`), read by [`crate::events`].
    GeminiCli,
    /// Codex CLI's log events (`codex.sse_event`), read by [`crate::events`].
    Codex,
}

impl Dialect {
    /// All dialects.
    pub const ALL: [Dialect; 10] = [
        Dialect::OtelGenAi,
        Dialect::OpenInference,
        Dialect::OpenLlmetry,
        Dialect::OpenLit,
        Dialect::VercelAi,
        Dialect::Langfuse,
        Dialect::PydanticAi,
        Dialect::ClaudeCode,
        Dialect::GeminiCli,
        Dialect::Codex,
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
            Dialect::ClaudeCode => "claude_code",
            Dialect::GeminiCli => "gemini_cli",
            Dialect::Codex => "codex",
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
        // Every marker's first letter picks the few it can be, so most keys are compared once.
        match key.as_bytes().first() {
            Some(b'g') => {
                if key == "gen_ai.is_streaming" {
                    openllmetry = true;
                } else if key.starts_with("gen_ai.") {
                    genai = true;
                }
            }
            Some(b'l') => {
                if key.starts_with("langfuse.observation.") {
                    langfuse = true;
                } else if key.starts_with("logfire.") {
                    logfire = true;
                } else if key.starts_with("llm.usage.") || key == "llm.request.type" || key == "llm.is_streaming" {
                    openllmetry = true;
                }
            }
            Some(b'a') => vercel |= key == "ai.operationId" || key == "ai.model.id" || key == "ai.model.provider",
            Some(b'o') => openinference |= key == "openinference.span.kind",
            Some(b't') => {
                if key == "telemetry.sdk.name" {
                    openlit |= matches!(value, Value::Str(s) if s.eq_ignore_ascii_case("openlit"));
                } else if key.starts_with("traceloop.") {
                    openllmetry = true;
                }
            }
            _ => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The markers as the documentation lists them, one plain test per key in precedence order:
    /// what `detect` must answer, however it dispatches.
    fn plain(attrs: &[Attribute<'_>], scope_name: &str) -> Option<Dialect> {
        let any = |f: &dyn Fn(&str, &Value<'_>) -> bool| attrs.iter().any(|(k, v)| f(k, v));
        let openllmetry_key = |k: &str| {
            k.starts_with("traceloop.")
                || k.starts_with("llm.usage.")
                || ["llm.request.type", "llm.is_streaming", "gen_ai.is_streaming"].contains(&k)
        };
        let genai = any(&|k, _| k.starts_with("gen_ai.") && k != "gen_ai.is_streaming");
        let openlit = scope_name.starts_with("openlit")
            || any(&|k, v| {
                k == "telemetry.sdk.name" && matches!(v, Value::Str(s) if s.eq_ignore_ascii_case("openlit"))
            });
        let logfire = scope_name.starts_with("logfire") || any(&|k, _| k.starts_with("logfire."));
        if any(&|k, _| k.starts_with("langfuse.observation.")) {
            Some(Dialect::Langfuse)
        } else if any(&|k, _| ["ai.operationId", "ai.model.id", "ai.model.provider"].contains(&k)) {
            Some(Dialect::VercelAi)
        } else if any(&|k, _| k == "openinference.span.kind") {
            Some(Dialect::OpenInference)
        } else if openlit {
            Some(Dialect::OpenLit)
        } else if scope_name == "pydantic-ai" || (logfire && genai) {
            Some(Dialect::PydanticAi)
        } else if any(&|k, _| openllmetry_key(k)) {
            Some(Dialect::OpenLlmetry)
        } else if genai {
            Some(Dialect::OtelGenAi)
        } else {
            None
        }
    }

    const KEYS: &[&str] = &[
        "langfuse.observation.type",
        "langfuse.observation",
        "ai.operationId",
        "ai.model.id",
        "ai.model.provider",
        "ai.model",
        "openinference.span.kind",
        "openinference.span",
        "telemetry.sdk.name",
        "logfire.msg",
        "logfire",
        "traceloop.span.kind",
        "llm.usage.total_tokens",
        "llm.request.type",
        "llm.is_streaming",
        "llm.model_name",
        "gen_ai.is_streaming",
        "gen_ai.request.model",
        "gen_ai",
        "service.name",
        "",
    ];

    proptest! {
        #[test]
        fn answers_as_the_plain_marker_list(
            keys in proptest::collection::vec(0..KEYS.len(), 0..6),
            openlit_sdk in any::<bool>(),
            scope in prop::sample::select(vec!["", "openlit.otel", "logfire", "pydantic-ai", "opentelemetry"]),
        ) {
            let attrs: Vec<Attribute<'_>> = keys
                .iter()
                .map(|&k| {
                    let v = if KEYS[k] == "telemetry.sdk.name" && openlit_sdk { "OpenLIT" } else { "x" };
                    (KEYS[k], Value::Str(v))
                })
                .collect();
            prop_assert_eq!(detect(&attrs, scope), plain(&attrs, scope));
        }
    }
}

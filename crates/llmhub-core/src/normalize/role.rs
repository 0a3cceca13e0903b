//! What a span describes (model call, agent, tool, workflow) and its operation name.

use super::*;

/// Role markers of the dialects, read before the operation name.
pub(super) fn role_from_markers(attrs: &[Attribute<'_>], span_name: &str) -> Option<SpanRole> {
    if let Some(op) = find(attrs, "ai.operationId").and_then(Value::as_str) {
        return Some(if op == "ai.toolCall" {
            SpanRole::Tool
        } else if op.ends_with(".doGenerate") || op.ends_with(".doStream") || op.ends_with(".doEmbed") {
            SpanRole::ModelCall
        } else {
            SpanRole::Workflow
        });
    }
    if let Some(kind) = find(attrs, "openinference.span.kind").and_then(Value::as_str) {
        return Some(match kind.to_ascii_uppercase().as_str() {
            "LLM" | "EMBEDDING" | "RERANKER" => SpanRole::ModelCall,
            "AGENT" => SpanRole::Agent,
            "TOOL" => SpanRole::Tool,
            _ => SpanRole::Workflow,
        });
    }
    if let Some(kind) = find(attrs, "traceloop.span.kind").and_then(Value::as_str) {
        return Some(match kind.to_ascii_lowercase().as_str() {
            "agent" => SpanRole::Agent,
            "tool" => SpanRole::Tool,
            _ => SpanRole::Workflow,
        });
    }
    if let Some(kind) = find(attrs, "langfuse.observation.type").and_then(Value::as_str) {
        return Some(match kind.to_ascii_lowercase().as_str() {
            "generation" | "embedding" => SpanRole::ModelCall,
            "agent" => SpanRole::Agent,
            "tool" => SpanRole::Tool,
            _ => SpanRole::Workflow,
        });
    }
    if span_name == "agent run" {
        return Some(SpanRole::Agent);
    }
    if span_name == "running tool" || span_name.starts_with("running tool:") {
        return Some(SpanRole::Tool);
    }
    None
}

/// Operation names of calls to a model. Other operations (retrieval, memory, vector database,
/// workflow and framework steps) are neither counted as model calls nor as agent or tool steps.
pub static MODEL_OPERATIONS: &[&str] = &[
    "chat",
    "text_completion",
    "generate_content",
    "embeddings",
    "rerank",
    "image",
    "audio",
    "generate",
];

pub(super) fn role_from_operation(op: &str) -> SpanRole {
    match op {
        "invoke_agent" | "create_agent" | "agent" => SpanRole::Agent,
        "execute_tool" => SpanRole::Tool,
        o if MODEL_OPERATIONS.contains(&o) => SpanRole::ModelCall,
        _ => SpanRole::Workflow,
    }
}

/// Maps the dialects' operation spellings to OpenTelemetry operation names.
pub(super) fn canonical_operation(op: &str) -> Cow<'_, str> {
    let lower = lower_trimmed(op);
    Cow::Borrowed(match &*lower {
        "completion" | "completions" | "text_completion" => "text_completion",
        "embedding" | "embeddings" | "embed" => "embeddings",
        "chat" | "chat_completion" => "chat",
        _ => return lower,
    })
}

pub(super) fn default_operation(role: SpanRole, attrs: &[Attribute<'_>]) -> &'static str {
    match role {
        SpanRole::Agent => "invoke_agent",
        SpanRole::Tool => "execute_tool",
        SpanRole::Workflow => "workflow",
        SpanRole::ModelCall => {
            let embedding = find(attrs, "openinference.span.kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.eq_ignore_ascii_case("EMBEDDING"))
                || find(attrs, "langfuse.observation.type").and_then(Value::as_str) == Some("embedding")
                || find(attrs, "ai.operationId")
                    .and_then(Value::as_str)
                    .is_some_and(|o| o.ends_with(".doEmbed"));
            if embedding {
                "embeddings"
            } else {
                "chat"
            }
        }
    }
}

//! Which attribute keys and span events carry conversation content in each GenAI dialect.
//!
//! Content is what a person or a model said: prompts and input messages, completions and output
//! messages, system instructions, tool-call arguments and results, retrieved documents and text
//! sent for embedding. Metadata about a call (model, usage, finish reasons, tool names, message
//! roles, tool schemas) is not content.

/// Exact keys that hold content, by dialect.
const EXACT: &[&str] = &[
    // OpenTelemetry GenAI semantic conventions (v1.26 to v1.41), OpenLIT.
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.content.prompt",
    "gen_ai.content.completion",
    // OpenInference.
    "input.value",
    "output.value",
    "llm.prompts",
    "llm.prompt_template.template",
    "llm.prompt_template.variables",
    "reranker.query",
    // OpenLLMetry / Traceloop.
    "traceloop.entity.input",
    "traceloop.entity.output",
    "llm.completions",
    // Vercel AI SDK.
    "ai.prompt",
    "ai.prompt.messages",
    "ai.prompt.system",
    "ai.response.text",
    "ai.response.object",
    "ai.response.toolCalls",
    "ai.response.reasoning",
    "ai.result.text",
    "ai.result.object",
    "ai.result.toolCalls",
    "ai.toolCall.args",
    "ai.toolCall.result",
    "ai.value",
    "ai.values",
    // Langfuse.
    "langfuse.observation.input",
    "langfuse.observation.output",
    "langfuse.trace.input",
    "langfuse.trace.output",
    // pydantic-ai / Logfire.
    "pydantic_ai.all_messages",
    "all_messages_events",
    "final_result",
    "tool_arguments",
    "tool_response",
];

/// Prefixes of flattened message lists, with the suffixes under them that hold content (roles,
/// ids and finish reasons under the same prefixes are kept).
const FLATTENED: &[(&str, &[&str])] = &[
    // OpenLLMetry: gen_ai.prompt.0.content, gen_ai.completion.0.tool_calls.0.arguments.
    ("gen_ai.prompt.", &[".content", ".arguments"]),
    ("gen_ai.completion.", &[".content", ".arguments"]),
    // OpenInference: llm.input_messages.0.message.content,
    // ...message.contents.0.message_content.text, ...tool_call.function.arguments.
    ("llm.input_messages.", &[".content", ".text", ".arguments"]),
    ("llm.output_messages.", &[".content", ".text", ".arguments"]),
    ("retrieval.documents.", &[".content"]),
    ("reranker.input_documents.", &[".content"]),
    ("reranker.output_documents.", &[".content"]),
    ("embedding.embeddings.", &[".text"]),
];

/// Span events that exist to carry content (OpenTelemetry GenAI v1.28–v1.36 message events and
/// the earlier prompt/completion events): removed whole when content is not captured.
const EVENTS: &[&str] = &[
    "gen_ai.content.prompt",
    "gen_ai.content.completion",
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    "gen_ai.choice",
];

/// Whether an attribute with this key carries conversation content in some dialect.
pub fn is_content_key(key: &str) -> bool {
    if EXACT.contains(&key) {
        return true;
    }
    FLATTENED.iter().any(|(prefix, suffixes)| {
        key.strip_prefix(prefix)
            .is_some_and(|rest| suffixes.iter().any(|s| rest.ends_with(s)))
    })
}

/// Whether a span event with this name exists to carry content.
pub fn is_content_event(name: &str) -> bool {
    EVENTS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialects_content_keys_are_content() {
        for k in [
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.system_instructions",
            "gen_ai.tool.call.arguments",
            "gen_ai.tool.call.result",
            "gen_ai.prompt",
            "gen_ai.completion",
            "gen_ai.prompt.0.content",
            "gen_ai.completion.1.content",
            "gen_ai.completion.0.tool_calls.0.arguments",
            "input.value",
            "output.value",
            "llm.input_messages.0.message.content",
            "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments",
            "llm.output_messages.0.message.contents.1.message_content.text",
            "embedding.embeddings.0.embedding.text",
            "retrieval.documents.3.document.content",
            "traceloop.entity.input",
            "ai.prompt.messages",
            "ai.response.text",
            "ai.toolCall.args",
            "ai.toolCall.result",
            "langfuse.observation.input",
            "pydantic_ai.all_messages",
            "tool_arguments",
            "final_result",
        ] {
            assert!(is_content_key(k), "{k}");
        }
    }

    #[test]
    fn metadata_is_not_content() {
        for k in [
            "gen_ai.request.model",
            "gen_ai.usage.input_tokens",
            "gen_ai.response.finish_reasons",
            "gen_ai.prompt.0.role",
            "gen_ai.completion.0.finish_reason",
            "gen_ai.completion.0.tool_calls.0.name",
            "gen_ai.tool.name",
            "gen_ai.tool.definitions",
            "llm.input_messages.0.message.role",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",
            "llm.token_count.prompt",
            "ai.prompt.format",
            "ai.response.finishReason",
            "ai.toolCall.name",
            "tool.name",
            "input.mime_type",
            "exception.message",
            "service.name",
            "gen_ai.promptx",
            "gen_ai.prompt.",
        ] {
            assert!(!is_content_key(k), "{k}");
        }
    }

    #[test]
    fn message_events_are_content_events() {
        assert!(is_content_event("gen_ai.content.prompt"));
        assert!(is_content_event("gen_ai.choice"));
        assert!(!is_content_event("exception"));
        assert!(!is_content_event("ai.stream.firstChunk"));
    }
}

//! Gemini CLI's `gemini_cli.api_response` and `gemini_cli.api_error` events (Gemini CLI 0.61,
//! `telemetry.enabled` with `target: local`), as the span attributes of the same model call. One
//! event per model call, the router's helper calls (`role` `utility_router`) included: each is a
//! real, billed request.
//!
//! | event attribute | read as |
//! |---|---|
//! | `model` | `gen_ai.request.model` (provider `gcp.gemini`, operation `chat`) |
//! | `input_token_count` + `tool_token_count` | `gen_ai.usage.input_tokens` (Gemini's prompt count includes the cache; tool-use prompt tokens come on top) |
//! | `cached_content_token_count` | the cache-read bucket |
//! | `output_token_count` + `thoughts_token_count` | `gen_ai.usage.output_tokens` (Gemini's candidate count excludes thoughts) |
//! | `thoughts_token_count` | `gen_ai.usage.reasoning.output_tokens` |
//! | `finish_reasons` | `gen_ai.response.finish_reasons` |
//! | `duration_ms` | the call ends at the event's time and started that long before |
//! | `status_code` | `http.response.status_code`; 400 and above (and every `api_error`) is a failed call |
//! | `session.id` | `gen_ai.conversation.id` |
//!
//! Ids: the trace is the prompt (`session.id`, `prompt_id`), the span the event (`session.id`,
//! `prompt_id`, `role`, `model`, time). `user.email` and `installation.id` are not read.

use super::ids::Ids;
use super::value::{count, count_at, millis_at};
use super::{chat_call, Synthetic};
use crate::log::LogView;
use crate::span::{StatusCode, Value};

/// `api_error`: a `gemini_cli.api_error` event.
pub(super) fn span<'a>(api_error: bool, log: &LogView<'a>) -> Synthetic<'a> {
    let n = |key: &str| count_at(log, key);
    let session = log.str("session.id").unwrap_or("");
    let prompt = log.str("prompt_id").unwrap_or("");
    let role = log.str("role").unwrap_or("");
    let model = log.str("model").unwrap_or("");
    let time = log.time();
    let ids = Ids::derive(
        &[b"gemini_cli", session.as_bytes(), prompt.as_bytes()],
        &[
            b"gemini_cli",
            session.as_bytes(),
            prompt.as_bytes(),
            role.as_bytes(),
            model.as_bytes(),
            &time.to_le_bytes(),
        ],
    );
    let duration_ns = millis_at(log, "duration_ms");

    let mut a = chat_call("gcp.gemini", log, session);
    if let Some(input) = n("input_token_count") {
        let tool = n("tool_token_count").unwrap_or(0);
        a.push(("gen_ai.usage.input_tokens", Value::Int(input.saturating_add(tool))));
    }
    if let Some(c) = n("cached_content_token_count") {
        a.push(("gen_ai.usage.cache_read.input_tokens", Value::Int(c)));
    }
    let thoughts = n("thoughts_token_count");
    if let Some(o) = n("output_token_count") {
        a.push((
            "gen_ai.usage.output_tokens",
            Value::Int(o.saturating_add(thoughts.unwrap_or(0))),
        ));
    }
    if let Some(t) = thoughts {
        a.push(("gen_ai.usage.reasoning.output_tokens", Value::Int(t)));
    }
    if let Some(f) = log.get("finish_reasons") {
        a.push(("gen_ai.response.finish_reasons", f.clone()));
    }
    let code = log.get("status_code").and_then(count);
    if let Some(c) = code {
        a.push(("http.response.status_code", Value::Int(c)));
    }
    let failed = api_error || code.is_some_and(|c| c >= 400);
    if failed && code.is_none() {
        if let Some(t) = log.get("error.type").or_else(|| log.get("error_type")) {
            a.push(("error.type", t.clone()));
        }
    }
    Synthetic {
        ids,
        end_unix_nano: time,
        duration_ns,
        status: if failed { StatusCode::Error } else { StatusCode::Unset },
        attributes: a,
    }
}

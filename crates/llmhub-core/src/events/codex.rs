//! Codex CLI's `codex.sse_event` events (Codex CLI 0.171, `[otel] exporter` set): one per
//! server-sent event of a Responses API stream. The `response.completed` event that carries token
//! counts is the model call; every other one (and the second `response.completed` Codex logs
//! without counts) is not.
//!
//! | event attribute | read as |
//! |---|---|
//! | `model` | `gen_ai.request.model` (provider `openai`, operation `chat`) |
//! | `input_token_count` | `gen_ai.usage.input_tokens` (includes the cache, as OpenAI counts) |
//! | `cached_token_count` | the cache-read bucket |
//! | `cache_write_token_count` | the cache-write bucket |
//! | `output_token_count` | `gen_ai.usage.output_tokens` (includes reasoning) |
//! | `reasoning_token_count` | `gen_ai.usage.reasoning.output_tokens` |
//! | `ttft_ms` | time to first chunk (the call streamed) |
//! | `conversation.id` | `gen_ai.conversation.id` |
//!
//! `tool_token_count` is the response's total, not tool tokens, and is not read. The event says
//! when the stream completed but not when the request started, so the record has no duration.
//! The event carries no trace context (`timeUnixNano` is 0 too: the observed time is used). Ids:
//! the trace is the conversation, the span the event (`conversation.id`, time, counts).
//! `user.email` and `user.account_id` are not read.

use super::ids::Ids;
use super::value::{count_at, millis_at};
use super::{chat_call, Synthetic};
use crate::log::LogView;
use crate::span::{StatusCode, Value};

pub(super) fn span<'a>(log: &LogView<'a>) -> Option<Synthetic<'a>> {
    if log.str("event.kind") != Some("response.completed") {
        return None;
    }
    let n = |key: &str| count_at(log, key);
    let (input, output) = (n("input_token_count"), n("output_token_count"));
    if input.is_none() && output.is_none() {
        return None;
    }
    let conversation = log.str("conversation.id").unwrap_or("");
    let time = log.time();
    let counts: Vec<u8> = [input, output, n("cached_token_count"), n("reasoning_token_count")]
        .iter()
        .flat_map(|c| c.unwrap_or(-1).to_le_bytes())
        .collect();
    let ids = Ids::derive(
        &[b"codex", conversation.as_bytes()],
        &[b"codex", conversation.as_bytes(), &time.to_le_bytes(), &counts],
    );

    let mut a = chat_call("openai", log, conversation);
    for (key, value) in [
        ("gen_ai.usage.input_tokens", input),
        ("gen_ai.usage.cache_read.input_tokens", n("cached_token_count")),
        ("gen_ai.usage.cache_creation.input_tokens", n("cache_write_token_count")),
        ("gen_ai.usage.output_tokens", output),
        ("gen_ai.usage.reasoning.output_tokens", n("reasoning_token_count")),
    ] {
        if let Some(v) = value {
            a.push((key, Value::Int(v)));
        }
    }
    if let Some(t) = millis_at(log, "ttft_ms") {
        a.push(("gen_ai.request.stream", Value::Bool(true)));
        a.push(("gen_ai.response.time_to_first_chunk", Value::Double(t as f64 / 1e9)));
    }
    Some(Synthetic {
        ids,
        end_unix_nano: time,
        duration_ns: None,
        status: StatusCode::Unset,
        attributes: a,
    })
}

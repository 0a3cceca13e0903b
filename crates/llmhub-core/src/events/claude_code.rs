//! Claude Code's `claude_code.api_request` and `claude_code.api_error` events (Claude Code 2.1,
//! `CLAUDE_CODE_ENABLE_TELEMETRY=1` with the OTLP logs exporter), as the span attributes of the
//! same model call.
//!
//! | event attribute | read as |
//! |---|---|
//! | `model` | `gen_ai.request.model` (provider `anthropic`, operation `chat`) |
//! | `input_tokens` + `cache_read_tokens` + `cache_creation_tokens` | `gen_ai.usage.input_tokens` (Anthropic's `input_tokens` excludes the cache) |
//! | `cache_read_tokens`, `cache_creation_tokens` | the cache-read and cache-write buckets |
//! | `cache_creation_1h_tokens` | the one-hour cache-write bucket, when `cache_creation_5m_tokens` + it equal `cache_creation_tokens` |
//! | `output_tokens` | `gen_ai.usage.output_tokens` |
//! | `cost_usd` | the SDK-reported cost (kept beside llmhub's catalog cost) |
//! | `duration_ms` | the call ends at the event's time and started that long before |
//! | `ttft_ms` | time to first chunk (the call streamed) |
//! | `session.id` | `gen_ai.conversation.id` |
//! | `status_code`, `error` (`api_error`) | `http.response.status_code`, `error.type`; status error |
//!
//! Ids: the trace is the prompt (`session.id`, `prompt.id`), the span the event (`session.id`,
//! `event.sequence`, `request_id`, time). User identity (`user.id`, `user.email`,
//! `organization.id`) is not read.

use super::ids::Ids;
use super::value::{count, count_at, millis_at, number};
use super::{chat_call, Synthetic};
use crate::log::LogView;
use crate::span::{StatusCode, Value};

/// `failed`: an `api_error` event.
pub(super) fn span<'a>(failed: bool, log: &LogView<'a>) -> Synthetic<'a> {
    let n = |key: &str| count_at(log, key);
    let session = log.str("session.id").unwrap_or("");
    let prompt = log.str("prompt.id").unwrap_or("");
    let request = log.str("request_id").unwrap_or("");
    let sequence = log.get("event.sequence").and_then(count);
    let time = log.time();
    let ids = Ids::derive(
        &[b"claude_code", session.as_bytes(), prompt.as_bytes()],
        &[
            b"claude_code",
            session.as_bytes(),
            &sequence.unwrap_or(-1).to_le_bytes(),
            request.as_bytes(),
            &time.to_le_bytes(),
        ],
    );
    let duration_ns = millis_at(log, "duration_ms");

    let mut a = chat_call("anthropic", log, session);
    let (input, read, write) = (n("input_tokens"), n("cache_read_tokens"), n("cache_creation_tokens"));
    if input.is_some() || read.is_some() || write.is_some() {
        let total = [input, read, write]
            .into_iter()
            .flatten()
            .fold(0i64, i64::saturating_add);
        a.push(("gen_ai.usage.input_tokens", Value::Int(total)));
    }
    if let Some(r) = read {
        a.push(("gen_ai.usage.cache_read.input_tokens", Value::Int(r)));
    }
    if let Some(w) = write {
        a.push(("gen_ai.usage.cache_creation.input_tokens", Value::Int(w)));
        // The one-hour share only when the split adds up (emitters that know no split send 0 and 0).
        if let (Some(m5), Some(h1)) = (n("cache_creation_5m_tokens"), n("cache_creation_1h_tokens")) {
            if m5.checked_add(h1) == Some(w) {
                a.push((
                    "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",
                    Value::Int(h1),
                ));
            }
        }
    }
    if let Some(o) = n("output_tokens") {
        a.push(("gen_ai.usage.output_tokens", Value::Int(o)));
    }
    if let Some(c) = log.get("cost_usd").and_then(number) {
        a.push(("gen_ai.usage.cost", Value::Double(c)));
    }
    if let Some(t) = log.get("ttft_ms").and_then(number) {
        a.push(("gen_ai.request.stream", Value::Bool(true)));
        a.push(("gen_ai.response.time_to_first_chunk", Value::Double(t / 1000.0)));
    }
    let status = if failed {
        if let Some(code) = log.get("status_code") {
            match count(code) {
                Some(c) => a.push(("http.response.status_code", Value::Int(c))),
                None => a.push(("error.type", code.clone())),
            }
        }
        StatusCode::Error
    } else {
        StatusCode::Unset
    };
    Synthetic {
        ids,
        end_unix_nano: time,
        duration_ns,
        status,
        attributes: a,
    }
}

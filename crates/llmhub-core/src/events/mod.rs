//! Log events that describe model calls, read into the same canonical record as spans.
//!
//! Some emitters report a model call as a log event rather than a span: coding agents (Claude
//! Code's `claude_code.api_request`, Gemini CLI's `gemini_cli.api_response`, Codex CLI's
//! `codex.sse_event` for a completed response) carry per-request usage, model and duration on an
//! event, often with no trace context. Each known event is mapped onto the OpenTelemetry GenAI
//! attributes of a span ([`claude_code`], [`gemini_cli`], [`codex`]) and normalized by
//! [`crate::normalize`], so tokens, buckets, timings and error classes follow one set of rules
//! whatever carried the call; the record then takes the event's own dialect. Ids the event lacks
//! are derived from what identifies it ([`ids`]), so a resent event is the same call. Every other
//! log record is not a GenAI event.

mod claude_code;
mod codex;
mod gemini_cli;
mod ids;
mod value;

use crate::dialect::Dialect;
use crate::log::LogView;
use crate::normalize::{normalize, NormalizeOptions, Outcome};
use crate::span::{Attribute, ContextView, SpanView, StatusCode, Value};

/// The log events llmhub reads as model calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KnownEvent {
    /// Claude Code: one request to the model API, with its usage, cost and duration.
    ClaudeCodeApiRequest,
    /// Claude Code: a request to the model API that failed.
    ClaudeCodeApiError,
    /// Gemini CLI: one model call (the main model's or a helper's, such as the router), with its
    /// usage and duration.
    GeminiCliApiResponse,
    /// Gemini CLI: a model call that failed.
    GeminiCliApiError,
    /// Codex CLI: one server-sent event of a Responses API stream; the `response.completed` one
    /// that carries token counts is the model call.
    CodexSseEvent,
}

impl KnownEvent {
    /// Every known event.
    pub const ALL: [KnownEvent; 5] = [
        KnownEvent::ClaudeCodeApiRequest,
        KnownEvent::ClaudeCodeApiError,
        KnownEvent::GeminiCliApiResponse,
        KnownEvent::GeminiCliApiError,
        KnownEvent::CodexSseEvent,
    ];

    /// The event's name.
    pub fn name(self) -> &'static str {
        match self {
            KnownEvent::ClaudeCodeApiRequest => "claude_code.api_request",
            KnownEvent::ClaudeCodeApiError => "claude_code.api_error",
            KnownEvent::GeminiCliApiResponse => "gemini_cli.api_response",
            KnownEvent::GeminiCliApiError => "gemini_cli.api_error",
            KnownEvent::CodexSseEvent => "codex.sse_event",
        }
    }

    /// The dialect of the records it makes.
    pub fn dialect(self) -> Dialect {
        match self {
            KnownEvent::ClaudeCodeApiRequest | KnownEvent::ClaudeCodeApiError => Dialect::ClaudeCode,
            KnownEvent::GeminiCliApiResponse | KnownEvent::GeminiCliApiError => Dialect::GeminiCli,
            KnownEvent::CodexSseEvent => Dialect::Codex,
        }
    }

    /// The known event a log record is, by any of its names.
    pub fn of(log: &LogView<'_>) -> Option<KnownEvent> {
        log.names()
            .find_map(|n| KnownEvent::ALL.into_iter().find(|e| e.name() == n))
    }
}

/// A span made of an event: the ids, times, status and GenAI attributes normalization reads.
struct Synthetic<'a> {
    ids: ids::Ids,
    /// When the call ended: the event's time.
    end_unix_nano: u64,
    /// How long it took; `None` when the event does not say (the record then has no duration,
    /// never a duration of 0).
    duration_ns: Option<u64>,
    status: StatusCode,
    attributes: Vec<Attribute<'a>>,
}

/// Reads one log record in its resource's and scope's context: a model call when it is a known
/// event, [`Outcome::NotGenAi`] otherwise.
pub fn read_event(ctx: &ContextView<'_>, log: &LogView<'_>, opts: &NormalizeOptions) -> Outcome {
    let Some(event) = KnownEvent::of(log) else {
        return Outcome::NotGenAi;
    };
    if log.time() == 0 {
        return Outcome::Rejected(format!(
            "event {:?}: neither time_unix_nano nor observed_time_unix_nano is set",
            event.name()
        ));
    }
    let made = match event {
        KnownEvent::ClaudeCodeApiRequest => Some(claude_code::span(false, log)),
        KnownEvent::ClaudeCodeApiError => Some(claude_code::span(true, log)),
        KnownEvent::GeminiCliApiResponse => Some(gemini_cli::span(false, log)),
        KnownEvent::GeminiCliApiError => Some(gemini_cli::span(true, log)),
        KnownEvent::CodexSseEvent => codex::span(log),
    };
    // An event of a known kind that is not a model call (a Codex stream event without usage).
    let Some(mut s) = made else {
        return Outcome::NotGenAi;
    };
    // The configured tenant keys found on the event (Claude Code copies OTEL_RESOURCE_ATTRIBUTES
    // onto its events).
    for (k, v) in &log.attributes {
        if opts.tenant_keys.iter().any(|t| t == k) {
            s.attributes.push((k, v.clone()));
        }
    }
    let span = SpanView {
        trace_id: &s.ids.trace,
        span_id: &s.ids.span,
        parent_span_id: &[],
        name: event.name(),
        start_unix_nano: s.end_unix_nano.saturating_sub(s.duration_ns.unwrap_or(0)),
        end_unix_nano: s.end_unix_nano,
        attributes: s.attributes,
        events: Vec::new(),
        status_code: s.status,
        status_message: "",
    };
    match normalize(ctx, &span, opts) {
        Outcome::Call(mut n) => {
            n.call.dialect = event.dialect();
            if s.duration_ns.is_none() {
                let t = &mut n.call.timings;
                (t.duration_s, t.tpot_s, t.output_tokens_per_s) = (None, None, None);
            }
            Outcome::Call(n)
        }
        other => other,
    }
}

/// The attributes every coding agent's call starts with: a chat call to `provider` with the
/// event's `model`, in the conversation `conversation` (when the event names one).
fn chat_call<'a>(provider: &'static str, log: &LogView<'a>, conversation: &'a str) -> Vec<Attribute<'a>> {
    let mut a: Vec<Attribute<'a>> = vec![
        ("gen_ai.operation.name", Value::Str("chat")),
        ("gen_ai.provider.name", Value::Str(provider)),
    ];
    if let Some(m) = log.get("model") {
        a.push(("gen_ai.request.model", m.clone()));
    }
    if !conversation.is_empty() {
        a.push(("gen_ai.conversation.id", Value::Str(conversation)));
    }
    a
}

#[cfg(test)]
mod tests;

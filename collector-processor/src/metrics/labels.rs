//! The receiver metrics' label values, as types: code names a transport or an outcome by variant,
//! and the label text is written in one place.

use llmhub_exporters::queue::PushReason;

/// How an export request came in (`llmhub.transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with a protobuf body.
    HttpProtobuf,
    /// OTLP/HTTP with a JSON body.
    HttpJson,
    /// OTLP/HTTP refused before its encoding was read (no or a wrong API key, an unsupported
    /// content type).
    Http,
}

impl Transport {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::HttpProtobuf => "http_protobuf",
            Transport::HttpJson => "http_json",
            Transport::Http => "http",
        }
    }
}

/// What became of an export request (`llmhub.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestOutcome {
    /// Every span taken.
    Ok,
    /// Some spans rejected (partial success).
    Partial,
    /// Malformed: refused for good.
    Invalid,
    /// A content type or encoding llmhub does not read.
    Unsupported,
    /// Past a size or span-count limit: refused for good.
    TooLarge,
    /// No or a wrong API key.
    Unauthenticated,
    /// A full or closing exporter queue: retryable.
    Refused,
    /// Past `service.memory.limit_mib`: retryable.
    MemoryLimit,
    /// Metrics or logs: answered, not ingested.
    NotIngested,
}

impl RequestOutcome {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::Partial => "partial",
            RequestOutcome::Invalid => "invalid",
            RequestOutcome::Unsupported => "unsupported",
            RequestOutcome::TooLarge => "too_large",
            RequestOutcome::Unauthenticated => "unauthenticated",
            RequestOutcome::Refused => "refused",
            RequestOutcome::MemoryLimit => "memory_limit",
            RequestOutcome::NotIngested => "not_ingested",
        }
    }
}

/// What became of received log records (`llmhub.outcome` of `llmhub.receiver.log_records`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogRecordOutcome {
    /// A GenAI event read into a record.
    Read,
    /// Accepted and counted, not read (not a GenAI event llmhub knows).
    NotGenAi,
    /// A GenAI event that cannot be read (reported back as rejected).
    Invalid,
    /// In a request refused whole.
    Refused,
}

impl LogRecordOutcome {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogRecordOutcome::Read => "read",
            LogRecordOutcome::NotGenAi => "not_genai",
            LogRecordOutcome::Invalid => "invalid",
            LogRecordOutcome::Refused => "refused",
        }
    }
}

/// Why spans were refused (`llmhub.reason` of `llmhub.receiver.spans.refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanRefusal {
    /// A span normalization rejects (reported back as rejected).
    InvalidSpan,
    /// A request past `receivers.otlp.limits.max_spans_per_request`.
    TooManySpans,
    /// An exporter's queue, or the memory budget, could not take the request.
    Push(PushReason),
}

impl SpanRefusal {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            SpanRefusal::InvalidSpan => "invalid_span",
            SpanRefusal::TooManySpans => "too_many_spans",
            SpanRefusal::Push(r) => r.as_str(),
        }
    }
}

/// Which limit a span passed, read only in part (`llmhub.reason` of
/// `llmhub.receiver.spans.limited`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanLimit {
    /// `receivers.otlp.limits.max_attributes_per_span`.
    AttributesPerSpan,
    /// `receivers.otlp.limits.max_events_per_span`.
    EventsPerSpan,
}

impl SpanLimit {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            SpanLimit::AttributesPerSpan => "attributes_per_span",
            SpanLimit::EventsPerSpan => "events_per_span",
        }
    }
}

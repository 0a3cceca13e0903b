//! What the OTLP receivers answer, shared by gRPC and HTTP: decode, process, and build the export
//! response with its partial success.

use crate::metrics::{LogRecordOutcome, SpanRefusal, Transport};
use crate::processors::genai::{GenAiProcessor, Input};
use llmhub_core::span::{Attribute, SpanView};
use llmhub_core::LlmCall;
use llmhub_exporters::forward::Original;
use llmhub_exporters::queue::{PushError, PushReason};
use llmhub_server::budget::Reservation;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;

use super::malformed::Malformed;

/// Why a trace request was not taken.
#[derive(Debug)]
pub enum TraceError {
    /// Malformed: final, the client must not retry.
    Invalid(Malformed),
    /// Refused for now (a full or closing queue): the client should retry after the delay.
    Refused(PushError),
    /// Beyond a limit (too many spans): final, the client must send smaller requests.
    TooLarge(String),
}

impl TraceError {
    /// How long the client should wait before retrying a refused request.
    pub fn retry_after(e: &PushError) -> std::time::Duration {
        match e {
            PushError::Full { .. } | PushError::OverBudget(_) | PushError::Unconfirmed => {
                std::time::Duration::from_secs(1)
            }
            _ => std::time::Duration::from_secs(5),
        }
    }
}

/// Decodes a protobuf trace request, processes it and delivers its records. `held` is the
/// request's share of the memory budget, grown by what processing will hold before anything is
/// processed.
pub async fn traces_protobuf(
    p: &GenAiProcessor,
    body: &[u8],
    transport: Transport,
    tenant: Option<&str>,
    held: Option<&mut Reservation>,
) -> Result<ExportTraceServiceResponse, TraceError> {
    let views = super::wire::decode_request(body).map_err(|e| TraceError::Invalid(Malformed::Traces(e)))?;
    let shape = Shape::of(&views);
    check_count(p, shape, transport)?;
    hold_working_set(p, held, shape, body.len(), transport)?;
    p.export(Input::Spans(&views), Some(Original::Protobuf(body)), transport, tenant)
        .await
        .map(response)
        .map_err(TraceError::Refused)
}

/// Heap a record holds beyond its struct: its strings (ids, names, model, service, tenant).
const RECORD_HEAP_BYTES: usize = 1024;

/// A decoded request's size, counted once: its spans (or log records), and the attributes of its
/// resources, spans and events.
#[derive(Clone, Copy)]
pub(super) struct Shape {
    items: usize,
    attributes: usize,
    /// Bytes a decoded (owned) message holds beyond the body.
    decoded: usize,
    logs: bool,
}

impl Shape {
    fn of(views: &[crate::processors::view::ResourceView<'_>]) -> Shape {
        let (mut items, mut attributes) = (0usize, 0usize);
        for r in views {
            attributes += r.attributes.len();
            for s in r.scopes.iter().flat_map(|s| &s.spans) {
                items += 1;
                attributes += s.attributes.len() + s.events.iter().map(|e| e.attributes.len()).sum::<usize>();
            }
        }
        Shape {
            items,
            attributes,
            decoded: 0,
            logs: false,
        }
    }

    pub(super) fn of_logs(views: &[crate::processors::view::LogResourceView<'_>], decoded: usize) -> Shape {
        let (mut items, mut attributes) = (0usize, 0usize);
        for r in views {
            attributes += r.attributes.len();
            for l in r.scopes.iter().flat_map(|s| &s.records) {
                items += 1;
                attributes += l.attributes.len();
            }
        }
        Shape {
            items,
            attributes,
            decoded,
            logs: true,
        }
    }

    /// What processing the request holds beyond its body: the views of its spans and attributes,
    /// one record per span, and, for each exporter with a queue, about the body's size again (the
    /// rows or the enriched request waiting to be written).
    fn working_set(self, body_len: usize, queues: usize) -> u64 {
        let per_span = std::mem::size_of::<SpanView<'_>>() + std::mem::size_of::<LlmCall>() + RECORD_HEAP_BYTES;
        (self.items * per_span
            + self.attributes * std::mem::size_of::<Attribute<'_>>()
            + self.decoded
            + queues * body_len) as u64
    }

    /// Counts the request's items as refused whole, under `reason` (spans) or as refused log records.
    fn count_refused(self, p: &GenAiProcessor, transport: Transport, reason: SpanRefusal) {
        if self.logs {
            p.metrics()
                .record_log_records(transport, LogRecordOutcome::Refused, self.items as u64);
        } else {
            if reason == SpanRefusal::TooManySpans {
                p.metrics().record_received(transport, self.items as u64);
            }
            p.metrics().record_refused(reason, self.items as u64);
        }
    }
}

/// Grows the request's reservation by its [`Shape::working_set`], or refuses it (retryable)
/// before anything of it is processed.
pub(super) fn hold_working_set(
    p: &GenAiProcessor,
    held: Option<&mut Reservation>,
    shape: Shape,
    body_len: usize,
    transport: Transport,
) -> Result<(), TraceError> {
    let Some(held) = held else { return Ok(()) };
    held.grow(shape.working_set(body_len, p.queues())).map_err(|e| {
        shape.count_refused(p, transport, SpanRefusal::Push(PushReason::MemoryLimit));
        TraceError::Refused(PushError::OverBudget(e))
    })
}

/// Refuses a request holding more spans (or log records) than
/// `receivers.otlp.limits.max_spans_per_request`.
pub(super) fn check_count(p: &GenAiProcessor, shape: Shape, transport: Transport) -> Result<(), TraceError> {
    let n = shape.items;
    let max = p.limits().max_spans_per_request;
    if n <= max {
        return Ok(());
    }
    shape.count_refused(p, transport, SpanRefusal::TooManySpans);
    let what = if shape.logs { "log records" } else { "spans" };
    Err(TraceError::TooLarge(format!(
        "the request holds {n} {what}, more than the {max} allowed (receivers.otlp.limits.max_spans_per_request); send smaller batches"
    )))
}

/// Processes a decoded trace request (OTLP/JSON, `body_len` bytes of it) and delivers its
/// records; `held` as for [`traces_protobuf`].
pub async fn process(
    p: &GenAiProcessor,
    req: &ExportTraceServiceRequest,
    transport: Transport,
    tenant: Option<&str>,
    held: Option<&mut Reservation>,
    body_len: usize,
) -> Result<ExportTraceServiceResponse, TraceError> {
    let views = crate::processors::view::request(req);
    let shape = Shape::of(&views);
    check_count(p, shape, transport)?;
    hold_working_set(p, held, shape, body_len, transport)?;
    p.export(Input::Spans(&views), Some(Original::Message(req)), transport, tenant)
        .await
        .map(response)
        .map_err(TraceError::Refused)
}

/// `google.rpc.Status`: the body of OTLP/HTTP error responses and the gRPC
/// `grpc-status-details-bin` trailer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// gRPC status code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing message naming the problem.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Details; llmhub sends a `google.rpc.RetryInfo` with retryable refusals.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    /// Type URL.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// Encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    /// How long to wait.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    /// Seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// gRPC code RESOURCE_EXHAUSTED.
pub const RESOURCE_EXHAUSTED: i32 = 8;
/// gRPC code UNAVAILABLE.
pub const UNAVAILABLE: i32 = 14;
/// Type URL of `google.rpc.RetryInfo`.
pub const RETRY_INFO_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The gRPC code and `google.rpc.Status` (with `RetryInfo`) of a refused request: a full queue is
/// RESOURCE_EXHAUSTED, the memory limit or a closing or failing queue UNAVAILABLE; both retryable
/// under OTLP's rules.
pub fn refusal(e: &PushError) -> (i32, RpcStatus) {
    let code = match e {
        PushError::Full { .. } => RESOURCE_EXHAUSTED,
        _ => UNAVAILABLE,
    };
    let delay = TraceError::retry_after(e);
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: delay.as_secs() as i64,
            nanos: 0,
        }),
    };
    (
        code,
        RpcStatus {
            code,
            message: e.to_string(),
            details: vec![ProtoAny {
                type_url: RETRY_INFO_URL.to_owned(),
                value: info.encode_to_vec(),
            }],
        },
    )
}

fn response(s: crate::processors::genai::ExportSummary) -> ExportTraceServiceResponse {
    if s.rejected > 0 {
        tracing::debug!(rejected_spans = s.rejected, reason = %s.message, "spans of an export request rejected");
    }
    let partial_success = (s.rejected > 0 || !s.message.is_empty()).then_some(ExportTracePartialSuccess {
        rejected_spans: s.rejected as i64,
        error_message: s.message,
    });
    ExportTraceServiceResponse { partial_success }
}

/// Counts the data points of a protobuf metrics request.
pub fn count_data_points(body: &[u8]) -> Result<i64, Malformed> {
    let req = ExportMetricsServiceRequest::decode(body).map_err(|error| Malformed::Protobuf {
        message: "ExportMetricsServiceRequest",
        error,
    })?;
    let mut n = 0usize;
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                n += match &m.data {
                    Some(Data::Gauge(g)) => g.data_points.len(),
                    Some(Data::Sum(s)) => s.data_points.len(),
                    Some(Data::Histogram(h)) => h.data_points.len(),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                    Some(Data::Summary(s)) => s.data_points.len(),
                    None => 0,
                };
            }
        }
    }
    Ok(n as i64)
}

const NOT_INGESTED: &str = "llmhub reads traces and GenAI log events, not metrics; send metrics to a metrics backend (llmhub derives its metrics from spans and events)";

/// The metrics response: every data point rejected, with the reason.
pub fn metrics_response(n: i64) -> ExportMetricsServiceResponse {
    tracing::debug!(
        rejected_data_points = n,
        "metrics export request not ingested (llmhub reads traces and log events)"
    );
    ExportMetricsServiceResponse {
        partial_success: (n > 0).then(|| ExportMetricsPartialSuccess {
            rejected_data_points: n,
            error_message: format!("{n} data points not stored: {NOT_INGESTED}"),
        }),
    }
}

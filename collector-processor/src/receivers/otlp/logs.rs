//! What the OTLP receivers answer to a logs export request, shared by gRPC and HTTP: decode, read
//! the GenAI events into records (every other record is accepted and counted), deliver them, and
//! build the response with its partial success.

use super::answer::{check_count, hold_working_set, Shape, TraceError};
use super::malformed::Malformed;
use crate::metrics::Transport;
use crate::processors::genai::{ExportSummary, GenAiProcessor, Input};
use crate::processors::view;
use llmhub_server::budget::Reservation;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;

/// Decodes a protobuf logs request and processes it; `held` is the request's share of the memory
/// budget (its body), grown by the decoded message and what processing holds.
pub async fn logs_protobuf(
    p: &GenAiProcessor,
    body: &[u8],
    transport: Transport,
    tenant: Option<&str>,
    held: Option<&mut Reservation>,
) -> Result<ExportLogsServiceResponse, TraceError> {
    let req = ExportLogsServiceRequest::decode(body).map_err(|error| {
        TraceError::Invalid(Malformed::Protobuf {
            message: "ExportLogsServiceRequest",
            error,
        })
    })?;
    // The decoded message holds about the body's size again.
    process(p, &req, transport, tenant, held, body.len(), body.len()).await
}

/// Processes a decoded logs request (`body_len` bytes on the wire; `decoded_len` bytes held by the
/// decoded message beyond what the caller reserved) and delivers its records.
pub async fn process(
    p: &GenAiProcessor,
    req: &ExportLogsServiceRequest,
    transport: Transport,
    tenant: Option<&str>,
    held: Option<&mut Reservation>,
    body_len: usize,
    decoded_len: usize,
) -> Result<ExportLogsServiceResponse, TraceError> {
    let views = view::logs_request(req);
    let shape = Shape::of_logs(&views, decoded_len);
    check_count(p, shape, transport)?;
    hold_working_set(p, held, shape, body_len, transport)?;
    p.export(Input::Logs(&views), None, transport, tenant)
        .await
        .map(response)
        .map_err(TraceError::Refused)
}

fn response(s: ExportSummary) -> ExportLogsServiceResponse {
    if s.rejected > 0 {
        tracing::debug!(rejected_log_records = s.rejected, reason = %s.message, "log records of an export request rejected");
    }
    let partial_success = (s.rejected > 0 || !s.message.is_empty()).then_some(ExportLogsPartialSuccess {
        rejected_log_records: s.rejected as i64,
        error_message: s.message,
    });
    ExportLogsServiceResponse { partial_success }
}

/// The OTLP/JSON form of a logs response.
pub fn response_json(r: &ExportLogsServiceResponse) -> Vec<u8> {
    let v = match &r.partial_success {
        Some(p) => serde_json::json!({
            "partialSuccess": { "rejectedLogRecords": p.rejected_log_records.to_string(), "errorMessage": p.error_message }
        }),
        None => serde_json::json!({}),
    };
    v.to_string().into_bytes()
}

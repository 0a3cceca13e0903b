//! What the OTLP receivers answer, shared by gRPC and HTTP: decode, process, and build the export
//! response with its partial success.

use crate::processors::genai::GenAiProcessor;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;

pub use super::json::Signal;

/// Decodes a protobuf trace request and processes it.
pub fn traces_protobuf(
    p: &GenAiProcessor,
    body: &[u8],
    transport: &'static str,
) -> Result<ExportTraceServiceResponse, String> {
    let views =
        super::wire::decode_request(body).map_err(|e| format!("malformed ExportTraceServiceRequest protobuf: {e}"))?;
    Ok(response(p.process_views(&views, transport)))
}

/// Processes a decoded trace request into its response.
pub fn process(
    p: &GenAiProcessor,
    req: &ExportTraceServiceRequest,
    transport: &'static str,
) -> ExportTraceServiceResponse {
    response(p.process(req, transport))
}

fn response(s: crate::processors::genai::ExportSummary) -> ExportTraceServiceResponse {
    let partial_success = (s.rejected > 0 || !s.message.is_empty()).then_some(ExportTracePartialSuccess {
        rejected_spans: s.rejected as i64,
        error_message: s.message,
    });
    ExportTraceServiceResponse { partial_success }
}

/// Counts the data points (metrics) or log records (logs) of a protobuf request.
pub fn count_protobuf(body: &[u8], signal: Signal) -> Result<i64, String> {
    match signal {
        Signal::Metrics => {
            let req = ExportMetricsServiceRequest::decode(body)
                .map_err(|e| format!("malformed ExportMetricsServiceRequest protobuf: {e}"))?;
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
        Signal::Logs => {
            let req = ExportLogsServiceRequest::decode(body)
                .map_err(|e| format!("malformed ExportLogsServiceRequest protobuf: {e}"))?;
            Ok(req
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len() as i64)
                .sum())
        }
    }
}

const NOT_INGESTED: &str =
    "llmhub ingests traces only; send metrics and logs to a metrics or logs backend (llmhub derives its metrics from spans)";

/// The metrics response: every data point rejected, with the reason.
pub fn metrics_response(n: i64) -> ExportMetricsServiceResponse {
    ExportMetricsServiceResponse {
        partial_success: (n > 0).then(|| ExportMetricsPartialSuccess {
            rejected_data_points: n,
            error_message: format!("{n} data points not stored: {NOT_INGESTED}"),
        }),
    }
}

/// The logs response: every log record rejected, with the reason.
pub fn logs_response(n: i64) -> ExportLogsServiceResponse {
    ExportLogsServiceResponse {
        partial_success: (n > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: n,
            error_message: format!("{n} log records not stored: {NOT_INGESTED}"),
        }),
    }
}

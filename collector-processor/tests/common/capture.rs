//! A downstream OTLP trace endpoint for forwarding tests: an OTLP/gRPC or OTLP/HTTP server that
//! keeps every request it accepts, and permanently refuses a request whose first span is named
//! [`REFUSE`].

use llmhub_exporters::otlp_metrics::OtlpProtocol;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the endpoint accepted, in arrival order.
pub type Captured = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// Refuses (permanently) any request whose first span is named this.
pub const REFUSE: &str = "refuse-me";

fn refused(req: &ExportTraceServiceRequest) -> bool {
    req.resource_spans
        .first()
        .and_then(|r| r.scope_spans.first())
        .and_then(|s| s.spans.first())
        .is_some_and(|s| s.name == REFUSE)
}

struct Capture(Captured);

#[tonic::async_trait]
impl TraceService for Capture {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let req = request.into_inner();
        if refused(&req) {
            return Err(tonic::Status::invalid_argument("this endpoint refuses refuse-me spans"));
        }
        self.0.lock().expect("lock").push(req);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Starts the endpoint on a free loopback port; returns its URL and what it accepts.
pub async fn downstream(protocol: OtlpProtocol) -> (String, Captured) {
    let captured: Captured = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    match protocol {
        OtlpProtocol::Grpc => {
            let svc = TraceServiceServer::new(Capture(captured.clone()))
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
            tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(svc)
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
            );
        }
        OtlpProtocol::HttpProtobuf => {
            let c = captured.clone();
            let app = axum::Router::new().route(
                "/v1/traces",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let c = c.clone();
                    async move {
                        let req = ExportTraceServiceRequest::decode(body).expect("valid OTLP");
                        if refused(&req) {
                            return (http::StatusCode::BAD_REQUEST, Vec::new());
                        }
                        c.lock().expect("lock").push(req);
                        (
                            http::StatusCode::OK,
                            ExportTraceServiceResponse::default().encode_to_vec(),
                        )
                    }
                }),
            );
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
    }
    (format!("http://{addr}"), captured)
}

/// The spans of `reqs` by (trace id, span id).
pub fn spans_by_id(reqs: &[ExportTraceServiceRequest]) -> HashMap<(Vec<u8>, Vec<u8>), Span> {
    reqs.iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| ((s.trace_id.clone(), s.span_id.clone()), s.clone()))
        .collect()
}

//! OTLP/gRPC: the trace, metrics and logs `Export` services on one tonic server.
//!
//! Requests are decoded here rather than by tonic's generated code so that a malformed message is
//! answered with `INVALID_ARGUMENT` naming the problem (the generated code answers `INTERNAL`), and
//! an oversized one with `RESOURCE_EXHAUSTED` (tonic's `OUT_OF_RANGE` is retryable in OTLP, and a
//! client would resend the same oversized message forever).

use super::answer::{self, TraceError};
use super::logs;
use crate::metrics::{RequestOutcome, Transport};
use crate::processors::genai::GenAiProcessor;
use bytes::{Buf, Bytes};
use llmhub_exporters::queue::PushError;
use llmhub_server::auth::Authenticator;
use llmhub_server::budget::{MemoryBudget, Reservation};
use prost::Message;
use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

/// A codec whose requests are raw bytes and whose responses are prost messages.
struct RawCodec<T>(PhantomData<T>);

struct RawDecoder;
struct ProstEncoder<T>(PhantomData<T>);

impl<T: Message + Send + 'static> Codec for RawCodec<T> {
    type Encode = T;
    type Decode = Bytes;
    type Encoder = ProstEncoder<T>;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder(PhantomData)
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl<T: Message> Encoder for ProstEncoder<T> {
    type Item = T;
    type Error = Status;
    fn encode(&mut self, item: T, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the response failed: {e}")))
    }
}

/// One OTLP signal's gRPC service.
pub trait GrpcSignal: Send + Sync + 'static {
    /// Fully qualified service name.
    const SERVICE: &'static str;
    /// The `Export` method path.
    const PATH: &'static str;
    /// Response message.
    type Response: Message + Default + Send + 'static;
    /// Handles one request body; `tenant` is the authenticated key's tenant, if it names one, and
    /// `held` the request's share of the memory budget (its body so far).
    fn handle(
        p: Arc<GenAiProcessor>,
        body: Bytes,
        tenant: Option<Arc<str>>,
        held: Option<Reservation>,
    ) -> BoxFuture<Self::Response, Status>;
}

/// The trace service.
pub struct Traces;
/// The metrics service (answered, not ingested).
pub struct Metrics;
/// The logs service (GenAI events read, every other record accepted and counted).
pub struct Logs;

impl GrpcSignal for Traces {
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    type Response = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    fn handle(
        p: Arc<GenAiProcessor>,
        body: Bytes,
        tenant: Option<Arc<str>>,
        mut held: Option<Reservation>,
    ) -> BoxFuture<Self::Response, Status> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let result = answer::traces_protobuf(&p, &body, Transport::Grpc, tenant.as_deref(), held.as_mut()).await;
            let partial = |r: &Self::Response| r.partial_success.as_ref().is_some_and(|ps| ps.rejected_spans > 0);
            finish(&p, started, result, partial)
        })
    }
}

/// Counts the request by its outcome and turns a refusal into its gRPC status.
fn finish<R>(
    p: &GenAiProcessor,
    started: std::time::Instant,
    result: Result<R, TraceError>,
    partial: impl Fn(&R) -> bool,
) -> Result<R, Status> {
    let outcome = match &result {
        Ok(r) if partial(r) => RequestOutcome::Partial,
        Ok(_) => RequestOutcome::Ok,
        Err(TraceError::Invalid(_)) => RequestOutcome::Invalid,
        Err(TraceError::Refused(PushError::OverBudget(_))) => RequestOutcome::MemoryLimit,
        Err(TraceError::Refused(_)) => RequestOutcome::Refused,
        Err(TraceError::TooLarge(_)) => RequestOutcome::TooLarge,
    };
    p.metrics()
        .record_request(Transport::Grpc, outcome, started.elapsed().as_secs_f64());
    result.map_err(|e| match e {
        TraceError::Invalid(m) => Status::invalid_argument(m.to_string()),
        TraceError::TooLarge(m) => Status::resource_exhausted(m),
        TraceError::Refused(e) => refusal_status(&e),
    })
}

impl GrpcSignal for Metrics {
    const SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    type Response = opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
    fn handle(
        p: Arc<GenAiProcessor>,
        body: Bytes,
        _: Option<Arc<str>>,
        _held: Option<Reservation>,
    ) -> BoxFuture<Self::Response, Status> {
        Box::pin(async move {
            let n = answer::count_data_points(&body).map_err(|m| Status::invalid_argument(m.to_string()))?;
            p.metrics().record_outcome(Transport::Grpc, RequestOutcome::NotIngested);
            Ok(answer::metrics_response(n))
        })
    }
}

impl GrpcSignal for Logs {
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    type Response = opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
    fn handle(
        p: Arc<GenAiProcessor>,
        body: Bytes,
        tenant: Option<Arc<str>>,
        mut held: Option<Reservation>,
    ) -> BoxFuture<Self::Response, Status> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let result = logs::logs_protobuf(&p, &body, Transport::Grpc, tenant.as_deref(), held.as_mut()).await;
            let partial = |r: &Self::Response| r.partial_success.as_ref().is_some_and(|ps| ps.rejected_log_records > 0);
            finish(&p, started, result, partial)
        })
    }
}

/// The debug line of a refused request (the connection's span names the client).
fn log_refusal(status: &Status) {
    if status.code() != tonic::Code::Ok {
        tracing::debug!(code = ?status.code(), reason = status.message(), "OTLP/gRPC request refused");
    }
}

/// Answers a request refused before it reached the handler, with its debug line.
fn refuse(status: Status) -> BoxFuture<http::Response<Body>, Infallible> {
    log_refusal(&status);
    Box::pin(async move { Ok(status.into_http()) })
}

/// A retryable refusal as a gRPC status with its `google.rpc.Status` details (`RetryInfo`).
fn refusal_status(e: &PushError) -> Status {
    let (code, status) = answer::refusal(e);
    Status::with_details(
        tonic::Code::from_i32(code),
        status.message.clone(),
        Bytes::from(status.encode_to_vec()),
    )
}

/// The request's share of the memory budget, shared by its body (which grows it frame by frame)
/// and the handler (which takes it once the message is read).
#[derive(Clone)]
struct Held(Arc<std::sync::Mutex<Option<Reservation>>>);

impl Held {
    /// The slot; a panic elsewhere while it was locked leaves nothing half-done in an `Option`.
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Reservation>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self) -> Option<Reservation> {
        self.slot().take()
    }
}

/// A request body that takes each frame from the memory budget as it arrives; past the budget it
/// ends with UNAVAILABLE (retryable), so the rest is never buffered.
struct Budgeted<B> {
    inner: B,
    held: Held,
}

impl<B> http_body::Body for Budgeted<B>
where
    B: http_body::Body + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, Status>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let grown = this
                        .held
                        .slot()
                        .as_mut()
                        .map_or(Ok(()), |r| r.grow(data.remaining() as u64));
                    if let Err(e) = grown {
                        return Poll::Ready(Some(Err(refusal_status(&PushError::OverBudget(e)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Status::from_error(e.into())))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A tower service answering one signal's `Export`.
pub struct GrpcService<S> {
    processor: Arc<GenAiProcessor>,
    max_message_bytes: usize,
    auth: Option<Arc<Authenticator>>,
    _signal: PhantomData<S>,
}

impl<S> Clone for GrpcService<S> {
    fn clone(&self) -> Self {
        GrpcService {
            processor: self.processor.clone(),
            max_message_bytes: self.max_message_bytes,
            auth: self.auth.clone(),
            _signal: PhantomData,
        }
    }
}

impl<S: GrpcSignal> GrpcService<S> {
    /// A service over the processor, accepting messages up to `max_message_bytes` after
    /// decompression, from clients holding one of `auth`'s keys when it is given.
    pub fn new(processor: Arc<GenAiProcessor>, max_message_bytes: usize, auth: Option<Arc<Authenticator>>) -> Self {
        GrpcService {
            processor,
            max_message_bytes,
            auth,
            _signal: PhantomData,
        }
    }
}

impl<S: GrpcSignal> NamedService for GrpcService<S> {
    const NAME: &'static str = S::SERVICE;
}

struct Unary<S>(Arc<GenAiProcessor>, Option<Arc<str>>, bool, PhantomData<S>);

impl<S: GrpcSignal> UnaryService<Bytes> for Unary<S> {
    type Response = S::Response;
    type Future = BoxFuture<Response<S::Response>, Status>;
    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let p = self.0.clone();
        let tenant = self.1.clone();
        let compressed = self.2;
        let mut held = request.extensions().get::<Held>().and_then(Held::take);
        let body = request.into_inner();
        // A compressed message was inflated into a buffer of its own, beside the frames counted.
        if let (Some(r), true) = (held.as_mut(), compressed) {
            if let Err(e) = r.grow(body.len() as u64) {
                p.metrics()
                    .record_request(Transport::Grpc, RequestOutcome::MemoryLimit, 0.0);
                return Box::pin(async move { Err(refusal_status(&PushError::OverBudget(e))) });
            }
        }
        Box::pin(async move { S::handle(p, body, tenant, held).await.map(Response::new) })
    }
}

impl<S, B> tower::Service<http::Request<B>> for GrpcService<S>
where
    S: GrpcSignal,
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != S::PATH {
            return refuse(Status::unimplemented("unknown method; only Export is served"));
        }
        // Authentication comes first: an unauthenticated client learns nothing else.
        let tenant: Option<Arc<str>> = match &self.auth {
            None => None,
            Some(auth) => match auth.check_headers(req.headers()) {
                Ok(t) => t.map(Arc::from),
                Err(denied) => {
                    self.processor
                        .metrics()
                        .record_request(Transport::Grpc, RequestOutcome::Unauthenticated, 0.0);
                    return refuse(Status::unauthenticated(denied.message()));
                }
            },
        };
        let processor = self.processor.clone();
        let max = self.max_message_bytes;
        // The memory budget: refused at once when there is no room at all, else the body takes
        // from it frame by frame.
        let held = match processor.budget().map(|b| MemoryBudget::try_reserve(b, 0)) {
            None => None,
            Some(Ok(r)) => Some(Held(Arc::new(std::sync::Mutex::new(Some(r))))),
            Some(Err(e)) => {
                processor
                    .metrics()
                    .record_request(Transport::Grpc, RequestOutcome::MemoryLimit, 0.0);
                return refuse(refusal_status(&PushError::OverBudget(e)));
            }
        };
        let compressed = req
            .headers()
            .get("grpc-encoding")
            .is_some_and(|v| v.as_bytes() != b"identity");
        let req = match &held {
            None => req.map(tonic::body::Body::new),
            Some(h) => {
                let (mut parts, body) = req.into_parts();
                parts.extensions.insert(h.clone());
                http::Request::from_parts(
                    parts,
                    tonic::body::Body::new(Budgeted {
                        inner: body,
                        held: h.clone(),
                    }),
                )
            }
        };
        Box::pin(async move {
            let codec = RawCodec::<S::Response>(PhantomData);
            let mut grpc = tonic::server::Grpc::new(codec)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .send_compressed(tonic::codec::CompressionEncoding::Gzip)
                .max_decoding_message_size(max)
                .max_encoding_message_size(usize::MAX);
            let mut resp = grpc
                .unary(Unary::<S>(processor, tenant, compressed, PhantomData), req)
                .await;
            // An oversized message is final for the client: say RESOURCE_EXHAUSTED (not retryable
            // without RetryInfo) instead of tonic's OUT_OF_RANGE (retryable).
            let out_of_range = resp.headers().get("grpc-status").is_some_and(|v| v.as_bytes() == b"11");
            if out_of_range {
                resp.headers_mut()
                    .insert("grpc-status", http::HeaderValue::from_static("8"));
            }
            // A refusal is answered trailers-only: its status is in the headers.
            if let Some(status) = Status::from_header_map(resp.headers()) {
                log_refusal(&status);
            }
            Ok(resp)
        })
    }
}

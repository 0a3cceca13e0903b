//! OTLP/HTTP: `POST /v1/traces` and `POST /v1/logs` (protobuf or JSON, optionally gzip), and
//! `/v1/metrics` answered as the specification says.
//!
//! Status codes: 200 with the export response (partial success when spans or log records were
//! rejected); 400 with a `google.rpc.Status` body for a malformed request; 413 when the body is
//! larger than allowed before or after decompression; 415 for an unsupported content type or
//! encoding; 405 for a method other than POST. Error bodies use the request's encoding (JSON or
//! protobuf).

use super::answer::{self, TraceError};
use super::{json, json_logs, logs};
use crate::metrics::{RequestOutcome, Transport};
use crate::processors::genai::GenAiProcessor;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use llmhub_exporters::queue::PushError;
use llmhub_server::budget::{MemoryBudget, Reservation};
use prost::Message;
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

/// Shared state of the HTTP receiver.
pub struct HttpState {
    /// The processor.
    pub processor: Arc<GenAiProcessor>,
    /// Largest body accepted as sent, in bytes.
    pub max_body: usize,
    /// Largest body accepted after decompression, in bytes.
    pub max_decompressed: usize,
    /// Keys the receiver requires, when given.
    pub auth: Option<Arc<llmhub_server::auth::Authenticator>>,
}

/// gRPC code UNAUTHENTICATED.
const UNAUTHENTICATED: i32 = 16;

/// Checks the request's API key; `Ok` carries the key's tenant, `Err` is the 401 response.
#[allow(clippy::result_large_err)]
fn authenticate(st: &HttpState, headers: &HeaderMap) -> Result<Option<String>, Response> {
    let Some(auth) = &st.auth else { return Ok(None) };
    match auth.check_headers(headers) {
        Ok(t) => Ok(t.map(str::to_owned)),
        Err(denied) => {
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                Encoding::Json,
                UNAUTHENTICATED,
                denied.message().to_owned(),
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
            Err(r)
        }
    }
}

/// The receiver's routes.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .route("/v1/logs", post(logs))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

pub use super::answer::RpcStatus;

/// gRPC code INVALID_ARGUMENT, used in `google.rpc.Status` bodies.
const INVALID_ARGUMENT: i32 = 3;
/// gRPC code RESOURCE_EXHAUSTED.
const RESOURCE_EXHAUSTED: i32 = 8;

fn error(status: StatusCode, enc: Encoding, code: i32, message: String) -> Response {
    tracing::debug!(status = status.as_u16(), reason = %message, "OTLP/HTTP request refused");
    let body = match enc {
        Encoding::Json => serde_json::json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
        Encoding::Protobuf => RpcStatus {
            code,
            message,
            details: Vec::new(),
        }
        .encode_to_vec(),
    };
    (status, [(header::CONTENT_TYPE, enc.content_type())], body).into_response()
}

/// A retryable refusal: 429 for a full queue, 503 at the memory limit or when closing or failing,
/// with `Retry-After`
/// (OTLP/HTTP's retryable statuses).
fn refused(enc: Encoding, e: &PushError) -> Response {
    let (code, status) = answer::refusal(e);
    let http = if code == answer::RESOURCE_EXHAUSTED {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    tracing::debug!(status = http.as_u16(), reason = %e, "OTLP/HTTP request refused; the client retries it");
    let after = answer::TraceError::retry_after(e).as_secs().to_string();
    let body = match enc {
        Encoding::Json => serde_json::json!({ "code": code, "message": status.message })
            .to_string()
            .into_bytes(),
        Encoding::Protobuf => status.encode_to_vec(),
    };
    (
        http,
        [
            (header::CONTENT_TYPE, enc.content_type().to_owned()),
            (header::RETRY_AFTER, after),
        ],
        body,
    )
        .into_response()
}

/// Reads the content type; `Err` is the 415 response.
#[allow(clippy::result_large_err)]
fn encoding(headers: &HeaderMap) -> Result<Encoding, Response> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Encoding::Json,
            INVALID_ARGUMENT,
            format!("unsupported Content-Type {raw:?}: send application/x-protobuf or application/json"),
        )),
    }
}

/// Why a body was not read.
type BodyRefusal = (Response, RequestOutcome);

/// Takes `bytes` into the request's reservation, or answers the memory-limit refusal.
#[allow(clippy::result_large_err)]
fn grow(held: &mut Option<Reservation>, bytes: usize, enc: Encoding) -> Result<(), BodyRefusal> {
    match held.as_mut().map(|r| r.grow(bytes as u64)) {
        Some(Err(e)) => Err((refused(enc, &PushError::OverBudget(e)), RequestOutcome::MemoryLimit)),
        _ => Ok(()),
    }
}

/// The next data chunk of the body (frames without data, such as trailers, are skipped).
async fn next_chunk(body: &mut Body) -> Option<Result<Bytes, axum::Error>> {
    loop {
        let frame = std::future::poll_fn(|cx| http_body::Body::poll_frame(std::pin::Pin::new(&mut *body), cx)).await?;
        match frame {
            Ok(f) => match f.into_data() {
                Ok(d) => return Some(Ok(d)),
                Err(_) => continue,
            },
            Err(e) => return Some(Err(e)),
        }
    }
}

/// Most bytes of a refused body read and thrown away before the refusal is sent: at least
/// [`DRAIN_MIN_BYTES`], and four times the body limit.
fn drain_bound(max_body: usize) -> usize {
    max_body.saturating_mul(4).max(DRAIN_MIN_BYTES)
}

/// See [`drain_bound`].
const DRAIN_MIN_BYTES: usize = 256 * 1024 * 1024;

/// Longest time spent reading a refused body before answering anyway.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads what is left of a refused body and throws it away, so that a client that writes its
/// whole body before it reads the answer (Python's `requests` and `urllib`, which the OTLP
/// exporters use) gets the refusal rather than a reset connection: up to `limit` bytes within
/// [`DRAIN_TIME`]. Nothing is kept, so this costs bandwidth, not memory. Returns whether the body
/// was read to its end; if not, the refusal closes the connection.
async fn drain(mut body: Body, limit: usize) -> bool {
    let read_all = async {
        let mut seen = 0usize;
        while let Some(chunk) = next_chunk(&mut body).await {
            let Ok(chunk) = chunk else { return false };
            seen += chunk.len();
            if seen > limit {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, read_all).await.unwrap_or(false)
}

/// `response`, sent after draining `body` ([`drain`]); with `Connection: close` when the body
/// could not be read to its end (or was declared longer than the bound: then nothing is read).
async fn after_drain(mut response: Response, body: Body, headers: &HeaderMap, max_body: usize) -> Response {
    let bound = drain_bound(max_body);
    let declared_beyond = declared_length(headers).is_some_and(|n| n > bound);
    if declared_beyond || !drain(body, bound).await {
        response
            .headers_mut()
            .insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}

fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads and decompresses the body within the limits, taking what it holds from the memory budget
/// as it goes (`held`); a refused body is drained.
async fn read_body(
    st: &HttpState,
    headers: &HeaderMap,
    mut body: Body,
    enc: Encoding,
    held: &mut Option<Reservation>,
) -> Result<Vec<u8>, BodyRefusal> {
    let too_large = || {
        (
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                enc,
                RESOURCE_EXHAUSTED,
                format!("request body is larger than the {} byte limit (receivers.otlp.protocols.http.max_request_body_size_mib); send smaller batches", st.max_body),
            ),
            RequestOutcome::TooLarge,
        )
    };
    let declared = declared_length(headers);
    // Refused bodies are read to the end (within a bound) and thrown away, so a client still
    // sending gets the 413 instead of a reset connection.
    if declared.is_some_and(|n| n > st.max_body) {
        let (r, outcome) = too_large();
        return Err((after_drain(r, body, headers, st.max_body).await, outcome));
    }
    let mut raw = Vec::with_capacity(declared.unwrap_or(0));
    if let Err((r, outcome)) = grow(held, raw.capacity(), enc) {
        return Err((after_drain(r, body, headers, st.max_body).await, outcome));
    }
    while let Some(chunk) = next_chunk(&mut body).await {
        let chunk = chunk.map_err(|e| {
            (
                error(
                    StatusCode::BAD_REQUEST,
                    enc,
                    INVALID_ARGUMENT,
                    format!("cannot read request body: {e}"),
                ),
                RequestOutcome::Invalid,
            )
        })?;
        if raw.len() + chunk.len() > st.max_body {
            drop(raw);
            let (r, outcome) = too_large();
            return Err((after_drain(r, body, headers, st.max_body).await, outcome));
        }
        let before = raw.capacity();
        raw.extend_from_slice(&chunk);
        if let Err((r, outcome)) = grow(held, raw.capacity() - before, enc) {
            drop(raw);
            return Err((after_drain(r, body, headers, st.max_body).await, outcome));
        }
    }
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match content_encoding.as_str() {
        "" | "identity" => Ok(raw),
        "gzip" | "x-gzip" => gunzip(&raw, st.max_decompressed, |n| {
            held.as_mut().map_or(Ok(()), |r| r.grow(n as u64))
        })
        .map_err(|e| match e {
            GunzipError::TooLarge => (
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    enc,
                    RESOURCE_EXHAUSTED,
                    format!("request body decompresses to more than the {} byte limit (receivers.otlp.protocols.http.max_decompressed_body_size_mib)", st.max_decompressed),
                ),
                RequestOutcome::TooLarge,
            ),
            GunzipError::Invalid(m) => {
                (error(StatusCode::BAD_REQUEST, enc, INVALID_ARGUMENT, format!("invalid gzip body: {m}")), RequestOutcome::Invalid)
            }
            GunzipError::Refused(e) => (refused(enc, &PushError::OverBudget(e)), RequestOutcome::MemoryLimit),
        }),
        other => Err((
            error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                enc,
                INVALID_ARGUMENT,
                format!("unsupported Content-Encoding {other:?}: send gzip or identity"),
            ),
            RequestOutcome::Unsupported,
        )),
    }
}

enum GunzipError {
    TooLarge,
    Invalid(String),
    Refused(llmhub_server::budget::OverBudget),
}

/// Inflates `raw` up to `limit` bytes, passing each growth of the output buffer to `take` first.
fn gunzip(
    raw: &[u8],
    limit: usize,
    mut take: impl FnMut(usize) -> Result<(), llmhub_server::budget::OverBudget>,
) -> Result<Vec<u8>, GunzipError> {
    const CHUNK: usize = 64 * 1024;
    let mut out = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(raw).take(limit as u64 + 1);
    loop {
        if out.capacity() - out.len() < CHUNK {
            let before = out.capacity();
            out.reserve(CHUNK);
            take(out.capacity() - before).map_err(GunzipError::Refused)?;
        }
        let at = out.len();
        out.resize(out.capacity(), 0);
        let n = match reader.read(&mut out[at..]) {
            Ok(n) => n,
            Err(e) => return Err(GunzipError::Invalid(e.to_string())),
        };
        out.truncate(at + n);
        if n == 0 {
            break;
        }
        if out.len() > limit {
            return Err(GunzipError::TooLarge);
        }
    }
    Ok(out)
}

/// The request's share of the memory budget: none when there is no budget, a refusal when the
/// budget has no room at all.
#[allow(clippy::result_large_err)]
fn admit(st: &HttpState, enc: Encoding) -> Result<Option<Reservation>, BodyRefusal> {
    match st.processor.budget().map(|b| MemoryBudget::try_reserve(b, 0)) {
        None => Ok(None),
        Some(Ok(r)) => Ok(Some(r)),
        Some(Err(e)) => Err((refused(enc, &PushError::OverBudget(e)), RequestOutcome::MemoryLimit)),
    }
}

/// The signals read on HTTP.
#[derive(Clone, Copy)]
enum Ingest {
    Traces,
    Logs,
}

async fn traces(State(st): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    ingest(&st, headers, body, Ingest::Traces).await
}

async fn logs(State(st): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    ingest(&st, headers, body, Ingest::Logs).await
}

async fn ingest(st: &HttpState, headers: HeaderMap, body: Body, kind: Ingest) -> Response {
    let started = Instant::now();
    let (resp, transport, outcome) = ingest_inner(st, &headers, body, kind).await;
    st.processor
        .metrics()
        .record_request(transport, outcome, started.elapsed().as_secs_f64());
    resp
}

/// Decodes, processes and answers one request of `kind`: the response body in the request's
/// encoding, and whether part of it was rejected.
async fn answer(
    st: &HttpState,
    kind: Ingest,
    enc: Encoding,
    bytes: &[u8],
    transport: Transport,
    tenant: Option<&str>,
    held: &mut Option<Reservation>,
) -> Result<(Vec<u8>, bool), TraceError> {
    let p = &st.processor;
    if enc == Encoding::Json {
        // The decoded message takes about the body's size again.
        if let Some(r) = held.as_mut() {
            r.grow(bytes.len() as u64)
                .map_err(|e| TraceError::Refused(PushError::OverBudget(e)))?;
        }
    }
    match (kind, enc) {
        (Ingest::Traces, Encoding::Protobuf) => {
            let r = answer::traces_protobuf(p, bytes, transport, tenant, held.as_mut()).await?;
            Ok((r.encode_to_vec(), trace_partial(&r)))
        }
        (Ingest::Traces, Encoding::Json) => {
            let req = json::decode_traces(bytes).map_err(TraceError::Invalid)?;
            let r = answer::process(p, &req, transport, tenant, held.as_mut(), bytes.len()).await?;
            Ok((trace_response_json(&r), trace_partial(&r)))
        }
        (Ingest::Logs, Encoding::Protobuf) => {
            let r = logs::logs_protobuf(p, bytes, transport, tenant, held.as_mut()).await?;
            Ok((r.encode_to_vec(), logs_partial(&r)))
        }
        (Ingest::Logs, Encoding::Json) => {
            let req = json_logs::decode_logs(bytes).map_err(TraceError::Invalid)?;
            let r = logs::process(p, &req, transport, tenant, held.as_mut(), bytes.len(), 0).await?;
            Ok((logs::response_json(&r), logs_partial(&r)))
        }
    }
}

fn trace_partial(r: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse) -> bool {
    r.partial_success.as_ref().is_some_and(|p| p.rejected_spans > 0)
}

fn logs_partial(r: &opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse) -> bool {
    r.partial_success.as_ref().is_some_and(|p| p.rejected_log_records > 0)
}

async fn ingest_inner(
    st: &HttpState,
    headers: &HeaderMap,
    body: Body,
    kind: Ingest,
) -> (Response, Transport, RequestOutcome) {
    let tenant = match authenticate(st, headers) {
        Ok(t) => t,
        Err(r) => return (r, Transport::Http, RequestOutcome::Unauthenticated),
    };
    let enc = match encoding(headers) {
        Ok(e) => e,
        Err(r) => return (r, Transport::Http, RequestOutcome::Unsupported),
    };
    let transport = match enc {
        Encoding::Protobuf => Transport::HttpProtobuf,
        Encoding::Json => Transport::HttpJson,
    };
    let mut held = match admit(st, enc) {
        Ok(h) => h,
        Err((r, outcome)) => return (after_drain(r, body, headers, st.max_body).await, transport, outcome),
    };
    let bytes = match read_body(st, headers, body, enc, &mut held).await {
        Ok(b) => b,
        Err((r, outcome)) => return (r, transport, outcome),
    };
    match answer(st, kind, enc, &bytes, transport, tenant.as_deref(), &mut held).await {
        Ok((body, partial)) => (
            (StatusCode::OK, [(header::CONTENT_TYPE, enc.content_type())], body).into_response(),
            transport,
            if partial {
                RequestOutcome::Partial
            } else {
                RequestOutcome::Ok
            },
        ),
        Err(TraceError::Invalid(m)) => (
            error(StatusCode::BAD_REQUEST, enc, INVALID_ARGUMENT, m.to_string()),
            transport,
            RequestOutcome::Invalid,
        ),
        Err(TraceError::Refused(e)) => {
            let outcome = if matches!(e, PushError::OverBudget(_)) {
                RequestOutcome::MemoryLimit
            } else {
                RequestOutcome::Refused
            };
            (refused(enc, &e), transport, outcome)
        }
        Err(TraceError::TooLarge(m)) => (
            error(StatusCode::PAYLOAD_TOO_LARGE, enc, RESOURCE_EXHAUSTED, m),
            transport,
            RequestOutcome::TooLarge,
        ),
    }
}

fn trace_response_json(r: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse) -> Vec<u8> {
    let v = match &r.partial_success {
        Some(p) => serde_json::json!({
            "partialSuccess": { "rejectedSpans": p.rejected_spans.to_string(), "errorMessage": p.error_message }
        }),
        None => serde_json::json!({}),
    };
    v.to_string().into_bytes()
}

async fn metrics(State(st): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    not_ingested(&st, &headers, body).await
}

/// Metrics: decoded to check and count them, then answered with every data point rejected and
/// the reason, so exporters log a clear message instead of failing on a 404.
async fn not_ingested(st: &HttpState, headers: &HeaderMap, body: Body) -> Response {
    if let Err(r) = authenticate(st, headers) {
        st.processor
            .metrics()
            .record_outcome(Transport::Http, RequestOutcome::Unauthenticated);
        return r;
    }
    let enc = match encoding(headers) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let mut held = match admit(st, enc) {
        Ok(h) => h,
        Err((r, _)) => return after_drain(r, body, headers, st.max_body).await,
    };
    let bytes = match read_body(st, headers, body, enc, &mut held).await {
        Ok(b) => b,
        Err((r, _)) => return r,
    };
    let count = match enc {
        Encoding::Protobuf => answer::count_data_points(&bytes),
        Encoding::Json => json::count_data_points(&bytes),
    };
    let n = match count {
        Ok(n) => n,
        Err(m) => return error(StatusCode::BAD_REQUEST, enc, INVALID_ARGUMENT, m.to_string()),
    };
    st.processor
        .metrics()
        .record_outcome(Transport::Http, RequestOutcome::NotIngested);
    let r = answer::metrics_response(n);
    let body = match enc {
        Encoding::Protobuf => r.encode_to_vec(),
        Encoding::Json => match r.partial_success {
            Some(p) => serde_json::json!({"partialSuccess": {"rejectedDataPoints": p.rejected_data_points.to_string(), "errorMessage": p.error_message}}),
            None => serde_json::json!({}),
        }
        .to_string()
        .into_bytes(),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, enc.content_type())], body).into_response()
}

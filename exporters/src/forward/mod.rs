//! Span forwarding: every export request, with its spans enriched ([`enrich`]) and otherwise
//! unchanged, goes on to a downstream OTLP endpoint (an OpenTelemetry Collector, a tracing
//! backend, another llmhub) over gRPC or HTTP/protobuf, through the same bounded, optionally
//! durable [`Queue`] as the PostgreSQL sink, so llmhub can sit inline in a trace pipeline.
//!
//! Delivery is at least once: a request is retried (backoff with full jitter) while the endpoint
//! answers with an OTLP retryable status or cannot be reached; a request it refuses for good (a
//! permanent status) goes to the dead-letter file with the answer, and the next one is sent.

pub mod content;
pub mod enrich;
pub mod grpc_codec;

use crate::delivery::{backoff, endpoint_problem, DeadLetters};
use crate::otlp_metrics::OtlpProtocol;
use crate::queue::gauges::QueueGauges;
use crate::queue::{OnFull, PushError, Queue, QueueConfig};
use bytes::Bytes;
use llmhub_content::ContentPolicy;
use llmhub_core::LlmCall;
use llmhub_server::catalogue::{register, Kind, MetricDef};
use llmhub_server::tls::ClientTls;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataKey, MetadataMap, MetadataValue};

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The span forwarding exporter (`otlp` in a pipeline, as in an OpenTelemetry Collector).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// Downstream endpoint: `http://collector:4317` (gRPC) or `http://collector:4318` (HTTP;
    /// `/v1/traces` is appended unless the URL has a path).
    pub endpoint: String,
    /// `grpc` or `http_protobuf`.
    pub protocol: OtlpProtocol,
    /// Extra headers (an API key), sent with every request: HTTP headers, or gRPC metadata
    /// (names lowercased, as gRPC requires).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// TLS for an `https://` endpoint: the CA to trust (default: the Mozilla roots), a client
    /// certificate for mutual TLS, or `insecure_skip_verify`. An `https://` endpoint without it
    /// verifies against the Mozilla roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTls>,
    /// Compress requests with gzip.
    pub gzip: bool,
    /// Timeout of one export, in milliseconds.
    pub timeout_ms: u64,
    /// Requests sent at the same time.
    pub senders: usize,
    /// First retry delay, in milliseconds (doubles up to `retry_max_ms`, full jitter).
    pub retry_initial_ms: u64,
    /// Longest retry delay, in milliseconds.
    pub retry_max_ms: u64,
    /// Where requests the endpoint refuses for good are written (JSON lines). Default:
    /// `otlp-dead-letters.jsonl` in the queue directory, or in the working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_file: Option<PathBuf>,
    /// The queue in front of the senders.
    pub queue: QueueConfig,
    /// When the queue cannot take a request (full, closing, its disk failing): `drop` skips
    /// forwarding it, counted in `llmhub_forward_dropped_total`, and holds up neither the
    /// client's acknowledgement nor the other exporters; `refuse` refuses the whole request with
    /// OTLP's retryable status, so nothing is acknowledged that was not queued for forwarding.
    pub on_full: OnFull,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            endpoint: "http://localhost:4317".to_owned(),
            protocol: OtlpProtocol::Grpc,
            headers: BTreeMap::new(),
            tls: None,
            gzip: true,
            timeout_ms: 10_000,
            senders: 2,
            retry_initial_ms: 100,
            retry_max_ms: 30_000,
            dead_letter_file: None,
            queue: QueueConfig::default(),
            on_full: OnFull::Drop,
        }
    }
}

impl ForwardConfig {
    /// Problems with this section, each naming the field under `path`.
    pub fn problems(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(endpoint_problem(path, &self.endpoint));
        if self.senders == 0 || self.senders > 64 {
            out.push(format!("{path}.senders: must be 1..=64, got {}", self.senders));
        }
        if !(100..=600_000).contains(&self.timeout_ms) {
            out.push(format!(
                "{path}.timeout_ms: got {}, expected 100 to 600000",
                self.timeout_ms
            ));
        }
        if self.retry_initial_ms == 0 || self.retry_initial_ms > self.retry_max_ms {
            out.push(format!(
                "{path}.retry_initial_ms: must be positive and at most retry_max_ms ({}), got {}",
                self.retry_max_ms, self.retry_initial_ms
            ));
        }
        for (k, v) in &self.headers {
            if http::HeaderName::from_bytes(k.as_bytes()).is_err()
                || MetadataKey::<Ascii>::from_bytes(k.to_ascii_lowercase().as_bytes()).is_err()
            {
                out.push(format!("{path}.headers: {k:?} is not a valid header name"));
            } else if !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                out.push(format!(
                    "{path}.headers.{k}: the value must be printable ASCII (it travels as a header)"
                ));
            }
        }
        if let Some(tls) = &self.tls {
            out.extend(tls.problems(&format!("{path}.tls")));
            if self.endpoint.starts_with("http://") {
                out.push(format!(
                    "{path}.tls: set, but the endpoint {:?} is http://; use https:// or remove tls",
                    self.endpoint
                ));
            }
        }
        out.extend(self.queue.problems(&format!("{path}.queue")));
        out
    }
}

llmhub_server::instruments! {
    /// The forwarder's instruments.
    pub enum ForwardInstrument in METRICS {
        Requests => MetricDef { name: "llmhub.forward.requests", unit: "{request}", kind: Kind::Counter, attributes: &["llmhub.outcome"],
            help: "Export requests forwarded downstream, by outcome: sent, partial (the endpoint rejected some spans), dead_letter (refused for good)." },
        Retries => MetricDef { name: "llmhub.forward.retries", unit: "{attempt}", kind: Kind::Counter, attributes: &["llmhub.reason"],
            help: "Forwarding attempts that failed and were retried, by reason (unreachable, retryable_status, dead_letter_unwritable: refused for good but its dead letter could not be written)." },
        QueueRequests => MetricDef { name: "llmhub.forward.queue.requests", unit: "{request}", kind: Kind::Gauge, attributes: &[],
            help: "Export requests queued or being sent, not yet confirmed by the endpoint." },
        QueueBytes => MetricDef { name: "llmhub.forward.queue.bytes", unit: "By", kind: Kind::Gauge, attributes: &[],
            help: "Bytes of requests not yet confirmed (the figure the queue's size limit applies to)." },
        QueueDiskBytes => MetricDef { name: "llmhub.forward.queue.disk_bytes", unit: "By", kind: Kind::Gauge, attributes: &[],
            help: "Bytes of forwarding queue log files on disk (0 for a memory queue)." },
        QueueOldestAge => MetricDef { name: "llmhub.forward.queue.oldest_age", unit: "s", kind: Kind::Gauge, attributes: &[],
            help: "Age of the oldest request not yet forwarded (0 when the queue is empty)." },
        ContentRemoved => MetricDef { name: "llmhub.forward.content.removed", unit: "{item}", kind: Kind::Counter, attributes: &["llmhub.kind"],
            help: "Content removed from forwarded spans by the content policy (processors.genai.content), by kind: attribute, event, request (a request that could not be filtered is not forwarded)." },
        Dropped => MetricDef { name: "llmhub.forward.dropped", unit: "{request}", kind: Kind::Counter, attributes: &["llmhub.reason"],
            help: "Export requests not forwarded because the forwarding queue could not take them (on_full: drop), by reason (queue_full, memory_limit, unavailable, queue_error)." },
        ContentRedacted => MetricDef { name: "llmhub.forward.content.redacted", unit: "{match}", kind: Kind::Counter, attributes: &["llmhub.rule"],
            help: "Matches masked or hashed in captured content by the redaction rules, by rule name (email, phone, card, api_key, or the rule's name)." },
    }
}

type Labels = Vec<(&'static str, &'static str)>;

#[derive(Debug)]
struct ForwardMetrics {
    requests: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    queue: QueueGauges,
    content_removed: Family<Labels, Counter>,
    content_redacted: Family<Vec<(&'static str, String)>, Counter>,
    dropped: Family<Labels, Counter>,
}

impl ForwardMetrics {
    fn new(registry: &mut Registry) -> ForwardMetrics {
        use ForwardInstrument as I;
        let m = ForwardMetrics {
            requests: Family::default(),
            retries: Family::default(),
            queue: QueueGauges::register(
                registry,
                [
                    I::QueueRequests.def(),
                    I::QueueBytes.def(),
                    I::QueueDiskBytes.def(),
                    I::QueueOldestAge.def(),
                ],
            ),
            content_removed: Family::default(),
            content_redacted: Family::default(),
            dropped: Family::default(),
        };
        for i in ForwardInstrument::ALL {
            let (r, def) = (&mut *registry, i.def());
            match i {
                I::Requests => register(r, def, m.requests.clone()),
                I::Retries => register(r, def, m.retries.clone()),
                I::ContentRemoved => register(r, def, m.content_removed.clone()),
                I::Dropped => register(r, def, m.dropped.clone()),
                I::ContentRedacted => register(r, def, m.content_redacted.clone()),
                // Registered together by the queue's gauges above.
                I::QueueRequests | I::QueueBytes | I::QueueDiskBytes | I::QueueOldestAge => {}
            }
        }
        m
    }
}

/// What one attempt came to.
enum Attempt {
    Sent {
        rejected: i64,
    },
    Retry {
        reason: &'static str,
        message: String,
        after: Option<Duration>,
    },
    Permanent(String),
}

enum Client {
    Grpc {
        grpc: tonic::client::Grpc<tonic::transport::Channel>,
        /// The configured headers, as gRPC metadata.
        metadata: Box<MetadataMap>,
    },
    Http {
        client: reqwest::Client,
        url: String,
    },
}

/// Why the forwarder did not start; the messages name the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The queue could not be opened.
    #[error("cannot open the queue: {0}")]
    Queue(std::io::Error),
    /// The `tls` section.
    #[error(transparent)]
    Tls(#[from] llmhub_server::tls::TlsError),
    /// The endpoint is not a URL the client takes.
    #[error("endpoint: {0}")]
    Endpoint(Box<dyn std::error::Error + Send + Sync>),
    /// A header name or value cannot be sent.
    #[error("header {name:?}: {error}")]
    Header {
        /// The header as configured.
        name: String,
        /// Why.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The HTTP client could not be built.
    #[error("{0}")]
    HttpClient(reqwest::Error),
}

/// The client TLS of an `https://` endpoint (the section, or the defaults), for the protocol:
/// HTTP/2 for gRPC, HTTP/1.1 for OTLP/HTTP. Read once at start, shared by every sender.
fn client_tls(cfg: &ForwardConfig) -> Result<Option<rustls::ClientConfig>, llmhub_server::tls::TlsError> {
    if !cfg.endpoint.starts_with("https://") {
        return Ok(None);
    }
    let alpn: &[&[u8]] = match cfg.protocol {
        OtlpProtocol::Grpc => &[b"h2"],
        OtlpProtocol::HttpProtobuf => &[b"http/1.1"],
    };
    cfg.tls
        .clone()
        .unwrap_or_default()
        .load("exporters.otlp.tls", alpn)
        .map(Some)
}

/// Connects over TCP, then TLS with `tls`, for a tonic channel that dials `http://` (so tonic's
/// own TLS, where a build enables its features, stays out of the way).
fn tls_connector(
    tls: Arc<rustls::ClientConfig>,
) -> impl tower::Service<
    http::Uri,
    Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    Error = std::io::Error,
    Future = impl Send,
> + Send
       + 'static {
    tower::service_fn(move |uri: http::Uri| {
        let connector = tokio_rustls::TlsConnector::from(tls.clone());
        async move {
            let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {uri}"));
            let host = uri.host().ok_or_else(|| invalid("no host"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            let name = rustls::pki_types::ServerName::try_from(host).map_err(|_| invalid("not a host name"))?;
            let stream = connector.connect(name, tcp).await?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        }
    })
}

/// The running forwarder.
pub struct Forwarder {
    cfg: ForwardConfig,
    queue: Arc<Queue>,
    metrics: Arc<ForwardMetrics>,
    dead_letters: DeadLetters,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: CancellationToken,
    /// Whether the endpoint answered the last attempt (true before the first).
    healthy: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("endpoint", &self.cfg.endpoint)
            .finish()
    }
}

fn client(cfg: &ForwardConfig, tls: Option<&rustls::ClientConfig>) -> Result<Client, StartError> {
    let header = |name: &str| {
        let name = name.to_owned();
        move |error: Box<dyn std::error::Error + Send + Sync>| StartError::Header { name, error }
    };
    let timeout = Duration::from_millis(cfg.timeout_ms);
    match cfg.protocol {
        OtlpProtocol::Grpc => {
            // With TLS, tonic dials `http://` (so a tonic built with TLS features does not try its
            // own) through the TLS connector, and requests still carry the `https` origin.
            let dial = if tls.is_some() {
                cfg.endpoint.replacen("https://", "http://", 1)
            } else {
                cfg.endpoint.clone()
            };
            let origin: http::Uri = cfg.endpoint.parse().map_err(|e| StartError::Endpoint(Box::new(e)))?;
            let endpoint = tonic::transport::Channel::from_shared(dial)
                .map_err(|e| StartError::Endpoint(Box::new(e)))?
                .origin(origin)
                .timeout(timeout)
                .connect_timeout(timeout);
            let channel = match tls {
                Some(tls) => endpoint.connect_with_connector_lazy(tls_connector(Arc::new(tls.clone()))),
                None => endpoint.connect_lazy(),
            };
            let mut grpc = tonic::client::Grpc::new(channel);
            if cfg.gzip {
                grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
            }
            let mut metadata = MetadataMap::new();
            for (k, v) in &cfg.headers {
                let key = MetadataKey::<Ascii>::from_bytes(k.to_ascii_lowercase().as_bytes())
                    .map_err(|e| header(k)(Box::new(e)))?;
                let value = MetadataValue::<Ascii>::try_from(v.as_str()).map_err(|e| header(k)(Box::new(e)))?;
                metadata.insert(key, value);
            }
            Ok(Client::Grpc {
                grpc: grpc.accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                metadata: Box::new(metadata),
            })
        }
        OtlpProtocol::HttpProtobuf => {
            let base = cfg.endpoint.trim_end_matches('/');
            let has_path = base.splitn(4, '/').nth(3).is_some_and(|p| !p.is_empty());
            let url = if has_path {
                base.to_owned()
            } else {
                format!("{base}/v1/traces")
            };
            let mut headers = http::HeaderMap::new();
            for (k, v) in &cfg.headers {
                let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|e| header(k)(Box::new(e)))?;
                let value = http::HeaderValue::from_str(v).map_err(|e| header(k)(Box::new(e)))?;
                headers.insert(name, value);
            }
            let mut builder = reqwest::Client::builder().timeout(timeout).default_headers(headers);
            if let Some(tls) = tls {
                builder = builder.use_preconfigured_tls(tls.clone());
            }
            let client = builder.build().map_err(StartError::HttpClient)?;
            Ok(Client::Http { client, url })
        }
    }
}

/// A status tonic made from a failed connection or stream (its source is a transport error), not
/// one the server sent: the request never got an answer, so it is retried like an unreachable
/// endpoint.
fn transport_failure(s: &tonic::Status) -> bool {
    std::error::Error::source(s).is_some_and(|e| e.is::<tonic::transport::Error>())
}

/// A gRPC status the OTLP specification says to retry (RESOURCE_EXHAUSTED only with RetryInfo).
fn grpc_retryable(s: &tonic::Status) -> bool {
    use tonic::Code;
    match s.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => s.details().windows(20).any(|w| w == b"google.rpc.RetryInfo"),
        _ => false,
    }
}

impl Forwarder {
    /// Opens the queue (replaying what an earlier run left) and starts the senders.
    pub fn start(cfg: &ForwardConfig, registry: &mut Registry) -> Result<Arc<Forwarder>, StartError> {
        let queue = Queue::open("otlp", &cfg.queue).map_err(StartError::Queue)?;
        let dead_letters = DeadLetters::new(
            cfg.dead_letter_file.as_deref(),
            cfg.queue.directory.as_deref(),
            "otlp-dead-letters.jsonl",
        );
        let f = Arc::new(Forwarder {
            cfg: cfg.clone(),
            queue,
            metrics: Arc::new(ForwardMetrics::new(registry)),
            dead_letters,
            tasks: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
            healthy: std::sync::atomic::AtomicBool::new(true),
        });
        let tls = client_tls(cfg)?;
        let mut tasks = Vec::new();
        for id in 0..cfg.senders {
            let c = client(cfg, tls.as_ref())?;
            tasks.push(tokio::spawn(sender(f.clone(), c, id)));
        }
        let (q, m, stop) = (f.queue.clone(), f.metrics.clone(), f.stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => m.queue.observe(&q.stats()),
                }
            }
        }));
        if let Ok(mut t) = f.tasks.lock() {
            *t = tasks;
        }
        tracing::info!(endpoint = %cfg.endpoint, protocol = ?cfg.protocol, senders = cfg.senders,
            queue = ?cfg.queue.directory, durability = ?cfg.queue.durability, "span forwarding on");
        Ok(f)
    }

    /// Counts the memory queue's requests against the process-wide memory budget.
    pub fn use_budget(&self, budget: Arc<llmhub_server::budget::MemoryBudget>) {
        self.queue.use_budget(budget);
    }

    /// Whether the queue can take another request.
    pub fn admit(&self) -> Result<(), PushError> {
        self.queue.admit()
    }

    /// Why `/readyz` should say this forwarder is not ready: its endpoint did not answer the last
    /// attempt (it is retrying), or, with `on_full: refuse`, its queue cannot take a request, so
    /// requests are being refused. `None` while neither holds.
    pub fn problem(&self) -> Option<String> {
        if self.cfg.on_full == OnFull::Refuse {
            if let Err(e) = self.admit() {
                return Some(e.to_string());
            }
        }
        (!self.healthy.load(std::sync::atomic::Ordering::Relaxed))
            .then(|| format!("the last send to {} failed; retrying", self.cfg.endpoint))
    }

    /// What the pipeline does when this forwarder cannot take a request.
    pub fn on_full(&self) -> OnFull {
        self.cfg.on_full
    }

    /// Counts a request skipped under `on_full: drop`.
    pub fn count_dropped(&self, why: &PushError) {
        self.metrics
            .dropped
            .get_or_create(&vec![("llmhub_reason", why.reason())])
            .inc();
        tracing::debug!(reason = %why, "request not forwarded (on_full: drop)");
    }

    /// Applies the content policy to the request, writes the API key's tenant over its tenant
    /// attributes (`tenant`, when the client's key names one), enriches it with the records made
    /// of it and encodes it for the queue. `original` is the protobuf body as received, or the
    /// decoded request (OTLP/JSON). `None`: a request that the policy or the tenant would change
    /// but that cannot be decoded here is not forwarded (counted), rather than forwarded as it came.
    pub fn prepare(
        &self,
        original: Original<'_>,
        records: &[LlmCall],
        policy: &ContentPolicy,
        tenant: Option<enrich::TenantStamp<'_>>,
    ) -> Option<Bytes> {
        let mut req = match original {
            Original::Protobuf(body) => match ExportTraceServiceRequest::decode(body) {
                Ok(r) => r,
                Err(e) if policy.changes_spans() || tenant.is_some() => {
                    tracing::warn!(error = %e, "not forwarding a request: prost cannot decode it, so the content policy and the API key's tenant cannot be applied");
                    self.metrics
                        .content_removed
                        .get_or_create(&vec![("llmhub_kind", "request")])
                        .inc();
                    return None;
                }
                Err(e) => {
                    // The receiver's decoder accepted it; forward it as it came rather than lose it.
                    tracing::warn!(error = %e, "forwarding a request unenriched: prost cannot decode it");
                    return Some(Bytes::copy_from_slice(body));
                }
            },
            Original::Message(m) => m.clone(),
        };
        let applied = content::apply(&mut req, policy);
        for (kind, n) in [
            ("attribute", applied.attributes_removed),
            ("event", applied.events_removed),
        ] {
            if n > 0 {
                self.metrics
                    .content_removed
                    .get_or_create(&vec![("llmhub_kind", kind)])
                    .inc_by(n);
            }
        }
        for (rule, n) in applied.tally.redacted {
            self.metrics
                .content_redacted
                .get_or_create(&vec![("llmhub_rule", rule)])
                .inc_by(n);
        }
        if let Some(stamp) = tenant {
            enrich::stamp_tenant(&mut req, stamp);
        }
        enrich::enrich(&mut req, records);
        Some(Bytes::from(req.encode_to_vec()))
    }

    /// Queues a prepared request; with `durability: wal`, returns once it is on disk.
    pub async fn push(&self, item: Bytes) -> Result<(), PushError> {
        self.queue.push(vec![item]).await
    }

    /// Stops taking requests and sends what is queued until `deadline`; an on-disk queue keeps
    /// the rest for the next start.
    pub async fn shutdown(&self, deadline: Duration) {
        self.queue.close();
        let until = tokio::time::Instant::now() + deadline;
        let drained = async {
            while self.queue.stats().items > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let _ = tokio::time::timeout_at(until, drained).await;
        self.stop.cancel();
        let handles: Vec<_> = match self.tasks.lock() {
            Ok(mut t) => t.drain(..).collect(),
            Err(p) => p.into_inner().drain(..).collect(),
        };
        let joined = tokio::time::Instant::now() + Duration::from_secs(1);
        for mut h in handles {
            if tokio::time::timeout_at(joined, &mut h).await.is_err() {
                h.abort();
            }
        }
        let left = self.queue.stats().items;
        if left > 0 {
            tracing::warn!(
                requests = left,
                kept_on_disk = self.cfg.queue.directory.is_some(),
                "span forwarding stopped with requests queued"
            );
        }
    }

    fn dead_letter(&self, item: &[u8], reason: &str) -> std::io::Result<()> {
        self.dead_letters.write(serde_json::json!({
            "endpoint": self.cfg.endpoint,
            "reason": reason,
            "request_protobuf_hex": hex::encode(item),
        }))?;
        self.metrics
            .requests
            .get_or_create(&vec![("llmhub_outcome", "dead_letter")])
            .inc();
        Ok(())
    }
}

/// The request as received.
#[derive(Debug, Clone, Copy)]
pub enum Original<'a> {
    /// A protobuf body (OTLP/gRPC, OTLP/HTTP protobuf).
    Protobuf(&'a [u8]),
    /// A decoded request (OTLP/HTTP JSON).
    Message(&'a ExportTraceServiceRequest),
}

async fn attempt(c: &mut Client, item: &Bytes) -> Attempt {
    match c {
        Client::Grpc { grpc, metadata } => {
            if let Err(e) = grpc.ready().await {
                return Attempt::Retry {
                    reason: "unreachable",
                    message: e.to_string(),
                    after: None,
                };
            }
            let mut request = tonic::Request::new(item.clone());
            *request.metadata_mut() = (**metadata).clone();
            let res = grpc
                .unary(
                    request,
                    http::uri::PathAndQuery::from_static(TRACE_EXPORT),
                    grpc_codec::RawGrpcCodec,
                )
                .await;
            match res {
                Ok(resp) => Attempt::Sent {
                    rejected: ExportTraceServiceResponse::decode(resp.into_inner())
                        .ok()
                        .and_then(|r| r.partial_success)
                        .map_or(0, |p| p.rejected_spans),
                },
                Err(s) if grpc_retryable(&s) => Attempt::Retry {
                    reason: if s.code() == tonic::Code::Unavailable && s.message().contains("connect") {
                        "unreachable"
                    } else {
                        "retryable_status"
                    },
                    message: format!("{:?}: {}", s.code(), s.message()),
                    after: None,
                },
                // No answer from the server at all (a reset, a TLS alert such as a refused client
                // certificate): tonic reports `Unknown` with the transport error as its source.
                Err(s) if transport_failure(&s) => Attempt::Retry {
                    reason: "unreachable",
                    message: format!(
                        "{s}: {}",
                        std::error::Error::source(&s)
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    ),
                    after: None,
                },
                Err(s) => Attempt::Permanent(format!("gRPC {:?}: {}", s.code(), s.message())),
            }
        }
        Client::Http { client, url } => {
            let res = client
                .post(url.as_str())
                .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                .body(item.clone())
                .send()
                .await;
            let resp = match res {
                Ok(r) => r,
                Err(e) => {
                    return Attempt::Retry {
                        reason: "unreachable",
                        message: e.to_string(),
                        after: None,
                    }
                }
            };
            let status = resp.status().as_u16();
            let after = resp
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = resp.bytes().await.unwrap_or_default();
            match status {
                200..=299 => Attempt::Sent {
                    rejected: ExportTraceServiceResponse::decode(body)
                        .ok()
                        .and_then(|r| r.partial_success)
                        .map_or(0, |p| p.rejected_spans),
                },
                429 | 502 | 503 | 504 => Attempt::Retry {
                    reason: "retryable_status",
                    message: format!("HTTP {status}"),
                    after,
                },
                _ => Attempt::Permanent(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                )),
            }
        }
    }
}

async fn sender(f: Arc<Forwarder>, mut c: Client, id: usize) {
    loop {
        // One request per lease: a request stuck in retries holds up no other, and a stop never
        // releases (and later resends) requests that already went out.
        let lease = match f.queue.pop(1, Duration::ZERO, &f.stop).await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(sender = id, error = %e, "cannot read the forwarding queue; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for item in &lease.items {
            let mut tries: u32 = 0;
            loop {
                let outcome = attempt(&mut c, item).await;
                f.healthy.store(
                    !matches!(outcome, Attempt::Retry { .. }),
                    std::sync::atomic::Ordering::Relaxed,
                );
                let (reason, message, after) = match outcome {
                    Attempt::Sent { rejected } => {
                        let outcome = if rejected > 0 { "partial" } else { "sent" };
                        f.metrics
                            .requests
                            .get_or_create(&vec![("llmhub_outcome", outcome)])
                            .inc();
                        break;
                    }
                    Attempt::Permanent(reason) => match f.dead_letter(item, &reason) {
                        Ok(()) => break,
                        // Kept queued until its dead letter is on disk: tried again after a delay.
                        Err(e) => ("dead_letter_unwritable", e.to_string(), None),
                    },
                    Attempt::Retry { reason, message, after } => (reason, message, after),
                };
                f.metrics.retries.get_or_create(&vec![("llmhub_reason", reason)]).inc();
                tries = tries.saturating_add(1);
                let mut delay = backoff(f.cfg.retry_initial_ms, f.cfg.retry_max_ms, tries);
                if let Some(a) = after {
                    delay = delay.max(a.min(Duration::from_millis(f.cfg.retry_max_ms)));
                }
                if tries == 1 || tries.is_power_of_two() {
                    tracing::warn!(sender = id, attempt = tries, error = %message, retry_in = ?delay,
                        "forwarding failed; retrying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = f.stop.cancelled() => {
                        // Unsent items stay queued (on disk they are sent by the next run).
                        f.queue.release(lease);
                        return;
                    }
                }
            }
        }
        f.queue.ack(lease);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_and_header_problems_name_the_field() {
        let cfg = |endpoint: &str, tls: Option<ClientTls>, headers: &[(&str, &str)]| ForwardConfig {
            endpoint: endpoint.to_owned(),
            tls,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..ForwardConfig::default()
        };
        let half = ClientTls {
            cert_file: Some("c.pem".into()),
            ..ClientTls::default()
        };
        assert_eq!(
            cfg("https://collector:4317", Some(half), &[]).problems("exporters.otlp"),
            vec!["exporters.otlp.tls.key_file: required with cert_file".to_owned()]
        );
        assert_eq!(
            cfg("http://collector:4317", Some(ClientTls::default()), &[]).problems("exporters.otlp"),
            vec!["exporters.otlp.tls: set, but the endpoint \"http://collector:4317\" is http://; use https:// or remove tls"
                .to_owned()]
        );
        assert_eq!(
            cfg("https://collector:4317", None, &[("x-api-key", "k\u{e9}y")]).problems("exporters.otlp"),
            vec![
                "exporters.otlp.headers.x-api-key: the value must be printable ASCII (it travels as a header)"
                    .to_owned()
            ]
        );
        assert_eq!(
            cfg("https://collector:4317", None, &[("bad header", "v")]).problems("exporters.otlp"),
            vec!["exporters.otlp.headers: \"bad header\" is not a valid header name".to_owned()]
        );
        assert!(cfg("https://collector:4317", None, &[("Authorization", "Bearer k")])
            .problems("exporters.otlp")
            .is_empty());
    }

    #[test]
    fn a_status_the_server_sent_is_not_a_transport_failure() {
        // (One without an answer, a refused client certificate, is in tests/tls_e2e.rs.)
        let answered = tonic::Status::unknown("the server said so");
        assert!(!transport_failure(&answered));
    }
}

//! One attempt to send a request: the gRPC or HTTP client built from the settings (TLS,
//! headers, gzip, timeout) and what the endpoint's answer means.

use super::*;

/// What one attempt came to.
pub(super) enum Attempt {
    Sent {
        rejected: i64,
    },
    Retry {
        reason: RetryReason,
        message: String,
        after: Option<Duration>,
    },
    Permanent(String),
}

/// Why an attempt is retried, as `llmhub.forward.retries` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RetryReason {
    /// No answer: no connection, a reset, a TLS alert.
    Unreachable,
    /// The endpoint answered with a status OTLP says to retry.
    RetryableStatus,
    /// The endpoint refused the request for good, and its dead letter could not be written.
    DeadLetterUnwritable,
}

impl RetryReason {
    /// The label value.
    pub(super) const fn as_str(self) -> &'static str {
        match self {
            RetryReason::Unreachable => "unreachable",
            RetryReason::RetryableStatus => "retryable_status",
            RetryReason::DeadLetterUnwritable => "dead_letter_unwritable",
        }
    }
}

pub(super) enum Client {
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
    #[error(transparent)]
    Header(#[from] crate::delivery::HeaderError),
    /// The HTTP client could not be built.
    #[error("{0}")]
    HttpClient(reqwest::Error),
}

/// The client TLS of an `https://` endpoint (the section, or the defaults), for the protocol:
/// HTTP/2 for gRPC, HTTP/1.1 for OTLP/HTTP. Read once at start, shared by every sender.
pub(super) fn client_tls(cfg: &ForwardConfig) -> Result<Option<rustls::ClientConfig>, llmhub_server::tls::TlsError> {
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
pub(super) fn tls_connector(
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

pub(super) fn client(cfg: &ForwardConfig, tls: Option<&rustls::ClientConfig>) -> Result<Client, StartError> {
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
            let metadata = crate::delivery::grpc_metadata(&cfg.headers)?;
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
            let headers = crate::delivery::http_headers(&cfg.headers)?;
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
pub(super) fn transport_failure(s: &tonic::Status) -> bool {
    std::error::Error::source(s).is_some_and(|e| e.is::<tonic::transport::Error>())
}

/// A gRPC status the OTLP specification says to retry (RESOURCE_EXHAUSTED only with RetryInfo).
pub(super) fn grpc_retryable(s: &tonic::Status) -> bool {
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

pub(super) async fn attempt(c: &mut Client, item: &Bytes) -> Attempt {
    match c {
        Client::Grpc { grpc, metadata } => {
            if let Err(e) = grpc.ready().await {
                return Attempt::Retry {
                    reason: RetryReason::Unreachable,
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
                    // No connection (tonic's own status, with the transport error as its
                    // source), or a status the endpoint sent.
                    reason: if transport_failure(&s) {
                        RetryReason::Unreachable
                    } else {
                        RetryReason::RetryableStatus
                    },
                    message: format!("{:?}: {}", s.code(), s.message()),
                    after: None,
                },
                // No answer from the server at all (a reset, a TLS alert such as a refused client
                // certificate): tonic reports `Unknown` with the transport error as its source.
                Err(s) if transport_failure(&s) => Attempt::Retry {
                    reason: RetryReason::Unreachable,
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
                        reason: RetryReason::Unreachable,
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
                    reason: RetryReason::RetryableStatus,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_the_server_sent_is_not_a_transport_failure() {
        // (One without an answer, a refused client certificate, is in tests/tls_e2e.rs.)
        let answered = tonic::Status::unknown("the server said so");
        assert!(!transport_failure(&answered));
    }
}

//! The `otlp` exporter's settings and their offline checks.

use super::*;

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
            match check_header(k, v).map_err(|e| e.part) {
                Ok(()) => {}
                Err(HeaderPart::Name) => out.push(format!("{path}.headers: {k:?} is not a valid header name")),
                Err(HeaderPart::Value) => out.push(format!(
                    "{path}.headers.{k}: the value must be printable ASCII (it travels as a header)"
                )),
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
        // The check is the conversion the sender makes: what HTTP and gRPC take passes.
        assert_eq!(
            cfg("https://collector:4317", None, &[("x-tab", "a\tb")]).problems("exporters.otlp"),
            Vec::<String>::new()
        );
        assert_eq!(
            cfg("https://collector:4317", None, &[("x-del", "a\u{7f}")]).problems("exporters.otlp"),
            vec!["exporters.otlp.headers.x-del: the value must be printable ASCII (it travels as a header)".to_owned()]
        );
        for (name, value) in [("x-tab", "a\tb"), ("Authorization", "Bearer k")] {
            let one = std::collections::BTreeMap::from([(name.to_owned(), value.to_owned())]);
            assert!(crate::delivery::grpc_metadata(&one).is_ok() && crate::delivery::http_headers(&one).is_ok());
        }
        assert!(cfg("https://collector:4317", None, &[("Authorization", "Bearer k")])
            .problems("exporters.otlp")
            .is_empty());
    }
}

//! OTLP metrics push: the metrics state, as OpenTelemetry SDK instruments, exported every
//! `interval_ms` by `opentelemetry-otlp` over gRPC or HTTP/protobuf, with cumulative or delta
//! temporality (the SDK keeps the start times: the process start for cumulative points, the
//! previous export for delta points).
//!
//! The instruments themselves are created by the metrics state from the same catalogue that
//! defines the Prometheus families, and fed at the same moment, after the same cardinality limits.

use opentelemetry_otlp::{MetricExporter, Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::Resource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    /// OTLP/gRPC (`endpoint` like `http://collector:4317`).
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`endpoint` like `http://collector:4318`; `/v1/metrics` is
    /// appended unless the endpoint already has a path).
    HttpProtobuf,
}

/// Aggregation temporality of sums and histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MetricTemporality {
    /// Totals since llmhub started (what Prometheus expects).
    #[default]
    Cumulative,
    /// Changes since the previous export (what many SaaS backends expect).
    Delta,
}

/// The OTLP metrics push exporter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpMetricsConfig {
    /// Where to send, e.g. `http://otel-collector:4317` (gRPC) or `http://victoria:8428/opentelemetry`.
    pub endpoint: String,
    /// `grpc` or `http_protobuf`.
    pub protocol: OtlpProtocol,
    /// `cumulative` or `delta`.
    pub temporality: MetricTemporality,
    /// Export interval, in milliseconds.
    pub interval_ms: u64,
    /// Export timeout, in milliseconds.
    pub timeout_ms: u64,
    /// Extra headers (e.g. an API key), sent with every export.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl Default for OtlpMetricsConfig {
    fn default() -> Self {
        OtlpMetricsConfig {
            endpoint: "http://localhost:4317".to_owned(),
            protocol: OtlpProtocol::Grpc,
            temporality: MetricTemporality::Cumulative,
            interval_ms: 60_000,
            timeout_ms: 10_000,
            headers: BTreeMap::new(),
        }
    }
}

impl OtlpMetricsConfig {
    /// Problems with this section, each naming the field under `path`.
    pub fn problems(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(crate::delivery::endpoint_problem(path, &self.endpoint));
        if !(100..=3_600_000).contains(&self.interval_ms) {
            out.push(format!(
                "{path}.interval_ms: got {}, expected 100 to 3600000, e.g. 60000",
                self.interval_ms
            ));
        }
        if !(100..=600_000).contains(&self.timeout_ms) {
            out.push(format!(
                "{path}.timeout_ms: got {}, expected 100 to 600000",
                self.timeout_ms
            ));
        }
        out
    }
}

/// Why the OTLP metrics push could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PushSetupError {
    /// A header name or value cannot be sent as gRPC metadata.
    #[error(transparent)]
    Header(#[from] crate::delivery::HeaderError),
    /// The OpenTelemetry SDK refused the exporter's settings.
    #[error("{0}")]
    Exporter(opentelemetry_otlp::ExporterBuildError),
    /// Building the HTTP exporter on its own thread panicked.
    #[error("building the HTTP exporter panicked")]
    Panicked,
}

/// Builds the meter provider that exports periodically. Must be called inside a tokio runtime
/// (the gRPC client runs on it); the HTTP client is built on a thread of its own.
pub fn meter_provider(cfg: &OtlpMetricsConfig) -> Result<SdkMeterProvider, PushSetupError> {
    let temporality = match cfg.temporality {
        MetricTemporality::Cumulative => Temporality::Cumulative,
        MetricTemporality::Delta => Temporality::Delta,
    };
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let exporter = match cfg.protocol {
        OtlpProtocol::Grpc => {
            let meta = crate::delivery::grpc_metadata(&cfg.headers)?;
            MetricExporter::builder()
                .with_tonic()
                .with_endpoint(cfg.endpoint.clone())
                .with_timeout(timeout)
                .with_metadata(meta)
                .with_compression(opentelemetry_otlp::Compression::Gzip)
                .with_temporality(temporality)
                .build()
                .map_err(PushSetupError::Exporter)?
        }
        OtlpProtocol::HttpProtobuf => {
            let url = cfg.endpoint.trim_end_matches('/');
            let has_path = url.splitn(4, '/').nth(3).is_some_and(|p| p.ends_with("metrics"));
            let endpoint = if has_path {
                url.to_owned()
            } else {
                format!("{url}/v1/metrics")
            };
            let headers: std::collections::HashMap<String, String> =
                cfg.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            // The blocking HTTP client must not be built on an async worker.
            std::thread::spawn(move || {
                MetricExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(endpoint)
                    .with_timeout(timeout)
                    .with_headers(headers)
                    .with_temporality(temporality)
                    .build()
            })
            .join()
            .map_err(|_| PushSetupError::Panicked)?
            .map_err(PushSetupError::Exporter)?
        }
    };
    let reader = PeriodicReader::builder(exporter)
        .with_interval(Duration::from_millis(cfg.interval_ms))
        .build();
    Ok(SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(
            Resource::builder()
                .with_service_name("llmhub")
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        )
        .build())
}

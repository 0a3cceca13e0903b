//! The configuration schema. Defaults live here, in one place; `docs/configuration.md` shows the
//! full default document.

use llmhub_pricing::catalog::ModelFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where spans come in.
    pub receivers: Receivers,
    /// What is done to them.
    pub processors: Processors,
    /// Where results go.
    pub exporters: Exporters,
    /// Pipelines and llmhub's own telemetry.
    pub service: Service,
}

/// Receivers.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Receivers {
    /// The OTLP receiver.
    pub otlp: OtlpReceiver,
}

/// The OTLP receiver.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpReceiver {
    /// The transports it listens on.
    pub protocols: Protocols,
    /// Limits on what one request may hold (the body limits are per transport).
    pub limits: Limits,
    /// API keys the receivers require (both transports, every signal); off when absent. A key
    /// naming a tenant makes every span sent with it that tenant's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<llmhub_server::auth::AuthConfig>,
}

/// Limits on the contents of one trace export request.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Spans one request may hold; a request with more is refused whole (gRPC
    /// `RESOURCE_EXHAUSTED`, HTTP 413): send smaller batches.
    pub max_spans_per_request: usize,
    /// Attributes of a span that are read; later ones are ignored (the span is counted as
    /// limited; a forwarded span keeps them).
    pub max_attributes_per_span: usize,
    /// Events of a span that are read; later ones are ignored (counted the same way).
    pub max_events_per_span: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_spans_per_request: 100_000,
            max_attributes_per_span: 1024,
            max_events_per_span: 256,
        }
    }
}

/// OTLP transports, as in an OpenTelemetry Collector config: when `protocols` is given, only the
/// transports it lists are on, and an empty entry (`grpc:`) turns one on with its defaults. Without
/// a `protocols` key both are on.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Protocols {
    /// OTLP/gRPC.
    #[serde(
        default,
        deserialize_with = "empty_is_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc: Option<GrpcProtocol>,
    /// OTLP/HTTP (protobuf and JSON).
    #[serde(
        default,
        deserialize_with = "empty_is_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub http: Option<HttpProtocol>,
}

/// A present key with an empty value (`grpc:`) means "on, with defaults".
fn empty_is_default<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(|v| Some(v.unwrap_or_default()))
}

impl Default for Protocols {
    fn default() -> Self {
        Protocols {
            grpc: Some(GrpcProtocol::default()),
            http: Some(HttpProtocol::default()),
        }
    }
}

/// OTLP/gRPC listener.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcProtocol {
    /// `host:port` to listen on; port 0 picks a free port (logged at start).
    pub endpoint: String,
    /// Largest request message accepted, after decompression, in MiB.
    pub max_recv_msg_size_mib: u64,
    /// TLS (and, with `client_ca_file`, mutual TLS) on this listener; plain TCP when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<llmhub_server::tls::ServerTlsConfig>,
}

impl Default for GrpcProtocol {
    fn default() -> Self {
        GrpcProtocol {
            endpoint: "0.0.0.0:4317".to_owned(),
            max_recv_msg_size_mib: 16,
            tls: None,
        }
    }
}

/// OTLP/HTTP listener.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpProtocol {
    /// `host:port` to listen on; port 0 picks a free port (logged at start).
    pub endpoint: String,
    /// Largest request body accepted as sent (possibly compressed), in MiB.
    pub max_request_body_size_mib: u64,
    /// Largest request body accepted after decompression, in MiB (guards against gzip bombs).
    pub max_decompressed_body_size_mib: u64,
    /// TLS (and, with `client_ca_file`, mutual TLS) on this listener; plain TCP when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<llmhub_server::tls::ServerTlsConfig>,
}

impl Default for HttpProtocol {
    fn default() -> Self {
        HttpProtocol {
            endpoint: "0.0.0.0:4318".to_owned(),
            max_request_body_size_mib: 16,
            max_decompressed_body_size_mib: 64,
            tls: None,
        }
    }
}

/// Processors.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Processors {
    /// GenAI normalization and enrichment.
    pub genai: GenAiProcessor,
}

/// GenAI normalization and enrichment.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GenAiProcessor {
    /// Attribute keys naming the tenant, looked up on the span, then on the resource.
    pub tenant_attributes: Vec<String>,
    /// Longest string value kept in a record (model names, ids...), in bytes.
    pub max_attribute_value_length: usize,
    /// Duplicate-emission detection.
    pub dedup: DedupConfig,
    /// Pricing.
    pub pricing: PricingConfig,
    /// Conversation content (prompts, completions, system instructions, tool arguments and
    /// results): removed before any exporter unless `capture: true`, then redacted by rules.
    pub content: llmhub_content::ContentConfig,
}

impl Default for GenAiProcessor {
    fn default() -> Self {
        GenAiProcessor {
            tenant_attributes: vec!["tenant.id".to_owned()],
            max_attribute_value_length: 256,
            dedup: DedupConfig::default(),
            pricing: PricingConfig::default(),
            content: llmhub_content::ContentConfig::default(),
        }
    }
}

/// Duplicate-emission detection (see docs/normalization.md).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Count a call reported twice only once.
    pub enabled: bool,
    /// How many recent calls are remembered.
    pub max_entries: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            enabled: true,
            max_entries: 100_000,
        }
    }
}

/// Pricing (see docs/pricing.md).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PricingConfig {
    /// A catalog file replacing the one built in (same format as `prices/catalog.yaml`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    /// Private models, fine-tunes and negotiated prices, searched before the catalog (same format
    /// as a catalog entry).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelFile>,
    /// Azure OpenAI deployment names → the model each deployment serves.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub azure_deployments: BTreeMap<String, String>,
}

/// Exporters. As in an OpenTelemetry Collector, an exporter runs when
/// `service.pipelines.traces.exporters` lists it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Exporters {
    /// The Prometheus pull endpoint (also serves /healthz and /readyz).
    pub prometheus: PrometheusExporter,
    /// The PostgreSQL/TimescaleDB sink (see docs/postgres.md). An empty entry (`postgres:`) takes
    /// the connection from the libpq environment variables.
    #[serde(
        default,
        deserialize_with = "empty_is_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub postgres: Option<llmhub_exporters::postgres::PostgresConfig>,
    /// OTLP metrics push of the metrics state (see docs/metrics.md). Runs when the pipeline lists
    /// `otlp_metrics`.
    #[serde(
        default,
        deserialize_with = "empty_is_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub otlp_metrics: Option<llmhub_exporters::otlp_metrics::OtlpMetricsConfig>,
    /// Span forwarding to a downstream OTLP endpoint, spans enriched with `llmhub.*` attributes
    /// (see docs/forwarding.md). Runs when the pipeline lists `otlp`.
    #[serde(
        default,
        deserialize_with = "empty_is_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub otlp: Option<llmhub_exporters::forward::ForwardConfig>,
}

/// The Prometheus pull endpoint.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusExporter {
    /// `host:port` to listen on; port 0 picks a free port (logged at start).
    pub endpoint: String,
    /// Cardinality limits.
    pub cardinality: CardinalityConfig,
    /// API keys `/metrics` requires (a scraper's `authorization` bearer token); off when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<llmhub_server::auth::AuthConfig>,
    /// TLS (and, with `client_ca_file`, mutual TLS) on this listener; plain TCP when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<llmhub_server::tls::ServerTlsConfig>,
}

impl Default for PrometheusExporter {
    fn default() -> Self {
        PrometheusExporter {
            endpoint: "0.0.0.0:9464".to_owned(),
            cardinality: CardinalityConfig::default(),
            auth: None,
            tls: None,
        }
    }
}

/// Cardinality limits of the metrics state.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CardinalityConfig {
    /// Most label sets one metric may hold; further ones go to the overflow series.
    pub max_series_per_metric: usize,
    /// Most distinct values one label key may take; further ones become `__overflow__`.
    pub max_values_per_label: usize,
}

impl Default for CardinalityConfig {
    fn default() -> Self {
        CardinalityConfig {
            max_series_per_metric: 10_000,
            max_values_per_label: 1_000,
        }
    }
}

/// Service section.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Service {
    /// Pipelines.
    pub pipelines: Pipelines,
    /// llmhub's own telemetry.
    pub telemetry: Telemetry,
    /// The memory limit.
    pub memory: MemoryConfig,
}

/// The one memory budget across the receivers and the exporters' memory queues.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Limit on the process's resident memory, in MiB. Requests being read and processed and the
    /// exporters' memory queues take from what the rest of the process leaves; past it new
    /// requests are refused with OTLP's retryable statuses (gRPC UNAVAILABLE, HTTP 503, with a
    /// retry delay) until memory is freed.
    pub limit_mib: u64,
    /// Whether allocations of 128 KiB and more are mapped directly, so memory freed after a burst
    /// goes back to the system instead of fragmenting the allocator's heaps (glibc): `auto` (on
    /// when `limit_mib` is under 512, where fragmentation would eat the reserve), `always` or
    /// `never`. Costs ingest throughput (BENCHMARKS.md).
    pub return_freed: ReturnFreed,
}

/// `service.memory.return_freed`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReturnFreed {
    /// On below a 512 MiB limit.
    #[default]
    Auto,
    /// Always on.
    Always,
    /// Never.
    Never,
}

impl MemoryConfig {
    /// Whether large allocations are to be returned to the system when freed.
    pub fn returns_freed(&self) -> bool {
        match self.return_freed {
            ReturnFreed::Always => true,
            ReturnFreed::Never => false,
            ReturnFreed::Auto => self.limit_mib < 512,
        }
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            limit_mib: 1024,
            return_freed: ReturnFreed::Auto,
        }
    }
}

/// Pipelines. Only `traces` exists.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Pipelines {
    /// The traces pipeline.
    pub traces: Pipeline,
}

/// One pipeline: component names, in order.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Pipeline {
    /// Receivers feeding the pipeline.
    pub receivers: Vec<String>,
    /// Processors, in order.
    pub processors: Vec<String>,
    /// Exporters fed by the pipeline.
    pub exporters: Vec<String>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            receivers: vec!["otlp".to_owned()],
            processors: vec!["genai".to_owned()],
            exporters: vec!["prometheus".to_owned()],
        }
    }
}

/// llmhub's own telemetry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Telemetry {
    /// Log filter (`error`, `warn`, `info`, `debug`, `trace`, or a tracing filter directive).
    pub log_level: String,
    /// Log format: `text` or `json`.
    pub log_format: String,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            log_level: "info".to_owned(),
            log_format: "text".to_owned(),
        }
    }
}

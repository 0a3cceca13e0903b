//! The fan-out the configuration names, built once at start.

use super::exporter::Exporter;
use super::fanout::Fanout;
use crate::config::Config;
use llmhub_exporters::forward::Forwarder;
use llmhub_exporters::postgres::error::SinkError;
use llmhub_exporters::postgres::{PostgresSink, SinkMetrics};
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// The started exporters.
pub struct Built {
    /// The fan-out: the PostgreSQL sink, then the span forwarder, each when the traces pipeline
    /// names it and its section is set.
    pub fanout: Fanout,
    /// The sink, for what reports its progress (`llmhub demo`).
    pub sink: Option<Arc<PostgresSink>>,
}

/// Why an exporter did not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `exporters.postgres`.
    #[error(transparent)]
    Postgres(#[from] SinkError),
    /// `exporters.otlp`.
    #[error("exporters.otlp: {0}")]
    Forward(llmhub_exporters::forward::StartError),
}

// Not `#[from]`, which would also make it the source: the message already holds it.
impl From<llmhub_exporters::forward::StartError> for BuildError {
    fn from(e: llmhub_exporters::forward::StartError) -> Self {
        BuildError::Forward(e)
    }
}

/// Starts the record exporters of `config`'s traces pipeline, registering their metrics.
pub fn build(config: &Config, registry: &mut Registry) -> Result<Built, BuildError> {
    let named = |id: &str| config.service.pipelines.traces.exporters.iter().any(|e| e == id);
    let mut exporters: Vec<Arc<dyn Exporter>> = Vec::new();
    let mut sink = None;
    if let (true, Some(pg)) = (named("postgres"), &config.exporters.postgres) {
        let s = PostgresSink::start(pg, Arc::new(SinkMetrics::new(registry)))?;
        exporters.push(s.clone());
        sink = Some(s);
    }
    if let (true, Some(o)) = (named("otlp"), &config.exporters.otlp) {
        let f = Forwarder::start(o, registry)?;
        exporters.push(f);
    }
    Ok(Built {
        fanout: Fanout::new(exporters),
        sink,
    })
}

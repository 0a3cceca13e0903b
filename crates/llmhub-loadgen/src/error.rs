//! Why a load-generator run stopped early.

use std::path::PathBuf;

/// A run that could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// The OpenTelemetry OTLP exporter could not be built (a bad endpoint, for one).
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// Building the blocking HTTP exporter on its own thread panicked.
    #[error("building the HTTP exporter panicked")]
    ExporterPanicked,
    /// The incidents file could not be written.
    #[error("cannot write ground truth to {}", path.display())]
    GroundTruth {
        /// The `--ground-truth` path.
        path: PathBuf,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The emitting thread panicked.
    #[error("load generator thread failed")]
    ThreadPanicked,
}

//! The pipeline after the processor: the exporters that take a request's records, built once from
//! the configuration and driven as one fan-out. The processor hands every accepted request to the
//! [`Fanout`] and knows no exporter; each exporter is an [`Exporter`] (the PostgreSQL sink, the
//! span forwarder).

mod build;
mod exporter;
mod fanout;
mod forward;
mod postgres;

pub use build::{build, BuildError, Built};
pub use exporter::{Batch, Delivery, Exporter};
pub use fanout::{Fanout, Prepared};
pub use llmhub_exporters::forward::enrich::TenantStamp;
pub use llmhub_exporters::forward::Original;
pub use llmhub_exporters::queue::{OnFull, PushError};

//! llmhub exporters: where the metrics state and records leave the process.
//!
//! - [`prometheus`]: the pull endpoint (`/metrics`, `/healthz`, `/readyz`).
//! - [`queue`]: the bounded, optionally durable queue in front of every push exporter.
//! - [`postgres`]: the PostgreSQL/TimescaleDB sink (binary COPY into `llm_calls`).
//! - [`otlp_metrics`]: OTLP metrics push.
//! - [`forward`]: span forwarding to a downstream OTLP endpoint, with enrichment attributes.
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod delivery;
pub mod forward;
pub mod otlp_metrics;
pub mod postgres;
pub mod prometheus;
pub mod queue;

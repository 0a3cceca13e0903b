//! llmhub exporters: where the metrics state and records leave the process.
//!
//! Today: the Prometheus pull endpoint. OTLP metrics push, span forwarding and the
//! PostgreSQL/TimescaleDB sink arrive with the exporters issue.

pub mod prometheus;

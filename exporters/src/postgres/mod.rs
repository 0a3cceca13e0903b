//! The PostgreSQL/TimescaleDB sink: every canonical record lands in `llm_calls` through binary
//! COPY, idempotently, behind a bounded (optionally durable) queue. See `docs/postgres.md`.

pub mod config;
pub mod connect;
pub mod error;
pub mod metrics;
pub mod row;
pub mod schema;
pub mod sink;

pub use config::PostgresConfig;
pub use metrics::SinkMetrics;
pub use sink::PostgresSink;

//! llmhub: an OTLP receiver that turns the GenAI spans LLM applications already emit into
//! standard token, latency and error metrics.
//!
//! Data flow, one module per stage: [`receivers`] (OTLP gRPC and HTTP) → [`processors`] (GenAI
//! normalization, deduplication) → [`metrics`] state → exporters (the Prometheus endpoint, in the
//! `llmhub-exporters` crate). [`config`] holds the YAML schema; [`service`] wires it all together.
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod config;
pub mod metrics;
pub mod pipeline;
pub mod processors;
pub mod receivers;
pub mod service;

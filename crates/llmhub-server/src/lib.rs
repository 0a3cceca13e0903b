//! What every part of the llmhub server shares, below the receivers, the processor and the
//! exporters:
//!
//! - [`budget`]: the one memory budget across the receivers and the exporters' memory queues.
//! - [`auth`]: API keys for the receivers (key → tenant) and the metrics endpoint.
//! - [`tls`]: TLS (and mutual TLS) on every listener; the client side of the forwarder and the sink.
//! - [`catalogue`]: the metric catalogue format (one [`catalogue::MetricDef`] per metric) and
//!   [`instruments!`], which declares a table with its enum.
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod budget;
pub mod catalogue;
pub mod tls;

//! Receivers: where spans come in.

pub mod otlp;

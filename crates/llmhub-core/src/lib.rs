//! Pure logic shared by every part of llmhub: the canonical LLM call record, the GenAI attribute
//! dialects and their normalization, token arithmetic, error classification and duplicate detection.
//!
//! No I/O lives here: the processor and the SQL extension both depend on this crate, so a call is
//! read, bucketed and classified the same way everywhere.
#![deny(clippy::unwrap_used)]
// The record's `json!` literal has many fields.
#![recursion_limit = "256"]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod dedup;
pub mod dialect;
pub mod error_class;
pub mod events;
pub mod keys;
pub mod log;
pub mod normalize;
pub mod provider;
pub mod record;
pub mod span;
pub mod timefmt;
pub mod usage;

pub use dialect::Dialect;
pub use normalize::{normalize, NormalizeOptions, Normalized, Outcome};
pub use record::{AgentContext, CallCost, CallStatus, ErrorClass, LlmCall, PriceStatus, SpanRole, Timings, Usage};
pub use rust_decimal::Decimal;

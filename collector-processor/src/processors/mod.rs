//! Processors: what is done to spans between receiving and exporting.

pub mod genai;
pub mod pricing;
pub mod view;

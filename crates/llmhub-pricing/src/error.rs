//! Errors of the pricing crate.

use thiserror::Error;

/// A catalog that cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CatalogError {
    /// A value is malformed; names its path in the file.
    #[error("{path}: {message}")]
    Invalid {
        /// Path of the entry, e.g. `models[3] (openai/gpt-4o).prices[0].input`.
        path: String,
        /// What is wrong, with the accepted form.
        message: String,
    },
    /// The catalog parsed, but the lint found problems (every one listed).
    #[error("the price catalog has {} problem(s):\n  - {}", .0.len(), .0.join("\n  - "))]
    Lint(Vec<String>),
    /// An import source could not be read.
    #[error("cannot import: {0}")]
    Import(String),
}

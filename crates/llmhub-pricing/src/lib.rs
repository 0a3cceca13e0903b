//! The llmhub price catalog and exact cost arithmetic. Pure logic, no I/O: the processor and the
//! SQL extension both price calls with this crate, so a call costs the same in a metric, in a
//! forwarded span and in SQL.
//!
//! - [`catalog`]: the YAML format (`prices/catalog.yaml`), parsed into exact decimals;
//! - [`lint`]: the catalog's consistency rules;
//! - [`matching`]: which entry prices a model name, with a recorded rule;
//! - [`cost`]: per-bucket cost with tiers and service tiers;
//! - [`import`]: LiteLLM and pydantic genai-prices data into catalog entries.
#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod catalog;
pub mod cost;
pub mod date;
pub mod error;
pub mod import;
pub mod lint;
pub mod matching;

pub use catalog::Catalog;
pub use cost::price_call;
pub use error::CatalogError;
pub use matching::Matcher;

/// The catalog shipped with this build (`prices/catalog.yaml`).
pub const EMBEDDED_CATALOG: &str = include_str!("../../../prices/catalog.yaml");

/// The embedded catalog, parsed and linted (a test guarantees it is clean).
pub fn embedded() -> Result<Catalog, CatalogError> {
    load(EMBEDDED_CATALOG)
}

/// Parses and lints a catalog: the only way the processor loads one.
pub fn load(text: &str) -> Result<Catalog, CatalogError> {
    let c = Catalog::from_yaml(text)?;
    let problems = lint::lint(&c);
    if problems.is_empty() {
        Ok(c)
    } else {
        Err(CatalogError::Lint(problems))
    }
}

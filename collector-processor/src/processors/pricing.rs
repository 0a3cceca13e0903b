//! Builds the price matcher from the configuration: the built-in catalog or a catalog file, the
//! user's models and the Azure deployment map. The only file I/O of pricing lives here.

use crate::config::{user_catalog, PricingConfig};
use anyhow::Context as _;
use llmhub_pricing::{Catalog, Matcher};

/// Loads the catalog the configuration names (the built-in one by default), parsed and linted.
pub fn catalog(cfg: &PricingConfig) -> anyhow::Result<Catalog> {
    match &cfg.catalog {
        None => Ok(llmhub_pricing::embedded()?),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("processors.genai.pricing.catalog: cannot read {path}"))?;
            llmhub_pricing::load(&text).with_context(|| format!("processors.genai.pricing.catalog: {path}"))
        }
    }
}

/// The matcher pricing every call.
pub fn matcher(cfg: &PricingConfig) -> anyhow::Result<Matcher> {
    let user = user_catalog(cfg).context("processors.genai.pricing.models")?;
    Ok(Matcher::new(catalog(cfg)?, user, cfg.azure_deployments.clone()))
}

//! Builds the price matcher from the configuration: the built-in catalog or a catalog file, the
//! user's models and the Azure deployment map. The only file I/O of pricing lives here.

use crate::config::{user_catalog, PricingConfig};
use llmhub_pricing::{Catalog, CatalogError, Matcher};

/// Why the prices could not be set up; each names the setting (the wrapped error is its source).
#[derive(Debug, thiserror::Error)]
pub enum PricingSetupError {
    /// The built-in catalog does not load (a build defect).
    #[error("the built-in price catalog")]
    Embedded(#[source] CatalogError),
    /// The catalog file could not be read.
    #[error("processors.genai.pricing.catalog: cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The catalog file does not parse or fails its lint.
    #[error("processors.genai.pricing.catalog: {path}")]
    Catalog {
        /// The file.
        path: String,
        /// Why.
        #[source]
        error: CatalogError,
    },
    /// The user's models do not make a catalog.
    #[error("processors.genai.pricing.models")]
    UserModels(#[source] CatalogError),
}

/// Loads the catalog the configuration names (the built-in one by default), parsed and linted.
pub fn catalog(cfg: &PricingConfig) -> Result<Catalog, PricingSetupError> {
    match &cfg.catalog {
        None => llmhub_pricing::embedded().map_err(PricingSetupError::Embedded),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| PricingSetupError::Read {
                path: path.clone(),
                error,
            })?;
            llmhub_pricing::load(&text).map_err(|error| PricingSetupError::Catalog {
                path: path.clone(),
                error,
            })
        }
    }
}

/// The matcher pricing every call.
pub fn matcher(cfg: &PricingConfig) -> Result<Matcher, PricingSetupError> {
    let user = user_catalog(cfg).map_err(PricingSetupError::UserModels)?;
    Ok(Matcher::new(catalog(cfg)?, user, cfg.azure_deployments.clone()))
}

//! Configuration: one YAML file shaped like an OpenTelemetry Collector config, with `${env:VAR}`
//! expansion and the Collector's own spellings accepted (`collector`). Load → validate (no I/O) → build (in `service`). Every field has a default, so no file
//! is needed at all.

mod collector;
mod expand;
mod model;
mod validate;

pub use model::*;
pub use validate::{user_catalog, validate};

use thiserror::Error;

/// A configuration that could not be loaded or is not valid.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The YAML is malformed.
    #[error("config is not valid YAML: {0}")]
    Yaml(String),
    /// `${env:VAR}` names a variable that is not set and has no default.
    #[error("{0}")]
    Env(String),
    /// A key or value does not fit the schema; names the key's path.
    #[error("{path}: {message}")]
    Schema {
        /// Dotted path of the key.
        path: String,
        /// What is wrong, with the accepted form.
        message: String,
    },
    /// Validation found problems; each names a key's path, the value and the accepted form.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// Parses a YAML document into a [`Config`] (after `${env:…}` expansion) and validates it.
pub fn from_yaml_str(text: &str) -> Result<Config, ConfigError> {
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Yaml(e.to_string()))?;
    if doc.is_null() {
        doc = serde_yaml_ng::Value::Mapping(Default::default());
    }
    expand::expand_env(&mut doc, &|name| std::env::var(name).ok())?;
    collector::translate(&mut doc).map_err(ConfigError::Invalid)?;
    let config: Config = serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::Schema {
            path: if path == "." { "(top level)".to_owned() } else { path },
            message: e.into_inner().to_string(),
        }
    })?;
    validate(&config)?;
    Ok(config)
}

/// Reads, expands, parses and validates a config file.
pub fn load_file(path: &std::path::Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    from_yaml_str(&text)
}

#[cfg(test)]
mod tests;

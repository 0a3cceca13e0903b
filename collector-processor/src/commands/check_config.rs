//! `llmhub check-config`: a config file checked offline and printed as it takes effect.

use anyhow::Context as _;
use llmhub::config;
use std::path::Path;

/// Loads, expands and validates `config` (and its price settings), then prints the result.
pub(crate) fn run(config: &Path) -> anyhow::Result<()> {
    let c = config::load_file(config)?;
    llmhub::processors::pricing::matcher(&c.processors.genai.pricing)?;
    println!("# {} is valid; effective configuration:", config.display());
    print!(
        "{}",
        serde_yaml_ng::to_string(&c).context("printing the configuration")?
    );
    Ok(())
}

//! `llmhub prices`: show, check and import price catalogs.

mod actions;

use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub(crate) enum PricesCommand {
    /// Print the prices in effect (all models, or the match for one model name).
    Show {
        /// A model name as instrumentations report it, e.g. gpt-4o-2024-08-06 or
        /// us.anthropic.claude-3-7-sonnet-20250219-v1:0.
        model: Option<String>,
        /// The provider the name was reported under (gen_ai.provider.name), e.g. aws.bedrock.
        #[arg(long)]
        provider: Option<String>,
        /// The date to show prices for (YYYY-MM-DD); today by default.
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        source: CatalogSource,
    },
    /// Lint the catalog and the configured user models; with --metrics, list the models a running
    /// llmhub saw without a price. Exit status: 0 all priced, 1 unpriced models seen, 2 an error
    /// (a catalog that fails its lint, an unreadable file).
    Check {
        /// A /metrics exposition to read unpriced models from: a file, or - for standard input,
        /// e.g. `curl -s localhost:9464/metrics | llmhub prices check --metrics -`.
        #[arg(long, value_name = "FILE|-")]
        metrics: Option<String>,
        #[command(flatten)]
        source: CatalogSource,
    },
    /// Read prices from LiteLLM's model_prices_and_context_window.json or pydantic's genai-prices
    /// data and print what would be added or changed; --output writes the merged catalog.
    Import {
        /// Source format.
        #[arg(long, value_enum)]
        format: ImportFormat,
        /// The file to import.
        file: PathBuf,
        /// Date the imported prices take effect (YYYY-MM-DD); today by default.
        #[arg(long)]
        effective_from: Option<String>,
        /// Write the merged catalog here (review the diff before committing it).
        #[arg(long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        source: CatalogSource,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum ImportFormat {
    /// LiteLLM model_prices_and_context_window.json.
    Litellm,
    /// pydantic genai-prices provider YAML or data.json.
    GenaiPrices,
}

#[derive(clap::Args, Debug)]
pub(crate) struct CatalogSource {
    /// Use this catalog file instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// Read pricing settings (catalog, user models, Azure deployments) from this config file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// `prices check` found models without a price: exit status 1, where an error is 2.
#[derive(Debug, thiserror::Error)]
#[error("some models have no price")]
pub(crate) struct UnpricedModels;

pub(crate) fn run(cmd: PricesCommand) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match prices_to(&mut out, cmd) {
        // A closed pipe (`llmhub prices show | head`) is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

fn prices_to(out: &mut dyn std::io::Write, cmd: PricesCommand) -> anyhow::Result<()> {
    use actions as p;
    let cfg = |s: &CatalogSource| p::pricing_config(s.config.as_deref(), s.catalog.as_deref());
    match cmd {
        PricesCommand::Show {
            model,
            provider,
            at,
            source,
        } => p::show(
            out,
            &cfg(&source)?,
            model.as_deref(),
            provider.as_deref(),
            at.as_deref(),
        ),
        PricesCommand::Check { metrics, source } => {
            if p::check(out, &cfg(&source)?, metrics.as_deref())? {
                Ok(())
            } else {
                Err(UnpricedModels.into())
            }
        }
        PricesCommand::Import {
            format,
            file,
            effective_from,
            output,
            source,
        } => {
            let format = match format {
                ImportFormat::Litellm => llmhub_pricing::import::Format::Litellm,
                ImportFormat::GenaiPrices => llmhub_pricing::import::Format::GenaiPrices,
            };
            p::import_prices(
                out,
                &cfg(&source)?,
                format,
                &file,
                effective_from.as_deref(),
                output.as_ref(),
            )
        }
    }
}

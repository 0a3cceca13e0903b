//! The `llmhub` command line.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use llmhub::config::{self, Config};
use std::path::PathBuf;

/// llmhub: LLM analytics for the OpenTelemetry ecosystem. Receives OTLP traces from any GenAI
/// instrumentation and turns them into token, latency, error and cost metrics.
#[derive(Parser, Debug)]
#[command(name = "llmhub", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Receive OTLP on gRPC :4317 and HTTP :4318; serve /metrics, /healthz and /readyz on :9464.
    /// Works with no config file.
    Serve(ServeArgs),
    /// Show, check and import price catalogs.
    #[command(subcommand)]
    Prices(PricesCommand),
    /// Check a config file offline (parse, expand ${env:VAR}, validate) and print the effective
    /// configuration. Exits non-zero naming every problem.
    CheckConfig {
        /// The YAML config file.
        #[arg(value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum PricesCommand {
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
    /// llmhub saw without a price (exits 1 when there are any).
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
enum ImportFormat {
    /// LiteLLM model_prices_and_context_window.json.
    Litellm,
    /// pydantic genai-prices provider YAML or data.json.
    GenaiPrices,
}

#[derive(clap::Args, Debug)]
struct CatalogSource {
    /// Use this catalog file instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// Read pricing settings (catalog, user models, Azure deployments) from this config file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// YAML config file (OpenTelemetry Collector shape). Without it, built-in defaults apply.
    #[arg(short, long, value_name = "FILE", env = "LLMHUB_CONFIG")]
    config: Option<PathBuf>,
    /// OTLP/gRPC port (overrides the config; 0 picks a free port).
    #[arg(long, value_name = "PORT")]
    grpc_port: Option<u16>,
    /// OTLP/HTTP port (overrides the config; 0 picks a free port).
    #[arg(long, value_name = "PORT")]
    http_port: Option<u16>,
    /// Metrics port for /metrics, /healthz, /readyz (overrides the config; 0 picks a free port).
    #[arg(long, value_name = "PORT")]
    metrics_port: Option<u16>,
    /// Address every listener binds to (overrides the host part of each endpoint), e.g. 127.0.0.1.
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
}

fn with_port(endpoint: &str, port: Option<u16>, bind: Option<&str>) -> String {
    let (host, old_port) = endpoint.rsplit_once(':').unwrap_or((endpoint, "0"));
    let host = bind.unwrap_or(host);
    match port {
        Some(p) => format!("{host}:{p}"),
        None => format!("{host}:{old_port}"),
    }
}

fn apply_overrides(mut c: Config, a: &ServeArgs) -> Config {
    let bind = a.bind.as_deref();
    if let Some(g) = c.receivers.otlp.protocols.grpc.as_mut() {
        g.endpoint = with_port(&g.endpoint, a.grpc_port, bind);
    }
    if let Some(h) = c.receivers.otlp.protocols.http.as_mut() {
        h.endpoint = with_port(&h.endpoint, a.http_port, bind);
    }
    let p = &mut c.exporters.prometheus;
    p.endpoint = with_port(&p.endpoint, a.metrics_port, bind);
    c
}

fn init_logging(c: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LLMHUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&c.service.telemetry.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if c.service.telemetry.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llmhub: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig { config } => {
            let c = config::load_file(&config)?;
            llmhub::processors::pricing::matcher(&c.processors.genai.pricing)?;
            println!("# {} is valid; effective configuration:", config.display());
            print!("{}", serde_yaml::to_string(&c).context("printing the configuration")?);
            Ok(())
        }
        Command::Prices(cmd) => prices(cmd),
        Command::Serve(args) => {
            let base = match &args.config {
                Some(path) => config::load_file(path)?,
                None => Config::default(),
            };
            let c = apply_overrides(base, &args);
            config::validate(&c)?;
            init_logging(&c);
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(serve(c))
        }
    }
}

fn prices(cmd: PricesCommand) -> anyhow::Result<()> {
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
    use llmhub::prices as p;
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
                anyhow::bail!("some models have no price")
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

async fn serve(c: Config) -> anyhow::Result<()> {
    let running = llmhub::service::start(&c).await?;
    let token = running.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; draining");
        token.cancel();
    });
    running.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

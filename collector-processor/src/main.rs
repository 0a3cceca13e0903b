//! The `llmhub` command line.

mod commands;

use clap::{Parser, Subcommand};
use commands::demo::DemoArgs;
use commands::loadgen::LoadgenArgs;
use commands::prices::{PricesCommand, UnpricedModels};
use commands::serve::ServeArgs;
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
    /// Serve, plus built-in synthetic GenAI traffic, so a newcomer sees data at once.
    Demo(DemoArgs),
    /// Send realistic GenAI traffic through the real OpenTelemetry SDK to an OTLP endpoint.
    Loadgen(LoadgenArgs),
    /// Write the bundled Grafana dashboards (JSON, import-ready) and their README into a directory.
    Dashboards {
        /// Output directory.
        #[arg(long, value_name = "DIR", default_value = "dashboards")]
        out: PathBuf,
    },
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
    /// Write the manual pages (llmhub.1 and one per subcommand, roff) into a directory. Used by
    /// scripts/package.sh.
    #[command(hide = true)]
    Man {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `prices check` answers like grep: 1 for what it looks for (unpriced models), 2 for an error,
    // so a CI step can tell a catalog gap from a broken catalog or an unreadable file.
    let checking = matches!(cli.command, Command::Prices(PricesCommand::Check { .. }));
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llmhub: {e:#}");
            if e.downcast_ref::<UnpricedModels>().is_some() {
                std::process::ExitCode::from(1)
            } else if checking {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dashboards { out } => commands::dashboards::run(&out),
        Command::CheckConfig { config } => commands::check_config::run(&config),
        Command::Prices(cmd) => commands::prices::run(cmd),
        Command::Man { out } => commands::man::run(<Cli as clap::CommandFactory>::command(), &out),
        Command::Loadgen(args) => commands::loadgen::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Serve(args) => commands::serve::run(args),
    }
}

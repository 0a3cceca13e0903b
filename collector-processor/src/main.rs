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
    /// Check a config file offline (parse, expand ${env:VAR}, validate) and print the effective
    /// configuration. Exits non-zero naming every problem.
    CheckConfig {
        /// The YAML config file.
        #[arg(value_name = "FILE")]
        config: PathBuf,
    },
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
            println!("# {} is valid; effective configuration:", config.display());
            print!("{}", serde_yaml::to_string(&c).context("printing the configuration")?);
            Ok(())
        }
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

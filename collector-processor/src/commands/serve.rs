//! `llmhub serve`: the collector itself, from a config file or the built-in defaults.

use super::process::{init_logging, tune_allocator, Signals};
use anyhow::Context as _;
use llmhub::config::{self, Config};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
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

/// Loads the config (and the flags over it), then serves until a signal, draining within the deadline.
pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let base = match &args.config {
        Some(path) => config::load_file(path)?,
        None => Config::default(),
    };
    let c = apply_overrides(base, &args);
    config::validate(&c)?;
    init_logging(&c);
    tune_allocator(&c);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(serve(c));
    // Blocking work still running (a sync, a last metrics push) is not waited for:
    // everything acknowledged is already where its durability setting puts it.
    rt.shutdown_timeout(Duration::from_millis(500));
    result
}

/// Longest a shutdown may take past its drain deadline before the process ends regardless.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

async fn serve(c: Config) -> anyhow::Result<()> {
    // Caught before the start logs `ready`: a SIGTERM right after it drains instead of killing.
    let mut signals = Signals::install().context("installing the SIGTERM and SIGINT handlers")?;
    let running = llmhub::service::start(&c).await?;
    let token = running.shutdown_token();
    tokio::spawn(async move {
        signals.recv().await;
        tracing::info!("shutdown requested; draining");
        token.cancel();
        // The drain is bounded by its deadline; should anything still hold the process past it
        // (and a grace period), or a second signal come, it ends now. A thread of its own, so
        // that it fires even if every runtime thread is stuck.
        std::thread::spawn(|| {
            std::thread::sleep(llmhub::service::DRAIN_DEADLINE + SHUTDOWN_GRACE);
            tracing::error!("shutdown did not finish within its deadline; exiting");
            std::process::exit(2);
        });
        signals.recv().await;
        tracing::warn!("second shutdown signal; exiting without draining");
        std::process::exit(130);
    });
    running.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

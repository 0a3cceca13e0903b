//! `llmhub loadgen`: realistic GenAI traffic through the OpenTelemetry SDK to an OTLP endpoint.

use super::process::{init_logging, wait_for_signal};
use super::traffic::{traffic, TrafficArgs};
use anyhow::Context as _;
use llmhub::config::Config;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub(crate) struct LoadgenArgs {
    /// OTLP endpoint (http://host:4317 for grpc, http://host:4318 for http-*).
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    endpoint: String,
    /// Transport: grpc, http-protobuf or http-json.
    #[arg(long, default_value = "grpc")]
    protocol: String,
    /// Stop after this many seconds (live timestamps).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Stop after this many traces.
    #[arg(long)]
    count: Option<u64>,
    /// Stop once this many spans were sent.
    #[arg(long)]
    spans: Option<u64>,
    /// Backfill a historical window, sent as fast as the exporter takes it:
    /// START..END as RFC 3339 times, e.g. 2026-11-01T00:00:00Z..2026-11-02T00:00:00Z.
    #[arg(long, value_name = "START..END")]
    backfill: Option<String>,
    /// Start time of the simulated clock for live mode (RFC 3339), for reproducible spans.
    #[arg(long, value_name = "TIME")]
    start: Option<String>,
    /// Send the seed's traffic again as new calls: the same calls, tokens and timings with other
    /// trace, span and response ids (the N-th replay; 0 is the original).
    #[arg(long, value_name = "N", default_value_t = 0)]
    replay: u64,
    #[command(flatten)]
    traffic: TrafficArgs,
}

/// How often `loadgen` prints its progress.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Sends the traffic `args` describe until it is done or a signal comes.
pub(crate) fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    init_logging(&Config::default());
    let cfg = loadgen_config(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let progress = std::sync::Arc::new(llmhub_loadgen::Progress::default());
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            s.cancel();
        });
        // Progress on standard error every few seconds and once at the end; the summary
        // stays alone on standard output.
        let window = cfg.backfill;
        let started = std::time::Instant::now();
        let p = progress.clone();
        let reporter = tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!("{}", p.line(window, started.elapsed()));
            }
        });
        let result = llmhub_loadgen::run(cfg, progress.clone(), stop).await;
        reporter.abort();
        eprintln!("{}", progress.line(window, started.elapsed()));
        let summary = result?;
        println!("sent {} traces, {} spans", summary.traces, summary.spans);
        Ok(())
    })
}

fn rfc3339(what: &str, s: &str) -> anyhow::Result<u64> {
    llmhub_core::timefmt::rfc3339_to_unix_nanos(s)
        .with_context(|| format!("{what}: {s:?} is not an RFC 3339 time, e.g. 2026-11-01T00:00:00Z"))
}

fn loadgen_config(a: &LoadgenArgs) -> anyhow::Result<llmhub_loadgen::LoadgenConfig> {
    use llmhub_loadgen::Transport;
    let (dialects, tenants, incidents, models) = traffic(&a.traffic)?;
    let transport = match a.protocol.as_str() {
        "grpc" => Transport::Grpc,
        "http-protobuf" | "http/protobuf" => Transport::HttpProtobuf,
        "http-json" | "http/json" => Transport::HttpJson,
        other => anyhow::bail!("--protocol: got {other:?}, expected grpc, http-protobuf or http-json"),
    };
    let backfill = match &a.backfill {
        None => None,
        Some(range) => {
            let (s, e) = range
                .split_once("..")
                .context("--backfill: expected START..END, e.g. 2026-11-01T00:00:00Z..2026-11-02T00:00:00Z")?;
            let (s, e) = (rfc3339("--backfill start", s)?, rfc3339("--backfill end", e)?);
            anyhow::ensure!(e > s, "--backfill: the end must be after the start");
            Some((s, e))
        }
    };
    if backfill.is_none() && a.duration.is_none() && a.count.is_none() && a.spans.is_none() {
        anyhow::bail!("give --duration SECONDS, --count TRACES, --spans SPANS or --backfill START..END");
    }
    Ok(llmhub_loadgen::LoadgenConfig {
        endpoint: a.endpoint.clone(),
        transport,
        seed: a.traffic.seed,
        rate: a.traffic.rate,
        duration: a.duration.map(std::time::Duration::from_secs_f64),
        count: a.count,
        spans: a.spans,
        models,
        backfill,
        start: a.start.as_deref().map(|s| rfc3339("--start", s)).transpose()?,
        dialects,
        tenants,
        incidents,
        ground_truth: a.traffic.ground_truth.clone(),
        replay: a.replay,
    })
}

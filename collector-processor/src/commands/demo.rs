//! `llmhub demo`: serve, with built-in synthetic traffic, so a newcomer sees data at once.

use super::process::{init_logging, tune_allocator, wait_for_signal};
use super::traffic::{traffic, TrafficArgs};
use anyhow::Context as _;
use llmhub::config::{self, Config};

#[derive(clap::Args, Debug)]
pub(crate) struct DemoArgs {
    /// Address every listener binds to.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// OTLP/gRPC port (0 picks a free port).
    #[arg(long, default_value_t = 4317)]
    grpc_port: u16,
    /// OTLP/HTTP port (0 picks a free port).
    #[arg(long, default_value_t = 4318)]
    http_port: u16,
    /// Metrics port (0 picks a free port).
    #[arg(long, default_value_t = 9464)]
    metrics_port: u16,
    /// Stop after this many seconds (default: run until Ctrl-C, at most an hour of traffic).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Also write every call into this PostgreSQL/TimescaleDB database (table `llm_calls`, created
    /// if missing), e.g. postgres://postgres@localhost:5432/postgres, and print example SQL.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    #[command(flatten)]
    traffic: TrafficArgs,
}

/// Serves on the ports `args` give and sends the traffic until a signal or its duration.
pub(crate) fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mut c = Config::default();
    c.receivers.otlp.protocols.grpc.as_mut().context("grpc")?.endpoint = format!("{}:{}", args.bind, args.grpc_port);
    c.receivers.otlp.protocols.http.as_mut().context("http")?.endpoint = format!("{}:{}", args.bind, args.http_port);
    c.exporters.prometheus.endpoint = format!("{}:{}", args.bind, args.metrics_port);
    if let Some(url) = &args.postgres {
        c.exporters.postgres = Some(llmhub_exporters::postgres::PostgresConfig {
            url: Some(url.clone()),
            ..Default::default()
        });
        c.service.pipelines.traces.exporters.push("postgres".into());
    }
    config::validate(&c)?;
    c.service.telemetry.log_level = "warn".into();
    init_logging(&c);
    tune_allocator(&c);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(demo(c, args))
}

async fn demo(c: Config, args: DemoArgs) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    let running = llmhub::service::start(&c).await?;
    let grpc = running.grpc_addr.context("grpc receiver")?;
    let metrics = running.metrics_addr;
    let (dialects, tenants, incidents, models) = traffic(&args.traffic)?;
    let cfg = llmhub_loadgen::LoadgenConfig {
        endpoint: format!("http://{grpc}"),
        transport: llmhub_loadgen::Transport::Grpc,
        seed: args.traffic.seed,
        rate: args.traffic.rate,
        duration: Some(std::time::Duration::from_secs_f64(args.duration.unwrap_or(3600.0))),
        count: None,
        spans: None,
        models,
        backfill: None,
        start: None,
        dialects,
        tenants,
        incidents,
        ground_truth: args.traffic.ground_truth.clone(),
        replay: 0,
    };
    println!(
        "llmhub demo: serving with synthetic GenAI traffic ({} traces/s, seed {}).",
        args.traffic.rate, args.traffic.seed
    );
    println!(
        "  OTLP gRPC   {grpc}    OTLP HTTP   {}",
        running.http_addr.map(|a| a.to_string()).unwrap_or_default()
    );
    println!("  metrics     http://{metrics}/metrics   (also /healthz, /readyz)");
    println!("  try:        curl -s http://{metrics}/metrics | grep -E '^llmhub_(tokens|cost_usd)_total'");
    println!("  PromQL:     sum by (gen_ai_request_model) (rate(llmhub_cost_usd_total[5m]))");
    println!("              histogram_quantile(0.95, sum by (le, gen_ai_request_model) (rate(gen_ai_client_operation_duration_seconds_bucket[5m])))");
    println!("              sum by (error_type) (rate(llmhub_errors_total[5m]))");
    if let Some(url) = &args.postgres {
        println!("  PostgreSQL  every call goes to llm_calls in {}", redact(url));
        println!("  SQL:        SELECT model, count(*) AS calls, sum(cost_usd) AS usd FROM llm_calls");
        println!("                GROUP BY model ORDER BY usd DESC NULLS LAST LIMIT 10;");
        println!("              SELECT date_trunc('minute', time) AS minute, sum(cost_usd) AS usd,");
        println!("                     avg(ttft_s) AS avg_ttft_s FROM llm_calls GROUP BY 1 ORDER BY 1 DESC LIMIT 15;");
        println!("              SELECT error_class, count(*) FROM llm_calls WHERE status = 'error' GROUP BY 1;");
    }
    println!("  Ctrl-C stops.");
    let progress = std::sync::Arc::new(llmhub_loadgen::Progress::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let gen = tokio::spawn(llmhub_loadgen::run(cfg, progress.clone(), stop.clone()));
    let processor = running.processor.clone();
    let sink = running.sink();
    let report = |final_line: bool| {
        let m = processor.metrics();
        let mut line = format!(
            "sent {} spans, accepted {}, catalog cost so far ${:.4}",
            progress.spans.load(Ordering::Relaxed),
            m.accepted_spans(),
            m.cost_usd()
        );
        if let Some(sink) = &sink {
            line.push_str(&format!(", rows in PostgreSQL {}", sink.rows_written()));
        }
        if final_line {
            println!("{line}");
        } else {
            print!("\r{line}   ");
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    tokio::pin!(gen);
    let outcome = loop {
        tokio::select! {
            _ = tick.tick() => report(false),
            _ = wait_for_signal() => { stop.cancel(); break (&mut gen).await; }
            r = &mut gen => break r,
        }
    };
    // Let the last exports land before the final count; stopping writes the sink's queue out.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    running.stop().await?;
    println!();
    report(true);
    outcome.context("load generator")??;
    Ok(())
}

/// A connection URL without its password, for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

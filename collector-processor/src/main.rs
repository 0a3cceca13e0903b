//! The `llmhub` command line.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use llmhub::config::{self, Config};
use std::path::PathBuf;
use std::time::Duration;

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

#[derive(clap::Args, Debug)]
struct TrafficArgs {
    /// Average traces per second before diurnal and weekly seasonality (agents carry several spans).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seed: a fixed seed (with --start or --backfill) gives identical spans.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Dialects to emit, comma-separated: otel, openinference, openllmetry, vercel, openlit,
    /// langfuse, pydantic-ai, or mixed (all of them, rotated per trace).
    #[arg(long, default_value = "mixed")]
    dialect: String,
    /// Number of tenants (tenant.id values).
    #[arg(long, default_value_t = 3)]
    tenants: usize,
    /// Do not inject incidents (cost spike, latency regression, error burst, runaway agent loop).
    #[arg(long)]
    no_incidents: bool,
    /// Write the injected incidents here, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    ground_truth: Option<PathBuf>,
    /// Chat-model mix, comma-separated provider/model[:weight], e.g.
    /// openai/gpt-4o:3,anthropic/claude-sonnet-4-5:1 (default: nine catalog models, equal weights).
    #[arg(long, value_name = "MIX")]
    models: Option<String>,
}

#[derive(clap::Args, Debug)]
struct LoadgenArgs {
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

#[derive(clap::Args, Debug)]
struct DemoArgs {
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

/// With `service.memory.return_freed`, allocations from this size up are mapped, and unmapped when
/// freed (see `llmhub_sys`): keeps resident memory near what is held under a long overload.
const MMAP_THRESHOLD: usize = 128 * 1024;

/// Applies `service.memory.return_freed`; call before the runtime starts its threads.
fn tune_allocator(c: &Config) {
    if c.service.memory.returns_freed() && llmhub_sys::fix_mmap_threshold(MMAP_THRESHOLD) {
        tracing::info!(
            threshold_bytes = MMAP_THRESHOLD,
            "large allocations are returned to the system when freed (service.memory.return_freed)"
        );
    }
}

/// How often `loadgen` prints its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// `prices check` found models without a price: exit status 1, where an error is 2.
#[derive(Debug, thiserror::Error)]
#[error("some models have no price")]
struct UnpricedModels;

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
        Command::Dashboards { out } => {
            llmhub::dashboards::write(&out).with_context(|| format!("writing dashboards into {}", out.display()))?;
            println!(
                "wrote {} dashboards and README.md into {}",
                llmhub::dashboards::all().len(),
                out.display()
            );
            Ok(())
        }
        Command::CheckConfig { config } => {
            let c = config::load_file(&config)?;
            llmhub::processors::pricing::matcher(&c.processors.genai.pricing)?;
            println!("# {} is valid; effective configuration:", config.display());
            print!(
                "{}",
                serde_yaml_ng::to_string(&c).context("printing the configuration")?
            );
            Ok(())
        }
        Command::Prices(cmd) => prices(cmd),
        Command::Man { out } => {
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::generate_to(cmd, &out)
                .with_context(|| format!("writing manual pages into {}", out.display()))?;
            Ok(())
        }
        Command::Loadgen(args) => {
            init_logging(&Config::default());
            let cfg = loadgen_config(&args)?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(async move {
                let progress = std::sync::Arc::new(llmhub::loadgen::Progress::default());
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
                let result = llmhub::loadgen::run(cfg, progress.clone(), stop).await;
                reporter.abort();
                eprintln!("{}", progress.line(window, started.elapsed()));
                let summary = result?;
                println!("sent {} traces, {} spans", summary.traces, summary.spans);
                Ok(())
            })
        }
        Command::Demo(args) => {
            let mut c = Config::default();
            c.receivers.otlp.protocols.grpc.as_mut().context("grpc")?.endpoint =
                format!("{}:{}", args.bind, args.grpc_port);
            c.receivers.otlp.protocols.http.as_mut().context("http")?.endpoint =
                format!("{}:{}", args.bind, args.http_port);
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
        Command::Serve(args) => {
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

type Traffic = (
    Vec<llmhub::loadgen::scenario::PlanDialect>,
    usize,
    bool,
    Vec<llmhub::loadgen::scenario::ModelChoice>,
);

fn traffic(t: &TrafficArgs) -> anyhow::Result<Traffic> {
    use llmhub::loadgen::scenario::PlanDialect as D;
    let mut dialects = Vec::new();
    for name in t.dialect.split(',').map(str::trim) {
        match name {
            "mixed" => dialects.extend(D::ALL),
            "otel" => dialects.push(D::Otel),
            "openinference" => dialects.push(D::OpenInference),
            "openllmetry" => dialects.push(D::OpenLlmetry),
            "vercel" => dialects.push(D::Vercel),
            "openlit" => dialects.push(D::OpenLit),
            "langfuse" => dialects.push(D::Langfuse),
            "pydantic-ai" => dialects.push(D::PydanticAi),
            other => anyhow::bail!(
                "--dialect: unknown dialect {other:?}; use otel, openinference, openllmetry, vercel, openlit, langfuse, pydantic-ai or mixed"
            ),
        }
    }
    if !(t.rate.is_finite() && t.rate > 0.0) {
        anyhow::bail!(
            "--rate: got {}, expected a positive number of traces per second, e.g. 20",
            t.rate
        );
    }
    let models = match &t.models {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|m| {
                llmhub::loadgen::scenario::ModelChoice::parse(m.trim()).map_err(|e| anyhow::anyhow!("--models: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    Ok((dialects, t.tenants.max(1), !t.no_incidents, models))
}

fn rfc3339(what: &str, s: &str) -> anyhow::Result<u64> {
    llmhub_core::timefmt::rfc3339_to_unix_nanos(s)
        .with_context(|| format!("{what}: {s:?} is not an RFC 3339 time, e.g. 2026-11-01T00:00:00Z"))
}

fn loadgen_config(a: &LoadgenArgs) -> anyhow::Result<llmhub::loadgen::LoadgenConfig> {
    use llmhub::loadgen::Transport;
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
    Ok(llmhub::loadgen::LoadgenConfig {
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

async fn demo(c: Config, args: DemoArgs) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    let running = llmhub::service::start(&c).await?;
    let grpc = running.grpc_addr.context("grpc receiver")?;
    let metrics = running.metrics_addr;
    let (dialects, tenants, incidents, models) = traffic(&args.traffic)?;
    let cfg = llmhub::loadgen::LoadgenConfig {
        endpoint: format!("http://{grpc}"),
        transport: llmhub::loadgen::Transport::Grpc,
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
    let progress = std::sync::Arc::new(llmhub::loadgen::Progress::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let gen = tokio::spawn(llmhub::loadgen::run(cfg, progress.clone(), stop.clone()));
    let processor = running.processor.clone();
    let report = |final_line: bool| {
        let m = processor.metrics();
        let mut line = format!(
            "sent {} spans, accepted {}, catalog cost so far ${:.4}",
            progress.spans.load(Ordering::Relaxed),
            m.accepted_spans(),
            m.cost_usd()
        );
        if let Some(sink) = processor.sink() {
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
    outcome.context("load generator")?.map(|_| ())
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

/// Longest a shutdown may take past its drain deadline before the process ends regardless.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

async fn serve(c: Config) -> anyhow::Result<()> {
    let running = llmhub::service::start(&c).await?;
    let token = running.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
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
        wait_for_signal().await;
        tracing::warn!("second shutdown signal; exiting without draining");
        std::process::exit(130);
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

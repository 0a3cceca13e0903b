//! Builds the pipeline from a validated config and runs it: binds every listener, serves until
//! cancelled, then stops accepting and drains within a deadline.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::pipeline::Fanout;
use crate::processors::genai::GenAiProcessor;
use crate::receivers::otlp::grpc::{GrpcService, Logs, Metrics as MetricsSignal, Traces};
use crate::receivers::otlp::http::{router as http_router, HttpState};
use llmhub_exporters::postgres::PostgresSink;
use llmhub_exporters::prometheus::{router as prom_router, PrometheusState, Readiness};
use llmhub_server::budget::{spawn_sampler, BudgetGauges, MemoryBudget};
use llmhub_server::tls::{ALPN_GRPC, ALPN_HTTP};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const MIB: u64 = 1024 * 1024;

/// How long in-flight requests may take to finish after shutdown begins.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// A running llmhub.
pub struct Running {
    /// Bound OTLP/gRPC address, if enabled.
    pub grpc_addr: Option<SocketAddr>,
    /// Bound OTLP/HTTP address, if enabled.
    pub http_addr: Option<SocketAddr>,
    /// Bound metrics address.
    pub metrics_addr: SocketAddr,
    /// The processor (tests read its metrics).
    pub processor: Arc<GenAiProcessor>,
    shutdown: CancellationToken,
    receivers_stop: CancellationToken,
    metrics_stop: CancellationToken,
    ready: Arc<Readiness>,
    receivers: Vec<(&'static str, JoinHandle<()>)>,
    metrics_task: JoinHandle<()>,
    exporters: Fanout,
    sink: Option<Arc<PostgresSink>>,
}

/// Why the service did not start. Each names the setting or listener; the wrapped error is its
/// source (printed after it with `{:#}`).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `exporters.otlp_metrics`.
    #[error("exporters.otlp_metrics: {0}")]
    OtlpMetrics(llmhub_exporters::otlp_metrics::PushSetupError),
    /// The price catalog or the user's models.
    #[error(transparent)]
    Pricing(#[from] crate::processors::pricing::PricingSetupError),
    /// An exporter of the pipeline.
    #[error(transparent)]
    Exporters(#[from] crate::pipeline::BuildError),
    /// An `auth` section.
    #[error("{0}")]
    Auth(String),
    /// A listener's `tls` section.
    #[error(transparent)]
    Tls(#[from] llmhub_server::tls::TlsError),
    /// A listener's address is taken or not ours.
    #[error("cannot listen on {endpoint} for {what}")]
    Bind {
        /// The listener.
        what: &'static str,
        /// Its address.
        endpoint: String,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// A bound listener has no local address.
    #[error("the {what} listener has no local address")]
    LocalAddr {
        /// The listener.
        what: &'static str,
        /// Why.
        #[source]
        error: std::io::Error,
    },
}

/// Why the service stopped with an error: a server task failed (panicked).
#[derive(Debug, thiserror::Error)]
#[error("{name} task failed")]
pub struct StopError {
    /// The task.
    name: &'static str,
    /// How.
    #[source]
    error: tokio::task::JoinError,
}

async fn bind(what: &'static str, endpoint: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(endpoint).await.map_err(|error| StartError::Bind {
        what,
        endpoint: endpoint.to_owned(),
        error,
    })
}

fn local_addr(what: &'static str, listener: &TcpListener) -> Result<SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|error| StartError::LocalAddr { what, error })
}

/// Binds the listeners and starts serving. Returns once every listener is bound.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let mut registry = Registry::default();
    let card = &config.exporters.prometheus.cardinality;
    let mut metrics = Metrics::new(&mut registry, card.max_series_per_metric, card.max_values_per_label);
    crate::metrics::process::register_all(&mut registry);
    let exporters_on = &config.service.pipelines.traces.exporters;
    if let (true, Some(o)) = (
        exporters_on.iter().any(|e| e == "otlp_metrics"),
        &config.exporters.otlp_metrics,
    ) {
        let provider = llmhub_exporters::otlp_metrics::meter_provider(o).map_err(StartError::OtlpMetrics)?;
        tracing::info!(endpoint = %o.endpoint, protocol = ?o.protocol, temporality = ?o.temporality,
            interval_ms = o.interval_ms, "OTLP metrics push on");
        metrics = metrics.with_otlp_push(provider);
    }
    let metrics = Arc::new(metrics);
    let matcher = crate::processors::pricing::matcher(&config.processors.genai.pricing)?;
    tracing::info!(
        catalog = %matcher.catalog().version,
        models = matcher.catalog().models.len(),
        "price catalog loaded"
    );
    let built = crate::pipeline::build(config, &mut registry)?;
    let exporters = built.fanout.clone();
    let processor = GenAiProcessor::new(&config.processors.genai, matcher, metrics)
        .with_limits(config.receivers.otlp.limits)
        .with_exporters(built.fanout);
    let budget = MemoryBudget::new(config.service.memory.limit_mib * MIB);
    let budget_gauges = BudgetGauges::register(&mut registry);
    let processor = Arc::new(processor.with_budget(budget.clone()));
    let shutdown = CancellationToken::new();
    let receivers_stop = CancellationToken::new();
    let metrics_stop = CancellationToken::new();
    spawn_sampler(budget, budget_gauges, Duration::from_millis(100), metrics_stop.clone());
    let ready = Arc::new(Readiness::default());
    // Each exporter's own state: not ready while it is retrying its destination or its queue
    // refuses requests.
    for e in exporters.exporters() {
        let e = e.clone();
        ready.add_check(e.name(), move || e.problem().map_or(Ok(()), Err));
    }
    let authenticator = |a: &Option<llmhub_server::auth::AuthConfig>, path: &str, tenants: bool| {
        a.as_ref()
            .map(|a| {
                llmhub_server::auth::Authenticator::new(a, path, tenants)
                    .map(Arc::new)
                    .map_err(|p| StartError::Auth(p.join("; ")))
            })
            .transpose()
    };
    let receiver_auth = authenticator(&config.receivers.otlp.auth, "receivers.otlp.auth", true)?;
    let metrics_auth = authenticator(&config.exporters.prometheus.auth, "exporters.prometheus.auth", false)?;
    let mut tasks = Vec::new();

    // Bind everything first, so a port conflict fails the start before anything serves.
    let protocols = &config.receivers.otlp.protocols;
    let tls = |t: Option<&llmhub_server::tls::ServerTlsConfig>, path: &str, alpn: &[&[u8]]| {
        t.map(|t| t.load(path, alpn).map(tokio_rustls::TlsAcceptor::from))
            .transpose()
            .map_err(StartError::from)
    };
    let grpc_listener = match &protocols.grpc {
        Some(g) => Some((
            bind("OTLP/gRPC", &g.endpoint).await?,
            g.max_recv_msg_size_mib,
            tls(g.tls.as_ref(), "receivers.otlp.protocols.grpc.tls", ALPN_GRPC)?,
        )),
        None => None,
    };
    let http_listener = match &protocols.http {
        Some(h) => Some((
            bind("OTLP/HTTP", &h.endpoint).await?,
            h,
            tls(h.tls.as_ref(), "receivers.otlp.protocols.http.tls", ALPN_HTTP)?,
        )),
        None => None,
    };
    let prom_cfg = &config.exporters.prometheus;
    let metrics_listener = bind("metrics", &prom_cfg.endpoint).await?;
    let metrics_tls = tls(prom_cfg.tls.as_ref(), "exporters.prometheus.tls", ALPN_HTTP)?;

    let mut grpc_addr = None;
    if let Some((listener, max_mib, acceptor)) = grpc_listener {
        let addr = local_addr("OTLP/gRPC", &listener)?;
        grpc_addr = Some(addr);
        let max = (max_mib * MIB) as usize;
        let routes = tonic::service::Routes::new(GrpcService::<Traces>::new(
            processor.clone(),
            max,
            receiver_auth.clone(),
        ))
        .add_service(GrpcService::<MetricsSignal>::new(
            processor.clone(),
            max,
            receiver_auth.clone(),
        ))
        .add_service(GrpcService::<Logs>::new(processor.clone(), max, receiver_auth.clone()))
        .prepare();
        tracing::info!(%addr, tls = tls_mode(&protocols.grpc.as_ref().and_then(|g| g.tls.clone())), "OTLP/gRPC receiver listening");
        tasks.push((
            "otlp-grpc",
            serve_axum(listener, routes.into_axum_router(), receivers_stop.clone(), acceptor),
        ));
    }

    let mut http_addr = None;
    if let Some((listener, h, acceptor)) = http_listener {
        let addr = local_addr("OTLP/HTTP", &listener)?;
        http_addr = Some(addr);
        let state = Arc::new(HttpState {
            processor: processor.clone(),
            max_body: (h.max_request_body_size_mib * MIB) as usize,
            max_decompressed: (h.max_decompressed_body_size_mib * MIB) as usize,
            auth: receiver_auth.clone(),
        });
        tracing::info!(%addr, tls = tls_mode(&h.tls), "OTLP/HTTP receiver listening");
        tasks.push((
            "otlp-http",
            serve_axum(listener, http_router(state), receivers_stop.clone(), acceptor),
        ));
    }

    let metrics_addr = local_addr("metrics", &metrics_listener)?;
    let prom = Arc::new(PrometheusState {
        registry: Arc::new(registry),
        ready: ready.clone(),
        auth: metrics_auth,
    });
    tracing::info!(addr = %metrics_addr, tls = tls_mode(&prom_cfg.tls), "metrics endpoint listening (/metrics, /healthz, /readyz)");
    let metrics_task = serve_axum(metrics_listener, prom_router(prom), metrics_stop.clone(), metrics_tls);

    ready.set(true);
    tracing::info!("ready");
    Ok(Running {
        grpc_addr,
        http_addr,
        metrics_addr,
        processor,
        shutdown,
        receivers_stop,
        metrics_stop,
        ready,
        receivers: tasks,
        metrics_task,
        exporters,
        sink: built.sink,
    })
}

/// Largest read buffer of one HTTP/1.1 connection (hyper's default is about 400 KiB). Bodies are
/// read a buffer at a time and counted against the memory budget as they arrive; what the
/// connection itself buffers is not, so it is kept small: 64 connections hold at most 4 MiB.
const HTTP1_READ_BUFFER: usize = 64 * 1024;

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a listener's TLS is set, for the start-up log.
fn tls_mode(tls: &Option<llmhub_server::tls::ServerTlsConfig>) -> &'static str {
    match tls {
        None => "off",
        Some(t) if t.client_ca_file.is_some() => "mutual",
        Some(_) => "on",
    }
}

/// Spawns what hyper hands off (each HTTP/2 stream's request) in the span current at the hand-off:
/// the connection's, so a request's events still name its client.
#[derive(Clone, Copy)]
struct InSpan;

impl<F> hyper::rt::Executor<F> for InSpan
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        tokio::spawn(tracing::Instrument::in_current_span(fut));
    }
}

/// Serves `router` on `listener` (HTTP/1.1 and HTTP/2; over TLS when `tls` is given, else
/// cleartext with h2c) until `token` is cancelled, then lets open connections finish their
/// requests.
fn serve_axum(
    listener: TcpListener,
    router: axum::Router,
    token: CancellationToken,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut builder = hyper_util::server::conn::auto::Builder::new(InSpan);
        builder.http1().max_buf_size(HTTP1_READ_BUFFER);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            let (stream, client) = tokio::select! {
                _ = token.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            let (builder, watcher, tls) = (builder.clone(), graceful.watcher(), tls.clone());
            // Every event of the connection (a refused request's debug line, say) names its client.
            let span = tracing::debug_span!("conn", %client);
            // The handshake runs on the connection's own task, so a slow client never holds up
            // the accept loop.
            tokio::spawn(tracing::Instrument::instrument(
                async move {
                    match tls {
                        None => {
                            let conn =
                                builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service);
                            let _ = watcher.watch(conn.into_owned()).await;
                        }
                        Some(acceptor) => {
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => {
                                    let conn = builder
                                        .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service);
                                    let _ = watcher.watch(conn.into_owned()).await;
                                }
                                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!("TLS handshake timed out"),
                            }
                        }
                    }
                },
                span,
            ));
        }
        graceful.shutdown().await;
    })
}

impl Running {
    /// The PostgreSQL sink, if the pipeline has one (for progress reports).
    pub fn sink(&self) -> Option<Arc<PostgresSink>> {
        self.sink.clone()
    }

    /// A token that stops the service when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, drains in-flight requests within [`DRAIN_DEADLINE`], and returns the first
    /// error any server reported.
    pub async fn stop(self) -> Result<(), StopError> {
        self.ready.set(false);
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the service stops (after its shutdown token is cancelled or a server fails), then
    /// drains: readiness turns false, the receivers stop accepting and finish in-flight requests
    /// within one shared [`DRAIN_DEADLINE`] (stragglers are aborted), and the metrics endpoint stops
    /// last, so what was processed during the drain can still be scraped until then. The record
    /// sink writes out its queue within what is left of the deadline (an on-disk queue keeps the
    /// rest for the next start).
    pub async fn wait(self) -> Result<(), StopError> {
        let Running {
            shutdown,
            receivers_stop,
            metrics_stop,
            ready,
            receivers,
            metrics_task,
            exporters,
            processor,
            ..
        } = self;
        let any_ended = async {
            loop {
                if receivers.iter().any(|(_, h)| h.is_finished()) || metrics_task.is_finished() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = any_ended => {}
        }
        ready.set(false);
        receivers_stop.cancel();
        let deadline = tokio::time::Instant::now() + DRAIN_DEADLINE;
        let mut first_err = None;
        for (name, mut h) in receivers {
            match tokio::time::timeout_at(deadline, &mut h).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    first_err.get_or_insert(StopError { name, error });
                }
                Err(_) => {
                    tracing::warn!(server = name, "did not drain within the deadline; aborted");
                    h.abort();
                }
            }
        }
        // Whatever the receivers left of the shared deadline goes to writing the queues out.
        let left = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_secs(1));
        exporters.shutdown(left).await;
        // A last OTLP metrics export of everything processed (the HTTP client blocks), within
        // what is left of the deadline (2 s at least). Not waited for beyond it: the process
        // exits without waiting for blocking work (main.rs).
        let left = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_secs(2));
        let p = processor.clone();
        let _ = tokio::time::timeout(left, tokio::task::spawn_blocking(move || p.metrics().shutdown_push())).await;
        metrics_stop.cancel();
        if let Ok(Err(error)) = tokio::time::timeout(Duration::from_secs(2), metrics_task).await {
            first_err.get_or_insert(StopError { name: "metrics", error });
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

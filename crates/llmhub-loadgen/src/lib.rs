//! `llmhub loadgen`: realistic GenAI traffic through the real OpenTelemetry SDK and OTLP exporter
//! (gRPC, HTTP protobuf or HTTP JSON). The traffic is planned by [`scenario`] (seeded, with
//! seasonality and injected incidents) and emitted here with the plan's timestamps and seeded ids,
//! so a fixed seed and start time give identical spans.

mod error;
mod progress;
mod rng;
pub mod scenario;

pub use error::LoadgenError;
pub use progress::Progress;
pub use rng::Rng;

use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, IdGenerator, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use scenario::{Incident, PlanDialect, PlanValue, Scenario, TracePlan};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// OTLP transport used by the exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC (tonic).
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies.
    HttpJson,
}

/// What to send, where, how fast.
#[derive(Debug, Clone)]
pub struct LoadgenConfig {
    /// OTLP endpoint: `http://host:4317` for gRPC, `http://host:4318` for HTTP.
    pub endpoint: String,
    /// Transport.
    pub transport: Transport,
    /// Seed.
    pub seed: u64,
    /// Average traces per second (before seasonality), live or simulated.
    pub rate: f64,
    /// Stop after this long (live mode).
    pub duration: Option<Duration>,
    /// Stop after this many traces.
    pub count: Option<u64>,
    /// Stop once this many spans were sent.
    pub spans: Option<u64>,
    /// Chat-model mix; empty means the default mix.
    pub models: Vec<scenario::ModelChoice>,
    /// Simulated window `[start, end)` in Unix nanoseconds: historical timestamps, sent as fast as
    /// the exporter takes them.
    pub backfill: Option<(u64, u64)>,
    /// Fixed start time for live mode (Unix nanoseconds), for reproducible spans; now by default.
    pub start: Option<u64>,
    /// Dialects to rotate through.
    pub dialects: Vec<PlanDialect>,
    /// Tenants.
    pub tenants: usize,
    /// Inject incidents.
    pub incidents: bool,
    /// Where to write the injected incidents (JSON lines).
    pub ground_truth: Option<PathBuf>,
    /// 0: the traffic the seed gives; N: the same traffic (same calls, tokens and timings) with
    /// other trace, span and response ids, so llmhub counts it again instead of deduplicating it.
    pub replay: u64,
}

/// Seeded span and trace ids, so a fixed seed gives identical spans.
#[derive(Debug, Clone)]
struct SeededIds(Arc<Mutex<Rng>>);

impl SeededIds {
    fn next(&self) -> u128 {
        let mut rng = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())
    }
}

impl IdGenerator for SeededIds {
    fn new_trace_id(&self) -> opentelemetry::trace::TraceId {
        opentelemetry::trace::TraceId::from(self.next().max(1))
    }
    fn new_span_id(&self) -> opentelemetry::trace::SpanId {
        opentelemetry::trace::SpanId::from((self.next() as u64).max(1))
    }
}

fn value(v: &PlanValue) -> Value {
    match v {
        PlanValue::Str(s) => Value::from(s.clone()),
        PlanValue::Int(i) => Value::I64(*i),
        PlanValue::Double(d) => Value::F64(*d),
        PlanValue::Bool(b) => Value::Bool(*b),
        PlanValue::Strings(l) => Value::Array(Array::String(l.iter().map(|s| StringValue::from(s.clone())).collect())),
    }
}

fn time(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

struct Providers {
    cfg: LoadgenConfig,
    ids: SeededIds,
    by_service: HashMap<(String, String), SdkTracerProvider>,
}

impl Providers {
    fn get(&mut self, service: &str, environment: &str) -> Result<&SdkTracerProvider, LoadgenError> {
        let key = (service.to_owned(), environment.to_owned());
        let slot = match self.by_service.entry(key) {
            Entry::Occupied(found) => return Ok(found.into_mut()),
            Entry::Vacant(slot) => slot,
        };
        let exporter = match self.cfg.transport {
            Transport::Grpc => {
                use opentelemetry_otlp::WithTonicConfig;
                SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(self.cfg.endpoint.clone())
                    .with_compression(opentelemetry_otlp::Compression::Gzip)
                    .build()?
            }
            Transport::HttpProtobuf | Transport::HttpJson => {
                let protocol = if self.cfg.transport == Transport::HttpJson {
                    Protocol::HttpJson
                } else {
                    Protocol::HttpBinary
                };
                let endpoint = format!("{}/v1/traces", self.cfg.endpoint.trim_end_matches('/'));
                // The blocking HTTP client must not be built on an async worker.
                std::thread::spawn(move || {
                    SpanExporter::builder()
                        .with_http()
                        .with_protocol(protocol)
                        .with_endpoint(endpoint)
                        .build()
                })
                .join()
                .map_err(|_| LoadgenError::ExporterPanicked)??
            }
        };
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(65_536)
            .with_max_export_batch_size(512)
            .with_scheduled_delay(Duration::from_millis(500))
            .build();
        let processor = BatchSpanProcessor::builder(exporter).with_batch_config(batch).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_id_generator(self.ids.clone())
            .with_resource(
                Resource::builder()
                    .with_service_name(service.to_owned())
                    .with_attribute(KeyValue::new("deployment.environment.name", environment.to_owned()))
                    .build(),
            )
            .build();
        Ok(slot.insert(provider))
    }

    fn emit(&mut self, plan: &TracePlan) -> Result<usize, LoadgenError> {
        let provider = self.get(&plan.service, &plan.environment)?;
        let tracer = provider.tracer("llmhub-loadgen");
        let mut contexts: Vec<Context> = Vec::with_capacity(plan.spans.len());
        let mut open = Vec::with_capacity(plan.spans.len());
        for sp in &plan.spans {
            let builder = tracer
                .span_builder(sp.name.clone())
                .with_kind(if sp.client {
                    SpanKind::Client
                } else {
                    SpanKind::Internal
                })
                .with_start_time(time(sp.start))
                .with_attributes(
                    sp.attributes
                        .iter()
                        .map(|(k, v)| KeyValue::new(k.clone(), value(v)))
                        .collect::<Vec<_>>(),
                );
            let span = match sp.parent.and_then(|p| contexts.get(p)) {
                Some(cx) => builder.start_with_context(&tracer, cx),
                None => builder.start_with_context(&tracer, &Context::new()),
            };
            contexts.push(Context::new().with_remote_span_context(span.span_context().clone()));
            open.push(span);
        }
        // End children before parents, each at its planned time.
        for (sp, mut span) in plan.spans.iter().zip(open).rev() {
            if let Some(msg) = &sp.error {
                span.set_status(Status::error(msg.clone()));
            }
            span.end_with_timestamp(time(sp.end));
        }
        Ok(plan.spans.len())
    }

    fn flush(&self) {
        for p in self.by_service.values() {
            if let Err(e) = p.force_flush() {
                tracing::warn!(error = %e, "flushing spans failed");
            }
        }
    }

    fn shutdown(self) {
        for p in self.by_service.into_values() {
            let _ = p.force_flush();
            let _ = p.shutdown();
        }
    }
}

/// Writes the incidents as JSON lines.
fn write_ground_truth(path: &PathBuf, incidents: &[Incident]) -> Result<(), LoadgenError> {
    let mut out = String::new();
    for i in incidents {
        let line = serde_json::json!({
            "kind": i.kind.as_str(),
            "service": i.service,
            "model": i.model,
            "start_unix_nano": i.start,
            "end_unix_nano": i.end,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    std::fs::write(path, out).map_err(|source| LoadgenError::GroundTruth {
        path: path.clone(),
        source,
    })
}

/// What a run sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Traces emitted.
    pub traces: u64,
    /// Spans emitted.
    pub spans: u64,
}

/// Runs the load generator until its count, duration or window is reached, or `stop` is
/// cancelled. Emission runs on a blocking thread (the SDK's batch processors have their own).
pub async fn run(
    cfg: LoadgenConfig,
    progress: Arc<Progress>,
    stop: CancellationToken,
) -> Result<Summary, LoadgenError> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _guard = handle.enter();
        run_blocking(cfg, &progress, &stop)
    })
    .await
    .map_err(|_| LoadgenError::ThreadPanicked)?
}

fn run_blocking(cfg: LoadgenConfig, progress: &Progress, stop: &CancellationToken) -> Result<Summary, LoadgenError> {
    let live_start = cfg.start.unwrap_or_else(now_nanos);
    let (start, length) = match cfg.backfill {
        Some((s, e)) => (s, e.saturating_sub(s)),
        None => {
            let len = cfg
                .duration
                .map(|d| d.as_nanos() as u64)
                .or_else(|| cfg.count.map(|c| (c as f64 / cfg.rate.max(1e-9) * 1e9) as u64))
                .unwrap_or(3600 * 1_000_000_000);
            (live_start, len)
        }
    };
    let scenario = Scenario {
        seed: cfg.seed,
        start,
        length,
        traces_per_second: cfg.rate,
        dialects: if cfg.dialects.is_empty() {
            vec![PlanDialect::Otel]
        } else {
            cfg.dialects.clone()
        },
        tenants: cfg.tenants,
        incidents: cfg.incidents,
        models: cfg.models.clone(),
        replay: cfg.replay,
    };
    if let Some(path) = &cfg.ground_truth {
        write_ground_truth(path, &scenario.incidents())?;
    }
    let mut providers = Providers {
        ids: SeededIds(Arc::new(Mutex::new(Rng::new(
            cfg.seed ^ 0x5eed ^ scenario::replay_salt(cfg.replay),
        )))),
        cfg,
        by_service: HashMap::new(),
    };
    let wall_start = std::time::Instant::now();
    let mut summary = Summary { traces: 0, spans: 0 };
    let mut since_flush = 0usize;
    let mut cut_short = false;
    for plan in scenario.traces() {
        if stop.is_cancelled() {
            cut_short = true;
            break;
        }
        if providers.cfg.count.is_some_and(|c| summary.traces >= c)
            || providers.cfg.spans.is_some_and(|c| summary.spans >= c)
        {
            cut_short = true;
            break;
        }
        let t = plan.spans[0].start;
        if t >= start + length && providers.cfg.count.is_none() && providers.cfg.spans.is_none() {
            break;
        }
        if providers.cfg.backfill.is_none() {
            // Live: wait until the trace's simulated start has come.
            let due = Duration::from_nanos(t.saturating_sub(start));
            let elapsed = wall_start.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        let n = providers.emit(&plan)?;
        summary.traces += 1;
        summary.spans += n as u64;
        progress.traces.fetch_add(1, Ordering::Relaxed);
        progress.spans.fetch_add(n as u64, Ordering::Relaxed);
        progress.reached.store(t, Ordering::Relaxed);
        since_flush += n;
        if since_flush >= 16_384 {
            // Keep the SDK queues from overflowing (they drop spans when full).
            providers.flush();
            since_flush = 0;
        }
    }
    let backfill = providers.cfg.backfill.is_some();
    providers.shutdown();
    if backfill && !cut_short {
        progress.reached.store(start + length, Ordering::Relaxed);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_loadgen_model_has_a_price() {
        let matcher = llmhub_pricing::Matcher::new(llmhub_pricing::embedded().unwrap(), None, Default::default());
        for (provider, model) in super::scenario::models() {
            assert!(
                matcher.find(Some(provider), model).is_some(),
                "{provider}/{model} has no price"
            );
        }
    }
}

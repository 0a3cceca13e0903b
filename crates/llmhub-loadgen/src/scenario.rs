//! Realistic GenAI traffic as data: a seeded, deterministic plan of traces (agents with tool calls
//! and nested model calls, standalone chat and embedding calls) over simulated time, with diurnal
//! and weekly seasonality and injected incidents recorded as ground truth. Pure: no I/O, no clock.

use crate::Rng;

/// Tenant names of the generated traffic, in order (`tenant-N` past the list): the names the docs'
/// and the provisioned data sources' examples use.
const TENANT_NAMES: &[&str] = &["acme", "globex", "initech", "umbrella", "hooli", "wonka"];

/// A value of a planned attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanValue {
    /// String.
    Str(String),
    /// Integer.
    Int(i64),
    /// Double.
    Double(f64),
    /// Boolean.
    Bool(bool),
    /// String array.
    Strings(Vec<String>),
}

/// One planned span.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSpan {
    /// Span name.
    pub name: String,
    /// Index of the parent within the trace, if any.
    pub parent: Option<usize>,
    /// Client (model calls) or internal (agents, tools).
    pub client: bool,
    /// Start, Unix nanoseconds.
    pub start: u64,
    /// End, Unix nanoseconds.
    pub end: u64,
    /// Attributes.
    pub attributes: Vec<(String, PlanValue)>,
    /// Error status message, when the call failed.
    pub error: Option<String>,
}

/// One planned trace: spans in creation order (parents before children).
#[derive(Debug, Clone, PartialEq)]
pub struct TracePlan {
    /// `service.name`.
    pub service: String,
    /// `deployment.environment.name`.
    pub environment: String,
    /// Spans.
    pub spans: Vec<PlannedSpan>,
}

/// Attribute dialect to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanDialect {
    /// OpenTelemetry GenAI v1.41.
    Otel,
    /// OpenInference.
    OpenInference,
    /// OpenLLMetry (current).
    OpenLlmetry,
    /// Vercel AI SDK.
    Vercel,
    /// OpenLIT (raw Anthropic input counts exclude the cache).
    OpenLit,
    /// Langfuse OpenTelemetry mode (disjoint usage details).
    Langfuse,
    /// pydantic-ai / Logfire.
    PydanticAi,
}

impl PlanDialect {
    /// Every dialect the generator emits.
    pub const ALL: [PlanDialect; 7] = [
        PlanDialect::Otel,
        PlanDialect::OpenInference,
        PlanDialect::OpenLlmetry,
        PlanDialect::Vercel,
        PlanDialect::OpenLit,
        PlanDialect::Langfuse,
        PlanDialect::PydanticAi,
    ];
}

/// RFC 3339 with milliseconds, UTC, as Langfuse writes timestamps.
pub(crate) fn rfc3339(nanos: u64) -> String {
    let day = llmhub_pricing::date::Date::from_unix_nanos(nanos);
    let in_day = nanos % (86_400 * NS);
    let (h, m, sec, ms) = (
        in_day / HOUR,
        in_day / (60 * NS) % 60,
        in_day / NS % 60,
        in_day / 1_000_000 % 1000,
    );
    format!("{day}T{h:02}:{m:02}:{sec:02}.{ms:03}Z")
}

/// Kinds of injected incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentKind {
    /// Output tokens ×10 for one service.
    CostSpike,
    /// Durations and TTFT ×4 for one model.
    LatencyRegression,
    /// Half of one service's calls rate-limited.
    ErrorBurst,
    /// One agent invocation loops through 40 tool calls and model calls.
    RunawayAgent,
}

impl IncidentKind {
    /// Stable name for the ground-truth file.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::CostSpike => "cost_spike",
            IncidentKind::LatencyRegression => "latency_regression",
            IncidentKind::ErrorBurst => "error_burst",
            IncidentKind::RunawayAgent => "runaway_agent_loop",
        }
    }
}

/// An injected incident: what, where, when.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Kind.
    pub kind: IncidentKind,
    /// Affected service.
    pub service: String,
    /// Affected model, when the incident is about one.
    pub model: Option<String>,
    /// Start, Unix nanoseconds.
    pub start: u64,
    /// End, Unix nanoseconds.
    pub end: u64,
}

/// Scenario settings.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Seed: the same seed and settings give the same traces.
    pub seed: u64,
    /// Simulated start, Unix nanoseconds.
    pub start: u64,
    /// Simulated length, nanoseconds (for incident placement and seasonality).
    pub length: u64,
    /// Average traces per simulated second before seasonality.
    pub traces_per_second: f64,
    /// Dialects to rotate through.
    pub dialects: Vec<PlanDialect>,
    /// Number of tenants.
    pub tenants: usize,
    /// Inject incidents.
    pub incidents: bool,
    /// Chat models to call, with weights; empty means [`default_models`].
    pub models: Vec<ModelChoice>,
    /// 0: the scenario's own response ids; N: the same traffic again with other response ids
    /// (the N-th replay; the emitter gives it other trace and span ids too), so llmhub counts it
    /// as new calls rather than duplicates.
    pub replay: u64,
}

/// One chat model of the traffic mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChoice {
    /// Provider (`gen_ai.provider.name`).
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Whether its responses carry reasoning tokens.
    pub reasoning: bool,
    /// Relative weight in the mix.
    pub weight: u32,
}

impl ModelChoice {
    /// Parses `provider/model[:weight]`, e.g. `openai/gpt-4o:3`.
    pub fn parse(s: &str) -> Result<ModelChoice, String> {
        let (spec, weight) = match s.rsplit_once(':') {
            Some((spec, w)) if w.bytes().all(|b| b.is_ascii_digit()) && !w.is_empty() => (
                spec,
                w.parse::<u32>().map_err(|_| format!("{s:?}: weight out of range"))?,
            ),
            _ => (s, 1),
        };
        let (provider, model) = spec
            .split_once('/')
            .filter(|(p, m)| !p.is_empty() && !m.is_empty())
            .ok_or_else(|| format!("{s:?}: expected provider/model[:weight], e.g. openai/gpt-4o:3"))?;
        if weight == 0 {
            return Err(format!("{s:?}: the weight must be at least 1"));
        }
        let reasoning = ["o1", "o3", "o4", "gpt-5", "deepseek-reasoner"]
            .iter()
            .any(|p| model.starts_with(p));
        Ok(ModelChoice {
            provider: provider.to_owned(),
            model: model.to_owned(),
            reasoning,
            weight,
        })
    }
}

/// The default mix: every entry priced by the shipped catalog, equal weights.
pub fn default_models() -> Vec<ModelChoice> {
    MODELS
        .iter()
        .map(|(p, m, r)| ModelChoice {
            provider: (*p).to_owned(),
            model: (*m).to_owned(),
            reasoning: *r,
            weight: 1,
        })
        .collect()
}

/// (provider, chat model, reports reasoning tokens).
const MODELS: &[(&str, &str, bool)] = &[
    ("openai", "gpt-4o", false),
    ("openai", "gpt-4o-mini", false),
    ("openai", "gpt-5-mini", true),
    ("openai", "o4-mini", true),
    ("anthropic", "claude-sonnet-4-5", false),
    ("anthropic", "claude-haiku-4-5", false),
    ("gcp.gemini", "gemini-2.5-flash", false),
    ("mistral_ai", "mistral-large-latest", false),
    ("deepseek", "deepseek-chat", false),
];

/// The models the load generator uses (all priced by the shipped catalog; a test checks it).
pub fn models() -> impl Iterator<Item = (&'static str, &'static str)> {
    MODELS
        .iter()
        .map(|(p, m, _)| (*p, *m))
        .chain(std::iter::once(("openai", "text-embedding-3-small")))
}

const SERVICES: &[&str] = &["checkout-assistant", "support-bot", "search-rag", "agent-runner"];
const ENVIRONMENTS: &[&str] = &["production", "production", "production", "staging"];
const TOOLS: &[&str] = &["search_docs", "get_order", "create_ticket", "web_search", "run_sql"];
const ERRORS: &[(&str, &str)] = &[
    ("_OTHER", "unexpected response from the gateway"),
    ("RateLimitError", "429 Too Many Requests: rate limit reached"),
    (
        "BadRequestError",
        "This model's maximum context length is 128000 tokens",
    ),
    ("APITimeoutError", "Request timed out"),
    ("AuthenticationError", "Incorrect API key provided"),
    (
        "InternalServerError",
        "The server had an error while processing your request",
    ),
    ("BadRequestError", "Invalid 'messages': empty content"),
    ("CancelledError", "client cancelled the request"),
    (
        "ContentFilterError",
        "The response was filtered due to the content_filter policy",
    ),
];

const NS: u64 = 1_000_000_000;
const HOUR: u64 = 3600 * NS;

/// What a replay's ids are XORed with: 0 for the original, a distinct odd multiple otherwise.
pub fn replay_salt(replay: u64) -> u64 {
    replay.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Seasonality multiplier at a time: a diurnal curve (low at 03:00 UTC, high at 15:00) and
/// quieter weekends. Averages about 1 over a week.
pub fn seasonality(t: u64) -> f64 {
    let hour = ((t / HOUR) % 24) as f64;
    let day = ((t / (24 * HOUR)) + 4) % 7; // 1970-01-01 was a Thursday; 0 = Sunday
    let diurnal = 1.0 + 0.6 * ((hour - 9.0) / 24.0 * std::f64::consts::TAU).sin();
    let weekly = if day == 0 || day == 6 { 0.55 } else { 1.18 };
    diurnal * weekly
}

impl Scenario {
    /// The incidents this scenario injects (empty when disabled).
    pub fn incidents(&self) -> Vec<Incident> {
        if !self.incidents {
            return Vec::new();
        }
        let at = |f: f64| self.start + (self.length as f64 * f) as u64;
        vec![
            Incident {
                kind: IncidentKind::CostSpike,
                service: "support-bot".into(),
                model: None,
                start: at(0.40),
                end: at(0.45),
            },
            Incident {
                kind: IncidentKind::LatencyRegression,
                service: "search-rag".into(),
                model: Some("claude-sonnet-4-5".into()),
                start: at(0.60),
                end: at(0.66),
            },
            Incident {
                kind: IncidentKind::ErrorBurst,
                service: "checkout-assistant".into(),
                model: None,
                start: at(0.75),
                end: at(0.78),
            },
            Incident {
                kind: IncidentKind::RunawayAgent,
                service: "agent-runner".into(),
                model: None,
                start: at(0.85),
                end: at(0.85) + 1,
            },
        ]
    }

    /// A generator of traces in simulated time order.
    pub fn traces(&self) -> Traces<'_> {
        Traces {
            s: self,
            rng: Rng::new(self.seed),
            now: self.start,
            n: 0,
            incidents: self.incidents(),
            runaway_done: false,
        }
    }
}

/// Iterator over planned traces with their simulated start time.
#[derive(Debug)]
pub struct Traces<'a> {
    s: &'a Scenario,
    rng: Rng,
    now: u64,
    n: u64,
    incidents: Vec<Incident>,
    runaway_done: bool,
}

impl Traces<'_> {
    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn active(&self, kind: IncidentKind, service: &str, t: u64) -> Option<&Incident> {
        self.incidents
            .iter()
            .find(|i| i.kind == kind && i.service == service && i.start <= t && t < i.end)
    }

    fn model_call(
        &mut self,
        service: &str,
        t: u64,
        parent: Option<usize>,
        dialect: PlanDialect,
        tenant: &str,
    ) -> PlannedSpan {
        let s = self.s;
        let fallback;
        let mix: &[ModelChoice] = if s.models.is_empty() {
            fallback = default_models();
            &fallback
        } else {
            &s.models
        };
        let total: u64 = mix.iter().map(|m| u64::from(m.weight)).sum();
        let mut pick = self.rng.below(total);
        let choice = mix
            .iter()
            .find(|m| {
                let hit = pick < u64::from(m.weight);
                pick = pick.saturating_sub(u64::from(m.weight));
                hit
            })
            .unwrap_or(&mix[0]);
        let (provider, model, reasoning_model) = (choice.provider.as_str(), choice.model.as_str(), choice.reasoning);
        let input = 300 + self.rng.below(6_000) as i64;
        let cached = if self.rng.below(3) == 0 {
            input * (3 + self.rng.below(5) as i64) / 10
        } else {
            0
        };
        let cache_write = if provider == "anthropic" && self.rng.below(5) == 0 {
            500 + self.rng.below(2_000) as i64
        } else {
            0
        };
        let mut output = 30 + self.rng.below(900) as i64;
        if self.active(IncidentKind::CostSpike, service, t).is_some() {
            output *= 10;
        }
        let reasoning = if reasoning_model { output / 2 } else { 0 };
        let stream = self.rng.below(3) != 0;
        let mut ttft = 0.15 + self.uniform() * 0.9;
        let mut duration = ttft + output as f64 * (0.006 + self.uniform() * 0.01);
        if self
            .active(IncidentKind::LatencyRegression, service, t)
            .is_some_and(|i| i.model.as_deref() == Some(model))
        {
            ttft *= 4.0;
            duration *= 4.0;
        }
        let error = if self.active(IncidentKind::ErrorBurst, service, t).is_some() && self.rng.below(2) == 0 {
            Some(ERRORS[1])
        } else if self.rng.below(50) == 0 {
            Some(ERRORS[self.rng.below(ERRORS.len() as u64) as usize])
        } else {
            None
        };
        let response_id = format!("resp-{:016x}", self.rng.next_u64() ^ replay_salt(s.replay));
        let end = t + (duration * 1e9) as u64;
        let mut a: Vec<(String, PlanValue)> = Vec::new();
        let mut put = |k: &str, v: PlanValue| a.push((k.to_owned(), v));
        put("tenant.id", PlanValue::Str(tenant.to_owned()));
        let usage = error.is_none();
        match dialect {
            PlanDialect::Otel => {
                put("gen_ai.operation.name", PlanValue::Str("chat".into()));
                // Conversations: a tenant's calls within the same ten simulated minutes (no draw
                // from the generator, so the rest of the plan is unchanged).
                put(
                    "gen_ai.conversation.id",
                    PlanValue::Str(format!("conv-{tenant}-{}", t / 600_000_000_000)),
                );
                put("gen_ai.provider.name", PlanValue::Str(provider.into()));
                put("gen_ai.request.model", PlanValue::Str(model.into()));
                put("gen_ai.request.stream", PlanValue::Bool(stream));
                if usage {
                    put("gen_ai.response.model", PlanValue::Str(model.into()));
                    put("gen_ai.response.id", PlanValue::Str(response_id));
                    put("gen_ai.usage.input_tokens", PlanValue::Int(input + cache_write));
                    put("gen_ai.usage.output_tokens", PlanValue::Int(output));
                    put("gen_ai.usage.cache_read.input_tokens", PlanValue::Int(cached));
                    put("gen_ai.usage.cache_creation.input_tokens", PlanValue::Int(cache_write));
                    put("gen_ai.usage.reasoning.output_tokens", PlanValue::Int(reasoning));
                    put(
                        "gen_ai.response.finish_reasons",
                        PlanValue::Strings(vec!["stop".into()]),
                    );
                    if stream {
                        put("gen_ai.response.time_to_first_chunk", PlanValue::Double(ttft));
                    }
                }
            }
            PlanDialect::OpenInference => {
                put("openinference.span.kind", PlanValue::Str("LLM".into()));
                put("llm.provider", PlanValue::Str(provider.into()));
                put("llm.model_name", PlanValue::Str(model.into()));
                put(
                    "llm.invocation_parameters",
                    PlanValue::Str(format!("{{\"stream\": {stream}}}")),
                );
                if usage {
                    put("llm.token_count.prompt", PlanValue::Int(input + cache_write));
                    put("llm.token_count.completion", PlanValue::Int(output));
                    put("llm.token_count.prompt_details.cache_read", PlanValue::Int(cached));
                    put(
                        "llm.token_count.prompt_details.cache_write",
                        PlanValue::Int(cache_write),
                    );
                    put(
                        "llm.token_count.completion_details.reasoning",
                        PlanValue::Int(reasoning),
                    );
                }
            }
            PlanDialect::OpenLlmetry => {
                put("gen_ai.system", PlanValue::Str(provider.into()));
                put("llm.request.type", PlanValue::Str("chat".into()));
                put("gen_ai.request.model", PlanValue::Str(model.into()));
                put("gen_ai.is_streaming", PlanValue::Bool(stream));
                if usage {
                    put("gen_ai.response.model", PlanValue::Str(model.into()));
                    put("gen_ai.usage.prompt_tokens", PlanValue::Int(input + cache_write));
                    put("gen_ai.usage.completion_tokens", PlanValue::Int(output));
                    put("gen_ai.usage.cache_read_input_tokens", PlanValue::Int(cached));
                    put("gen_ai.usage.cache_creation_input_tokens", PlanValue::Int(cache_write));
                    put("gen_ai.usage.reasoning_tokens", PlanValue::Int(reasoning));
                }
            }
            PlanDialect::OpenLit => {
                put("telemetry.sdk.name", PlanValue::Str("openlit".into()));
                put("gen_ai.operation.name", PlanValue::Str("chat".into()));
                put("gen_ai.system", PlanValue::Str(provider.into()));
                put("gen_ai.request.model", PlanValue::Str(model.into()));
                put("gen_ai.request.is_stream", PlanValue::Bool(stream));
                if usage {
                    // OpenLIT passes Anthropic's raw input count, which excludes cache reads and writes.
                    let input_count = if provider == "anthropic" {
                        input - cached
                    } else {
                        input + cache_write
                    };
                    put("gen_ai.response.model", PlanValue::Str(model.into()));
                    put("gen_ai.usage.input_tokens", PlanValue::Int(input_count));
                    put("gen_ai.usage.output_tokens", PlanValue::Int(output));
                    put("gen_ai.usage.cache_read.input_tokens", PlanValue::Int(cached));
                    put("gen_ai.usage.cache_creation.input_tokens", PlanValue::Int(cache_write));
                    put("gen_ai.usage.reasoning_tokens", PlanValue::Int(reasoning));
                    if stream {
                        put("gen_ai.server.time_to_first_token", PlanValue::Double(ttft));
                        let tpot = (duration - ttft) / (output.max(2) - 1) as f64;
                        put("gen_ai.server.time_per_output_token", PlanValue::Double(tpot));
                    }
                }
            }
            PlanDialect::Langfuse => {
                put("langfuse.observation.type", PlanValue::Str("generation".into()));
                put("langfuse.observation.model.name", PlanValue::Str(model.into()));
                if usage {
                    // Langfuse usage details are disjoint buckets.
                    let details = format!(
                        "{{\"input\": {}, \"input_cached_tokens\": {cached}, \"input_cache_creation\": {cache_write}, \"output\": {}, \"output_reasoning_tokens\": {reasoning}}}",
                        input - cached,
                        output - reasoning
                    );
                    put("langfuse.observation.usage_details", PlanValue::Str(details));
                    if stream {
                        put(
                            "langfuse.observation.completion_start_time",
                            PlanValue::Str(rfc3339(t + (ttft * 1e9) as u64)),
                        );
                    }
                }
            }
            PlanDialect::PydanticAi => {
                put("logfire.span_type", PlanValue::Str("span".into()));
                put("logfire.msg", PlanValue::Str(format!("chat {model}")));
                put("gen_ai.operation.name", PlanValue::Str("chat".into()));
                put("gen_ai.provider.name", PlanValue::Str(provider.into()));
                put("gen_ai.system", PlanValue::Str(provider.into()));
                put("gen_ai.request.model", PlanValue::Str(model.into()));
                if usage {
                    put("gen_ai.response.model", PlanValue::Str(model.into()));
                    put("gen_ai.usage.input_tokens", PlanValue::Int(input + cache_write));
                    put("gen_ai.usage.output_tokens", PlanValue::Int(output));
                    put("gen_ai.usage.details.cache_read_tokens", PlanValue::Int(cached));
                    put("gen_ai.usage.details.cache_write_tokens", PlanValue::Int(cache_write));
                    put("gen_ai.usage.details.reasoning_tokens", PlanValue::Int(reasoning));
                    if stream {
                        put("gen_ai.client.operation.time_to_first_chunk", PlanValue::Double(ttft));
                    }
                }
            }
            PlanDialect::Vercel => {
                put(
                    "ai.operationId",
                    PlanValue::Str(
                        if stream {
                            "ai.streamText.doStream"
                        } else {
                            "ai.generateText.doGenerate"
                        }
                        .into(),
                    ),
                );
                put("ai.model.id", PlanValue::Str(model.into()));
                put("ai.model.provider", PlanValue::Str(format!("{provider}.chat")));
                if usage {
                    put("ai.response.id", PlanValue::Str(response_id));
                    put("ai.usage.inputTokens", PlanValue::Int(input + cache_write));
                    put(
                        "ai.usage.inputTokenDetails.noCacheTokens",
                        PlanValue::Int(input - cached),
                    );
                    put("ai.usage.outputTokens", PlanValue::Int(output));
                    put("ai.usage.cachedInputTokens", PlanValue::Int(cached));
                    put(
                        "ai.usage.inputTokenDetails.cacheWriteTokens",
                        PlanValue::Int(cache_write),
                    );
                    put("ai.usage.reasoningTokens", PlanValue::Int(reasoning));
                    put("ai.response.finishReason", PlanValue::Str("stop".into()));
                    if stream {
                        put("ai.response.msToFirstChunk", PlanValue::Double(ttft * 1000.0));
                    }
                }
            }
        }
        let error = error.map(|(ty, msg)| {
            a.push(("error.type".into(), PlanValue::Str(ty.into())));
            msg.to_owned()
        });
        PlannedSpan {
            name: format!("chat {model}"),
            parent,
            client: true,
            start: t,
            end: end.max(t + 1),
            attributes: a,
            error,
        }
    }

    fn agent(&mut self, service: &str, t: u64, dialect: PlanDialect, tenant: &str, steps: usize) -> Vec<PlannedSpan> {
        let name = ["planner", "researcher", "support-agent"][self.rng.below(3) as usize];
        let mut spans = vec![PlannedSpan {
            name: format!("invoke_agent {name}"),
            parent: None,
            client: false,
            start: t,
            end: t,
            attributes: vec![
                ("gen_ai.operation.name".into(), PlanValue::Str("invoke_agent".into())),
                ("gen_ai.agent.name".into(), PlanValue::Str(name.into())),
                ("tenant.id".into(), PlanValue::Str(tenant.to_owned())),
            ],
            error: None,
        }];
        let mut cursor = t + 5_000_000;
        for step in 0..steps {
            let call = self.model_call(service, cursor, Some(0), dialect, tenant);
            cursor = call.end + 2_000_000;
            spans.push(call);
            if step + 1 < steps {
                let tool = TOOLS[self.rng.below(TOOLS.len() as u64) as usize];
                let len = (20 + self.rng.below(800)) * 1_000_000;
                spans.push(PlannedSpan {
                    name: format!("execute_tool {tool}"),
                    parent: Some(0),
                    client: false,
                    start: cursor,
                    end: cursor + len,
                    attributes: vec![
                        ("gen_ai.operation.name".into(), PlanValue::Str("execute_tool".into())),
                        ("gen_ai.tool.name".into(), PlanValue::Str(tool.into())),
                        (
                            "gen_ai.tool.call.id".into(),
                            PlanValue::Str(format!("call_{:08x}", self.rng.next_u64() as u32)),
                        ),
                    ],
                    error: None,
                });
                cursor += len + 2_000_000;
            }
        }
        spans[0].end = cursor + 5_000_000;
        spans
    }
}

impl Iterator for Traces<'_> {
    type Item = TracePlan;

    fn next(&mut self) -> Option<TracePlan> {
        // Exponential gaps at the seasonal rate.
        let rate = (self.s.traces_per_second * seasonality(self.now)).max(1e-9);
        let gap = -(1.0 - self.uniform()).ln() / rate;
        self.now += (gap * 1e9) as u64;
        let t = self.now;
        self.n += 1;
        let si = self.rng.below(SERVICES.len() as u64) as usize;
        let service = SERVICES[si];
        let dialect = self.s.dialects[(self.n as usize) % self.s.dialects.len().max(1)];
        let k = self.rng.below(self.s.tenants.max(1) as u64) as usize;
        let tenant = TENANT_NAMES
            .get(k)
            .map_or_else(|| format!("tenant-{}", k + 1), |n| (*n).to_owned());
        // The runaway loop starts with the incident service's first trace after the incident time.
        let runaway = !self.runaway_done
            && self
                .incidents
                .iter()
                .any(|i| i.kind == IncidentKind::RunawayAgent && t >= i.start && service == i.service);
        let spans = if runaway {
            self.runaway_done = true;
            self.agent(service, t, dialect, &tenant, 40)
        } else {
            match self.rng.below(10) {
                0..=2 => {
                    let steps = 2 + self.rng.below(3) as usize;
                    self.agent(service, t, dialect, &tenant, steps)
                }
                3 => {
                    let input = 16 + self.rng.below(2_000) as i64;
                    vec![PlannedSpan {
                        name: "embeddings text-embedding-3-small".into(),
                        parent: None,
                        client: true,
                        start: t,
                        end: t + (30 + self.rng.below(200)) * 1_000_000,
                        attributes: vec![
                            ("gen_ai.operation.name".into(), PlanValue::Str("embeddings".into())),
                            ("gen_ai.provider.name".into(), PlanValue::Str("openai".into())),
                            (
                                "gen_ai.request.model".into(),
                                PlanValue::Str("text-embedding-3-small".into()),
                            ),
                            ("gen_ai.usage.input_tokens".into(), PlanValue::Int(input)),
                            ("tenant.id".into(), PlanValue::Str(tenant.clone())),
                        ],
                        error: None,
                    }]
                }
                _ => vec![self.model_call(service, t, None, dialect, &tenant)],
            }
        };
        Some(TracePlan {
            service: service.to_owned(),
            environment: ENVIRONMENTS[si].to_owned(),
            spans,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario {
            replay: 0,
            seed: 7,
            start: 1_763_600_000 * NS,
            length: 3600 * NS,
            traces_per_second: 5.0,
            dialects: PlanDialect::ALL.to_vec(),
            tenants: 3,
            incidents: true,
            models: Vec::new(),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_traces() {
        let s = scenario();
        let a: Vec<_> = s.traces().take(500).collect();
        let b: Vec<_> = s.traces().take(500).collect();
        assert_eq!(a, b);
        let other = Scenario { seed: 8, ..scenario() };
        assert_ne!(a, other.traces().take(500).collect::<Vec<_>>());
    }

    #[test]
    fn children_lie_inside_their_agents_and_incidents_show() {
        let s = scenario();
        let traces: Vec<_> = s
            .traces()
            .take_while(|t| t.spans[0].start < s.start + s.length)
            .collect();
        assert!(traces.len() > 10_000, "{}", traces.len());
        let mut runaway = 0;
        for t in &traces {
            for sp in &t.spans {
                assert!(sp.end > sp.start);
                if let Some(p) = sp.parent {
                    assert!(t.spans[p].start <= sp.start && sp.end <= t.spans[p].end);
                }
            }
            if t.spans.len() > 40 {
                runaway += 1;
            }
        }
        assert_eq!(runaway, 1, "exactly one runaway agent loop");
        let spike = &s.incidents()[0];
        let out = |inside: bool| {
            let (mut sum, mut n) = (0i64, 0i64);
            for t in traces.iter().filter(|t| t.service == spike.service) {
                for sp in &t.spans {
                    if (spike.start <= sp.start && sp.start < spike.end) != inside {
                        continue;
                    }
                    for (k, v) in &sp.attributes {
                        if let (true, PlanValue::Int(x)) = (k == "gen_ai.usage.output_tokens", v) {
                            sum += x;
                            n += 1;
                        }
                    }
                }
            }
            sum as f64 / n.max(1) as f64
        };
        assert!(
            out(true) > 5.0 * out(false),
            "cost spike visible: {} vs {}",
            out(true),
            out(false)
        );
    }

    #[test]
    fn a_replay_is_the_same_traffic_with_other_response_ids() {
        let original: Vec<TracePlan> = scenario().traces().take(300).collect();
        let replay: Vec<TracePlan> = Scenario {
            replay: 1,
            ..scenario()
        }
        .traces()
        .take(300)
        .collect();
        let without_ids = |plans: &[TracePlan]| -> (Vec<TracePlan>, Vec<String>) {
            let mut ids = Vec::new();
            let mut plans = plans.to_vec();
            for p in &mut plans {
                for sp in &mut p.spans {
                    for (k, v) in &mut sp.attributes {
                        if let (true, PlanValue::Str(id)) = (k.ends_with("response.id"), &mut *v) {
                            ids.push(std::mem::take(id));
                        }
                    }
                }
            }
            (plans, ids)
        };
        let ((a, a_ids), (b, b_ids)) = (without_ids(&original), without_ids(&replay));
        assert_eq!(a, b, "the same calls, tokens, timings and attributes");
        assert!(a_ids.len() > 100);
        assert_eq!(a_ids.len(), b_ids.len());
        assert!(
            a_ids.iter().zip(&b_ids).all(|(x, y)| x != y),
            "every response id differs"
        );
        assert!(a_ids.iter().all(|x| !b_ids.contains(x)));
    }

    #[test]
    fn the_model_mix_is_configurable_and_weighted() {
        let mix = vec![
            ModelChoice::parse("openai/gpt-4o:3").unwrap(),
            ModelChoice::parse("acme/private-model").unwrap(),
        ];
        assert_eq!((mix[0].weight, mix[1].weight), (3, 1));
        assert!(ModelChoice::parse("gpt-4o").is_err() && ModelChoice::parse("openai/gpt-4o:0").is_err());
        let s = Scenario {
            models: mix,
            ..scenario()
        };
        let (mut gpt, mut private) = (0, 0);
        for t in s.traces().take(3_000) {
            for sp in &t.spans {
                match sp.name.as_str() {
                    "chat gpt-4o" => gpt += 1,
                    "chat private-model" => private += 1,
                    "embeddings text-embedding-3-small" => {}
                    other if other.starts_with("chat ") => panic!("{other} is not in the mix"),
                    _ => {}
                }
            }
        }
        let ratio = gpt as f64 / private as f64;
        assert!((2.5..3.5).contains(&ratio), "weights 3:1 gave {gpt}:{private}");
    }

    #[test]
    fn langfuse_timestamps_are_rfc3339() {
        let t = 1_763_600_000 * NS + 123_456_789;
        assert_eq!(rfc3339(t), "2025-11-20T00:53:20.123Z");
        assert_eq!(
            llmhub_core::timefmt::rfc3339_to_unix_nanos(&rfc3339(t)),
            Some(t - 456_789)
        );
    }

    #[test]
    fn seasonality_peaks_on_weekday_afternoons() {
        let monday_3am = 1_763_942_400 * NS + 3 * HOUR; // 2025-11-24 03:00 UTC, a Monday
        let monday_3pm = monday_3am + 12 * HOUR;
        let sunday_3pm = monday_3pm - 24 * HOUR;
        assert!(seasonality(monday_3pm) > 2.0 * seasonality(monday_3am));
        assert!(seasonality(monday_3pm) > 1.5 * seasonality(sunday_3pm));
    }
}

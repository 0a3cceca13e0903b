//! OTLP request builders shared by tests and benchmarks: one place that knows what realistic GenAI
//! spans look like; `llmhub serve` child processes for tests; and a
//! PostgreSQL wire-protocol proxy for fault injection ([`pgproxy`]).

pub mod pgproxy;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span};

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// A string attribute.
pub fn s(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}

/// An integer attribute.
pub fn i(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}

/// A double attribute.
pub fn d(key: &str, v: f64) -> KeyValue {
    kv(key, any_value::Value::DoubleValue(v))
}

/// A boolean attribute.
pub fn b(key: &str, v: bool) -> KeyValue {
    kv(key, any_value::Value::BoolValue(v))
}

/// A string-array attribute.
pub fn strings(key: &str, v: &[&str]) -> KeyValue {
    let values = v
        .iter()
        .map(|x| AnyValue {
            value: Some(any_value::Value::StringValue((*x).into())),
        })
        .collect();
    kv(key, any_value::Value::ArrayValue(ArrayValue { values }))
}

/// Base start time of generated spans: 2025-11-20T01:33:20Z.
pub const BASE_UNIX_NANO: u64 = 1_763_600_000_000_000_000;

/// A span with ids derived from `n`, starting `n` ms after [`BASE_UNIX_NANO`], lasting `ms`.
pub fn span(n: u64, name: &str, ms: u64, attributes: Vec<KeyValue>) -> Span {
    let mut trace_id = vec![0xab; 16];
    trace_id[8..].copy_from_slice(&n.to_be_bytes());
    let mut span_id = n.to_be_bytes().to_vec();
    span_id[0] = 0x5a;
    let start = BASE_UNIX_NANO + n * 1_000_000;
    Span {
        trace_id,
        span_id,
        name: name.into(),
        kind: 3,
        start_time_unix_nano: start,
        end_time_unix_nano: start + ms * 1_000_000,
        attributes,
        ..Default::default()
    }
}

/// A minimal OpenTelemetry chat span for `model` with the given input and output tokens (500 ms).
pub fn chat(n: u64, model: &str, input: i64, output: i64) -> Span {
    span(
        n,
        &format!("chat {model}"),
        500,
        vec![
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.provider.name", "openai"),
            s("gen_ai.request.model", model),
            i("gen_ai.usage.input_tokens", input),
            i("gen_ai.usage.output_tokens", output),
        ],
    )
}

/// A request holding `spans` under one resource with `service.name = service`.
pub fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![s("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "test".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

pub use llmhub_loadgen::Rng;

const MODELS: &[(&str, &str)] = &[
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-5-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("gcp.vertex_ai", "gemini-2.5-flash"),
    ("aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ("mistral_ai", "mistral-large-latest"),
];

/// One realistic model-call span in one of the dialects (chosen by `n`), with the attributes the
/// real instrumentation sets: about 15–25 attributes, ids, usage with cache and reasoning tokens,
/// finish reasons, and sometimes a prompt content attribute of a few hundred bytes.
pub fn realistic_span(n: u64, rng: &mut Rng) -> Span {
    let (provider, model) = MODELS[rng.below(MODELS.len() as u64) as usize];
    let input = 200 + rng.below(8000) as i64;
    let cached = if rng.below(3) == 0 { input / 2 } else { 0 };
    let output = 20 + rng.below(1500) as i64;
    let reasoning = if model.starts_with("gpt-5") { output / 3 } else { 0 };
    let ms = 300 + rng.below(6000);
    let stream = rng.below(2) == 0;
    let response_id = format!("chatcmpl-{:016x}", rng.next_u64());
    let mut attrs = match n % 4 {
        // OpenTelemetry GenAI v1.41
        0 => vec![
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.provider.name", provider),
            s("gen_ai.request.model", model),
            s("gen_ai.response.model", model),
            s("gen_ai.response.id", &response_id),
            i("gen_ai.usage.input_tokens", input),
            i("gen_ai.usage.output_tokens", output),
            i("gen_ai.usage.cache_read.input_tokens", cached),
            i("gen_ai.usage.reasoning.output_tokens", reasoning),
            b("gen_ai.request.stream", stream),
            d(
                "gen_ai.response.time_to_first_chunk",
                0.2 + (rng.below(800) as f64) / 1000.0,
            ),
            strings("gen_ai.response.finish_reasons", &["stop"]),
            d("gen_ai.request.temperature", 0.7),
            i("gen_ai.request.max_tokens", 4096),
            s("server.address", "api.openai.com"),
            i("server.port", 443),
            s("gen_ai.conversation.id", "conv_5d1e8a3f9b2c4e07"),
        ],
        // OpenInference
        1 => vec![
            s("openinference.span.kind", "LLM"),
            s("llm.model_name", model),
            s("llm.provider", provider),
            s("llm.system", provider),
            i("llm.token_count.prompt", input),
            i("llm.token_count.completion", output),
            i("llm.token_count.total", input + output),
            i("llm.token_count.prompt_details.cache_read", cached),
            s(
                "llm.invocation_parameters",
                r#"{"temperature": 0.2, "stream": true, "max_tokens": 2048}"#,
            ),
            s("input.mime_type", "application/json"),
            s(
                "input.value",
                &"{\"messages\":[{\"role\":\"user\",\"content\":\"Summarize the ticket\"}]}".repeat(4),
            ),
            s("llm.input_messages.0.message.role", "user"),
            s(
                "llm.input_messages.0.message.content",
                "Summarize the following support ticket in two sentences.",
            ),
            s("llm.output_messages.0.message.role", "assistant"),
            s("session.id", "sess_2b7e9c41"),
        ],
        // OpenLLMetry
        2 => vec![
            s("gen_ai.system", provider),
            s("llm.request.type", "chat"),
            s("gen_ai.request.model", model),
            s("gen_ai.response.model", model),
            i("gen_ai.usage.prompt_tokens", input),
            i("gen_ai.usage.completion_tokens", output),
            i("llm.usage.total_tokens", input + output),
            i("gen_ai.usage.cache_read_input_tokens", cached),
            b("llm.is_streaming", stream),
            s("gen_ai.prompt.0.role", "user"),
            s(
                "gen_ai.prompt.0.content",
                "Write a short answer about the refund policy for orders older than 30 days.",
            ),
            s("gen_ai.completion.0.role", "assistant"),
            s("gen_ai.completion.0.finish_reason", "stop"),
            s("traceloop.workflow.name", "support_digest"),
        ],
        // Vercel AI SDK doStream
        _ => vec![
            s("ai.operationId", "ai.streamText.doStream"),
            s("operation.name", "ai.streamText.doStream chat-assistant"),
            s("ai.model.id", model),
            s("ai.model.provider", &format!("{provider}.chat")),
            s("gen_ai.system", &format!("{provider}.chat")),
            s("gen_ai.request.model", model),
            i("ai.usage.inputTokens", input),
            i("ai.usage.outputTokens", output),
            i("ai.usage.cachedInputTokens", cached),
            i("gen_ai.usage.input_tokens", input),
            i("gen_ai.usage.output_tokens", output),
            d("ai.response.msToFirstChunk", 180.0 + rng.below(900) as f64),
            s("ai.response.finishReason", "stop"),
            s("ai.response.id", &response_id),
            s("ai.telemetry.functionId", "chat-assistant"),
        ],
    };
    attrs.push(s("tenant.id", ["acme", "globex", "initech"][rng.below(3) as usize]));
    let mut sp = span(n, &format!("chat {model}"), ms, attrs);
    if n % 2 == 1 {
        sp.parent_span_id = (n + 1).to_be_bytes().to_vec();
    }
    sp.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
        code: 1,
        message: String::new(),
    });
    if rng.below(20) == 0 {
        sp.events.push(span::Event {
            time_unix_nano: sp.start_time_unix_nano + 100_000_000,
            name: "exception".into(),
            attributes: vec![
                s("exception.type", "openai.RateLimitError"),
                s("exception.message", "Rate limit reached"),
            ],
            dropped_attributes_count: 0,
        });
        sp.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
            code: 2,
            message: "rate limited".into(),
        });
    }
    sp
}

/// A request of `spans` realistic spans, split over a few services and scopes as an SDK batch
/// from a small fleet would be. Deterministic for a seed.
pub fn realistic_request(spans: usize, seed: u64) -> ExportTraceServiceRequest {
    let mut rng = Rng::new(seed);
    let services = ["checkout-assistant", "support-bot", "search-rag", "agent-runner"];
    let mut resource_spans = Vec::new();
    let per = spans.div_ceil(services.len());
    let mut n = seed.wrapping_mul(1_000_003) % 1_000_000_000;
    for (k, service) in services.iter().enumerate() {
        let count = per.min(spans.saturating_sub(k * per));
        if count == 0 {
            break;
        }
        let list = (0..count)
            .map(|_| {
                n += 1;
                realistic_span(n, &mut rng)
            })
            .collect();
        resource_spans.push(ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    s("service.name", service),
                    s("deployment.environment.name", "production"),
                    s("telemetry.sdk.language", "python"),
                    s("telemetry.sdk.name", "opentelemetry"),
                    s("telemetry.sdk.version", "1.38.0"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "opentelemetry.instrumentation.openai_v2".into(),
                    version: "2.1b0".into(),
                    ..Default::default()
                }),
                spans: list,
                schema_url: "https://opentelemetry.io/schemas/1.37.0".into(),
            }],
            schema_url: String::new(),
        });
    }
    ExportTraceServiceRequest { resource_spans }
}

/// Where the trace ids and times of an encoded request's spans sit, so a benchmark can send the
/// same bytes again as new spans: [`Restamp::round`] gives a copy of the request with every trace
/// id changed and every span and event time moved an hour per round. Size and shape stay the same;
/// deduplication (same span id, or same response id or usage overlapping in time) takes none of
/// them for a copy of an earlier round, as it would not in production.
#[derive(Debug, Clone)]
pub struct Restamp {
    original: Vec<u8>,
    /// Protobuf: where each 16-byte trace id starts. OTLP/JSON: where the last 16 of its 32 hex
    /// digits start. Either way a round is XORed into the id's last 8 bytes, read big-endian.
    trace_ids: Vec<usize>,
    /// Protobuf: where each fixed64 time starts. OTLP/JSON: where each decimal time string's
    /// digits start, and how many there are.
    times: Vec<(usize, usize)>,
    json: bool,
}

/// One protobuf field of a well-formed message: (number, wire type, start and end of its payload).
fn pb_fields(buf: &[u8], base: usize) -> Vec<(u64, u64, usize, usize)> {
    fn varint(buf: &[u8], pos: &mut usize) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = buf[*pos];
            *pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
        }
        v
    }
    let (mut pos, mut out) = (0, Vec::new());
    while pos < buf.len() {
        let key = varint(buf, &mut pos);
        let start = match key & 7 {
            0 => {
                varint(buf, &mut pos);
                pos
            }
            2 => {
                let len = varint(buf, &mut pos) as usize;
                pos += len;
                pos - len
            }
            1 => {
                pos += 8;
                pos - 8
            }
            5 => {
                pos += 4;
                pos - 4
            }
            w => panic!("wire type {w} in a testkit request"),
        };
        out.push((key >> 3, key & 7, base + start, base + pos));
    }
    out
}

impl Restamp {
    /// Indexes `encoded`, an `ExportTraceServiceRequest` (panics on malformed input: for requests
    /// this kit built).
    pub fn new(encoded: &[u8]) -> Self {
        let (mut trace_ids, mut times) = (Vec::new(), Vec::new());
        let sub = |(_, _, s, e): (u64, u64, usize, usize)| pb_fields(&encoded[s..e], s);
        for rs in pb_fields(encoded, 0).into_iter().filter(|f| f.0 == 1) {
            for ss in sub(rs).into_iter().filter(|f| f.0 == 2) {
                for sp in sub(ss).into_iter().filter(|f| f.0 == 2) {
                    for (n, wire, s, e) in sub(sp) {
                        match (n, wire) {
                            (1, 2) if e - s == 16 => trace_ids.push(s),
                            (7 | 8, 1) => times.push((s, 8)),
                            (11, 2) => times.extend(
                                sub((n, wire, s, e))
                                    .into_iter()
                                    .filter(|f| f.0 == 1 && f.1 == 1)
                                    .map(|f| (f.2, 8)),
                            ),
                            _ => {}
                        }
                    }
                }
            }
        }
        Restamp {
            original: encoded.to_vec(),
            trace_ids,
            times,
            json: false,
        }
    }

    /// Indexes `encoded`, an `ExportTraceServiceRequest` in OTLP/JSON as `serde_json` writes it
    /// (every `traceId`, and every `timeUnixNano`, `startTimeUnixNano` and `endTimeUnixNano` string).
    pub fn json(encoded: &[u8]) -> Self {
        let find_all = |needle: &[u8]| {
            (0..encoded.len())
                .filter(|&i| encoded[i] == needle[0] && encoded[i..].starts_with(needle))
                .map(|i| i + needle.len())
                .collect::<Vec<_>>()
        };
        let trace_ids = find_all(b"\"traceId\":\"").into_iter().map(|at| at + 16).collect();
        let times = find_all(b"imeUnixNano\":\"")
            .into_iter()
            .map(|at| (at, encoded[at..].iter().take_while(|b| b.is_ascii_digit()).count()))
            .collect();
        Restamp {
            original: encoded.to_vec(),
            trace_ids,
            times,
            json: true,
        }
    }

    /// Spans whose trace id this changes.
    pub fn spans(&self) -> usize {
        self.trace_ids.len()
    }

    /// The request as it is sent in `round` (round 0 is the original bytes).
    pub fn round(&self, round: u64) -> Vec<u8> {
        const HOUR: u64 = 3_600_000_000_000;
        let mut buf = self.original.clone();
        for &at in &self.trace_ids {
            if self.json {
                let hex = std::str::from_utf8(&buf[at..at + 16]).expect("hex");
                let v = u64::from_str_radix(hex, 16).expect("hex trace id") ^ round;
                buf[at..at + 16].copy_from_slice(format!("{v:016x}").as_bytes());
            } else {
                let id = &mut buf[at + 8..at + 16];
                let v = u64::from_be_bytes(id.try_into().expect("8 bytes")) ^ round;
                id.copy_from_slice(&v.to_be_bytes());
            }
        }
        for &(at, len) in &self.times {
            if self.json {
                let digits = std::str::from_utf8(&buf[at..at + len]).expect("digits");
                let v = digits.parse::<u64>().expect("decimal time") + round * HOUR;
                let text = format!("{v:0len$}");
                assert_eq!(text.len(), len, "a restamped time keeps its width");
                buf[at..at + len].copy_from_slice(text.as_bytes());
            } else {
                let t = &mut buf[at..at + 8];
                let v = u64::from_le_bytes(t.try_into().expect("8 bytes")) + round * HOUR;
                t.copy_from_slice(&v.to_le_bytes());
            }
        }
        buf
    }
}

pub use llmhub_exporters::forward::grpc_codec::RawGrpcCodec;

/// A numeric setting of a benchmark from the environment, or `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `serve` flags that bind every listener to a free loopback port (the ports are logged).
pub const LOOPBACK_EPHEMERAL: [&str; 8] = [
    "--bind",
    "127.0.0.1",
    "--grpc-port",
    "0",
    "--http-port",
    "0",
    "--metrics-port",
    "0",
];

/// A `llmhub serve` child process started by [`spawn_serve`], with the addresses it logged.
///
/// Its standard error is written to a log file as it comes. Dropped, the process is killed
/// (SIGKILL) if it still runs, and when the drop happens during a panic (a failing test) the log's
/// last lines are printed with its path.
#[derive(Debug)]
pub struct ServeProcess {
    child: std::process::Child,
    /// OTLP/gRPC address.
    pub grpc: String,
    /// OTLP/HTTP address.
    pub http: String,
    /// Metrics address.
    pub metrics: String,
    log: std::path::PathBuf,
}

impl ServeProcess {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where its standard error goes.
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// Its standard error so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, then reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (through `kill(1)`: the workspace has no `unsafe`).
    pub fn terminate(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits up to `timeout` for it to exit; `None` if it still runs.
    pub fn wait_timeout(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= until {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!(
                "--- llmhub serve (pid {}) standard error, last {} lines of {} ---\n{}\n--- end of {} ---",
                self.child.id(),
                tail.len(),
                self.log.display(),
                tail.join("\n"),
                self.log.display()
            );
        }
    }
}

/// Starts `exe serve ARGS` (under `taskset -c CORE` when `pin` is given), waits for its `ready`
/// log line and returns the addresses it listens on; its standard error goes to a log file in the
/// system's temporary directory. Returns `None` when the process exits before it is ready (a
/// busy port, a bad flag).
pub fn spawn_serve(exe: &str, args: &[&str], pin: Option<u32>) -> Option<ServeProcess> {
    spawn_serve_with_env(exe, args, pin, &[])
}

/// [`spawn_serve`] with extra environment variables for the child.
pub fn spawn_serve_with_env(
    exe: &str,
    args: &[&str],
    pin: Option<u32>,
    env: &[(&str, String)],
) -> Option<ServeProcess> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let log = std::env::temp_dir().join(format!("llmhub-serve-{}-{n}.log", std::process::id()));
    spawn_serve_logged(exe, args, pin, env, &log)
}

/// [`spawn_serve_with_env`] with its standard error written to `log` (a test keeps it in its
/// own directory).
pub fn spawn_serve_logged(
    exe: &str,
    args: &[&str],
    pin: Option<u32>,
    env: &[(&str, String)],
    log: &std::path::Path,
) -> Option<ServeProcess> {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let mut cmd = match pin {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &core.to_string(), exe]);
            c
        }
        None => Command::new(exe),
    };
    let mut file = std::fs::File::create(log).ok()?;
    let mut child = cmd
        .arg("serve")
        .args(args)
        .env("LLMHUB_LOG", "info")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let mut lines = BufReader::new(child.stderr.take()?).lines();
    let (mut grpc, mut http, mut metrics) = (String::new(), String::new(), String::new());
    let mut ready = false;
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        let _ = writeln!(file, "{line}");
        let (message, addr) = log_event(&line);
        if message.ends_with("ready") {
            ready = true;
            break;
        }
        if let Some(addr) = addr {
            if message.contains("OTLP/gRPC") {
                grpc = addr;
            } else if message.contains("OTLP/HTTP") {
                http = addr;
            } else if message.contains("metrics endpoint") {
                metrics = addr;
            }
        }
    }
    let process = ServeProcess {
        child,
        grpc,
        http,
        metrics,
        log: log.to_owned(),
    };
    if !ready {
        return None;
    }
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = writeln!(file, "{line}");
        }
    });
    Some(process)
}

/// A `serve` log line's message and `addr` field, in either log format: text (`... message
/// addr=HOST:PORT ...`) or JSON (`{"fields":{"message":..,"addr":..}}`).
fn log_event(line: &str) -> (String, Option<String>) {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        let field = |k: &str| v["fields"][k].as_str().map(str::to_owned);
        return (field("message").unwrap_or_default(), field("addr"));
    }
    let addr = line
        .find("addr=")
        .map(|pos| line[pos + 5..].split_whitespace().next().unwrap_or_default().to_owned());
    (line.to_owned(), addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_log_lines_are_read_in_both_formats() {
        let text = "2026-12-07T20:17:24Z  INFO OTLP/HTTP receiver listening addr=127.0.0.1:36307 tls=off";
        assert_eq!(log_event(text), (text.to_owned(), Some("127.0.0.1:36307".to_owned())));
        let json = r#"{"timestamp":"2026-12-07T20:17:24Z","level":"INFO","fields":{"message":"OTLP/HTTP receiver listening","addr":"127.0.0.1:36307","tls":"off"}}"#;
        assert_eq!(
            log_event(json),
            (
                "OTLP/HTTP receiver listening".to_owned(),
                Some("127.0.0.1:36307".to_owned())
            )
        );
        let ready = r#"{"timestamp":"t","level":"INFO","fields":{"message":"ready"}}"#;
        assert_eq!(log_event(ready), ("ready".to_owned(), None));
    }
}

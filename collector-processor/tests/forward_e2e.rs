//! Span forwarding end to end: llmhub forwards every request to a downstream OTLP endpoint, each
//! span unchanged except for added `llmhub.*` attributes and its conversation content: removed by
//! default, redacted when captured.
//!
//! - Field-level: downstream endpoints in this test (OTLP/gRPC and OTLP/HTTP servers that keep what
//!   they receive) compare every forwarded span with the one sent.
//! - Pipeline: a second, real llmhub is the downstream; it is down when the traffic starts, the
//!   first one keeps the requests in its disk queue, and once the second starts it receives every
//!   span and computes the same totals.

mod common;

use common::capture::{downstream, spans_by_id, REFUSE};
use common::{fixture_requests, loopback_config, post_otlp, scrape, start, sum};
use llmhub::config::Config;
use llmhub_exporters::forward::ForwardConfig;
use llmhub_exporters::otlp_metrics::OtlpProtocol;
use llmhub_exporters::queue::QueueConfig;
use llmhub_testkit::realistic_request;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use std::path::Path;
use std::time::Duration;

fn forwarding(endpoint: String, protocol: OtlpProtocol, dir: &Path) -> Config {
    let mut c = loopback_config();
    c.exporters.otlp = Some(ForwardConfig {
        endpoint,
        protocol,
        retry_initial_ms: 50,
        retry_max_ms: 500,
        queue: QueueConfig {
            directory: Some(dir.to_owned()),
            ..QueueConfig::default()
        },
        ..ForwardConfig::default()
    });
    c.service.pipelines.traces.exporters = vec!["prometheus".into(), "otlp".into()];
    c
}

fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("llmhub-fwd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

async fn spans_arrive_unchanged_but_enriched(protocol: OtlpProtocol) {
    let (endpoint, captured) = downstream(protocol).await;
    let dir = tmpdir(&format!("{protocol:?}"));
    let running = start(&forwarding(endpoint, protocol, &dir)).await;
    let http = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    let mut sent = Vec::new();
    // The dialect fixtures as OTLP/JSON, realistic batches as protobuf.
    for (path, body) in fixture_requests() {
        assert_eq!(post_otlp(&http, "application/json", body.clone()).await, 200, "{path}");
        sent.push(llmhub::receivers::otlp::json::decode_traces(&body).expect("decodes"));
    }
    for k in 0..5 {
        let req = realistic_request(100, 61_000 + k);
        assert_eq!(
            post_otlp(&http, "application/x-protobuf", req.encode_to_vec()).await,
            200
        );
        sent.push(req);
    }
    // One request the endpoint refuses for good.
    let mut poison = realistic_request(3, 999);
    poison.resource_spans[0].scope_spans[0].spans[0].name = REFUSE.into();
    let poison_content = spans_by_id(std::slice::from_ref(&poison))
        .values()
        .flat_map(|s| &s.attributes)
        .filter(|a| content(&a.key))
        .count();
    assert_eq!(
        post_otlp(&http, "application/x-protobuf", poison.encode_to_vec()).await,
        200,
        "llmhub accepts it; the downstream refuses it"
    );

    let until = std::time::Instant::now() + Duration::from_secs(20);
    while captured.lock().expect("lock").len() < sent.len() && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = scrape(running.metrics_addr).await;
    running.stop().await.expect("stop");
    let got = captured.lock().expect("lock").clone();
    assert_eq!(got.len(), sent.len(), "every request forwarded once");
    assert_eq!(
        sum(
            &m,
            "llmhub_forward_requests_total",
            &[("llmhub_outcome", "dead_letter")]
        ),
        1.0
    );
    let dead = std::fs::read_to_string(dir.join("otlp-dead-letters.jsonl")).expect("dead letters");
    assert_eq!(dead.lines().count(), 1);
    // Each protocol's refusal, as the downstream gave it: a gRPC status message, an HTTP status.
    let refusal = match protocol {
        OtlpProtocol::Grpc => "refuses refuse-me",
        OtlpProtocol::HttpProtobuf => "HTTP 400",
    };
    assert!(dead.contains(refusal), "{protocol:?}: {dead}");

    // Span by span: the original attributes but content, in order, then only llmhub.* ones;
    // content events gone; every other field equal.
    let want = common::pg::records_by_id(&sent);
    let sent_spans = spans_by_id(&sent);
    let got_spans = spans_by_id(&got);
    assert_eq!(got_spans.len(), sent_spans.len());
    let mut enriched = 0;
    let mut priced = 0;
    let mut content_sent = 0;
    let mut events_removed = 0;
    for (id, original) in &sent_spans {
        let fwd = got_spans.get(id).expect("span forwarded");
        let mut original = original.clone();
        let before = original.attributes.len();
        original.attributes.retain(|a| !content(&a.key));
        content_sent += before - original.attributes.len();
        let events = original.events.len();
        original.events.retain(|e| !e.name.starts_with("gen_ai.content."));
        events_removed += events - original.events.len();
        for e in &mut original.events {
            let before = e.attributes.len();
            e.attributes.retain(|a| !content(&a.key));
            content_sent += before - e.attributes.len();
        }
        let n = original.attributes.len();
        assert_eq!(
            fwd.attributes[..n],
            original.attributes[..],
            "original attributes but content kept"
        );
        assert!(fwd.attributes[n..].iter().all(|a| a.key.starts_with("llmhub.")));
        let mut stripped = fwd.clone();
        stripped.attributes.truncate(n);
        assert_eq!(stripped, original, "nothing else changed");
        if n < fwd.attributes.len() {
            enriched += 1;
        }
        if let Some(rec) = want.get(id) {
            let attr = |k: &str| {
                fwd.attributes[n..]
                    .iter()
                    .find(|a| a.key == k)
                    .and_then(|a| a.value.clone()?.value)
            };
            assert_eq!(
                attr("llmhub.span.role"),
                Some(Value::StringValue(rec.role.as_str().into()))
            );
            if let Some(cost) = &rec.cost {
                priced += 1;
                assert_eq!(
                    attr("llmhub.cost.decimal"),
                    Some(Value::StringValue(cost.total.normalize().to_string())),
                    "the forwarded cost is the record's"
                );
            }
            if let Some(e) = rec.error_class {
                assert_eq!(attr("llmhub.error.class"), Some(Value::StringValue(e.as_str().into())));
            }
        }
    }
    assert_eq!(
        enriched,
        want.len(),
        "exactly the spans that became records are enriched"
    );
    assert!(priced > 300, "{priced} priced spans");
    assert!(content_sent > 400, "{content_sent} content attributes sent");
    assert_eq!(
        sum(
            &m,
            "llmhub_forward_content_removed_total",
            &[("llmhub_kind", "attribute")]
        ) as usize,
        content_sent + poison_content,
        "every content attribute removed and counted (the refused request's too)"
    );
    assert!(events_removed >= 8, "{events_removed} content events");
    assert_eq!(
        sum(&m, "llmhub_forward_content_removed_total", &[("llmhub_kind", "event")]) as usize,
        events_removed
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Conversation content in the dialects llmhub reads (the fixtures' content keys), named here
/// independently of llmhub's own list.
fn content(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "input.value",
        "output.value",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "ai.prompt",
        "ai.prompt.messages",
        "ai.response.text",
        "ai.response.toolCalls",
        "ai.toolCall.args",
        "ai.toolCall.result",
        "langfuse.observation.input",
        "langfuse.observation.output",
        "pydantic_ai.all_messages",
        "final_result",
        "tool_arguments",
        "tool_response",
        "embedding.embeddings.0.embedding.text",
    ];
    EXACT.contains(&key)
        || ((key.starts_with("gen_ai.prompt.") || key.starts_with("gen_ai.completion.")) && key.ends_with(".content"))
        || ((key.starts_with("llm.input_messages.") || key.starts_with("llm.output_messages."))
            && (key.ends_with(".message.content") || key.ends_with(".function.arguments")))
}

/// Every dialect fixture's content keys, as (file, keys).
fn fixture_content_keys() -> Vec<(String, Vec<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dialects");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let req = llmhub::receivers::otlp::json::decode_traces(&std::fs::read(&path).expect("read")).expect("decodes");
        let mut keys: Vec<String> = spans_by_id(&[req])
            .values()
            .flat_map(|s| s.attributes.iter().chain(s.events.iter().flat_map(|e| &e.attributes)))
            .map(|a| a.key.clone())
            .filter(|k| content(k))
            .collect();
        keys.sort();
        keys.dedup();
        out.push((path.file_name().expect("name").to_string_lossy().into_owned(), keys));
    }
    out.sort();
    out
}

/// With `capture: true` and redaction rules, each dialect's content keys arrive downstream with
/// e-mail addresses masked and API keys hashed, and the rest of the text as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_content_is_redacted_for_every_dialects_keys() {
    let (endpoint, captured) = downstream(OtlpProtocol::Grpc).await;
    let dir = tmpdir("redact");
    let mut cfg = forwarding(endpoint, OtlpProtocol::Grpc, &dir);
    cfg.processors.genai.content = serde_json::from_str(
        r#"{"capture": true, "hash_salt": "pepper", "redact": [
            {"builtin": "email", "action": "mask"}, {"builtin": "api_key", "action": "hash"}]}"#,
    )
    .expect("content config");
    let running = start(&cfg).await;
    let http = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    let per_file = fixture_content_keys();
    let dialects_with_content = per_file.iter().filter(|(_, k)| !k.is_empty()).count();
    assert!(dialects_with_content >= 9, "{per_file:?}");
    let keys: Vec<String> = per_file.into_iter().flat_map(|(_, k)| k).collect();
    // One span per content key, its value an e-mail address and an API key in text.
    let secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123";
    let spans: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            format!(
                r#"{{"traceId":"{:032x}","spanId":"{:016x}","name":"chat gpt-4o","startTimeUnixNano":"1763600000000000000","endTimeUnixNano":"1763600001000000000",
                   "attributes":[{{"key":"gen_ai.operation.name","value":{{"stringValue":"chat"}}}},
                                 {{"key":"{k}","value":{{"stringValue":"write to jane@example.com with {secret} please"}}}}]}}"#,
                i + 1,
                i + 1
            )
        })
        .collect();
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"redact"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    );
    assert_eq!(post_otlp(&http, "application/json", body.into_bytes()).await, 200);
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while captured.lock().expect("lock").is_empty() && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = scrape(running.metrics_addr).await;
    running.stop().await.expect("stop");
    let got = spans_by_id(&captured.lock().expect("lock"));
    assert_eq!(got.len(), keys.len());
    let mut hashes = std::collections::BTreeSet::new();
    for span in got.values() {
        let (key, value) = span
            .attributes
            .iter()
            .find(|a| content(&a.key))
            .map(|a| (a.key.clone(), a.value.clone().and_then(|v| v.value)))
            .expect("the content attribute is kept");
        let Some(Value::StringValue(v)) = value else {
            panic!("{key}: not a string")
        };
        let rest = v
            .strip_prefix("write to [REDACTED:email] with api_key:sha256:")
            .unwrap_or_else(|| panic!("{key}: {v}"));
        let (hash, tail) = rest.split_at(16);
        assert_eq!(tail, " please", "{key}: {v}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        hashes.insert(hash.to_owned());
    }
    assert_eq!(hashes.len(), 1, "the same key hashes the same everywhere");
    let n = keys.len() as f64;
    assert_eq!(
        sum(&m, "llmhub_forward_content_redacted_total", &[("llmhub_rule", "email")]),
        n
    );
    assert_eq!(
        sum(
            &m,
            "llmhub_forward_content_redacted_total",
            &[("llmhub_rule", "api_key")]
        ),
        n
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The records a fresh processor makes of the requests, by (trace id, span id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_forwarding_keeps_spans_and_adds_only_llmhub_attributes() {
    spans_arrive_unchanged_but_enriched(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_forwarding_keeps_spans_and_adds_only_llmhub_attributes() {
    spans_arrive_unchanged_but_enriched(OtlpProtocol::HttpProtobuf).await;
}

/// `/readyz` of a running llmhub: status and body.
async fn readyz(metrics: std::net::SocketAddr) -> (u16, String) {
    let r = reqwest::get(format!("http://{metrics}/readyz"))
        .await
        .expect("readyz answers");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// llmhub → llmhub: the downstream is down at first; the upstream's disk queue holds the
/// requests; once the downstream starts it gets every span and computes the same totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downstream_llmhub_started_late_receives_everything() {
    // Reserve a port for the downstream, then free it until the downstream starts.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tmpdir("chain");
    let up = start(&forwarding(
        format!("http://127.0.0.1:{port}"),
        OtlpProtocol::Grpc,
        &dir,
    ))
    .await;
    let http = format!("http://{}/v1/traces", up.http_addr.expect("http"));
    for k in 0..10 {
        assert_eq!(
            post_otlp(
                &http,
                "application/x-protobuf",
                realistic_request(200, 71_000 + k).encode_to_vec()
            )
            .await,
            200,
            "accepted while the downstream is down"
        );
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let m = scrape(up.metrics_addr).await;
    assert!(
        sum(&m, "llmhub_forward_retries_total", &[("llmhub_reason", "unreachable")]) >= 1.0,
        "the upstream kept retrying, the endpoint unreachable"
    );
    assert_eq!(
        sum(&m, "llmhub_forward_retries_total", &[]),
        sum(&m, "llmhub_forward_retries_total", &[("llmhub_reason", "unreachable")]),
        "no answer is no status"
    );
    // Readiness covers the forwarder: not ready while its endpoint does not answer.
    let (status, why) = readyz(up.metrics_addr).await;
    assert_eq!(status, 503, "{why}");
    assert_eq!(
        why.trim(),
        format!("not ready: otlp forwarder: the last send to http://127.0.0.1:{port} failed; retrying")
    );

    let mut c = loopback_config();
    if let Some(g) = c.receivers.otlp.protocols.grpc.as_mut() {
        g.endpoint = format!("127.0.0.1:{port}");
    }
    let down = start(&c).await;
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = scrape(down.metrics_addr).await;
        if sum(&m, "llmhub_receiver_spans_total", &[]) >= 2000.0 || std::time::Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A scrape is not atomic: the one that saw the last request counted may have read the
    // token counter before that request's calls were added. The processor counts a request's
    // spans received after recording its calls, so a scrape taken after that one sees them all.
    let m_down = scrape(down.metrics_addr).await;
    let m_up = scrape(up.metrics_addr).await;
    assert_eq!(sum(&m_down, "llmhub_receiver_spans_total", &[]), 2000.0);
    // Ready again once a send succeeds (the flag is set when the upstream reads the answer, a
    // moment after the downstream counted the spans: waited for, up to 5 s).
    let until = std::time::Instant::now() + Duration::from_secs(5);
    let mut ready = readyz(up.metrics_addr).await;
    while ready.0 != 200 && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
        ready = readyz(up.metrics_addr).await;
    }
    assert_eq!(ready, (200, "ready\n".to_owned()), "ready once it sends");
    for metric in ["llmhub_requests_total", "llmhub_cost_usd_total", "llmhub_tokens_total"] {
        let (a, b) = (sum(&m_up, metric, &[]), sum(&m_down, metric, &[]));
        assert!(
            (a - b).abs() < 1e-9 * a.max(1.0),
            "{metric}: upstream {a}, downstream {b}"
        );
        assert!(a > 0.0);
    }
    up.stop().await.expect("stop");
    down.stop().await.expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
}

/// With API keys on, a forwarded span names its client's tenant, whatever the span or its
/// resource claimed; a key without a tenant leaves the spans' own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_spans_carry_the_api_keys_tenant() {
    const ACME: &str = "acme-key-0123456789abcdef";
    const FLEET: &str = "fleet-key-0123456789abcdef";
    let (endpoint, captured) = downstream(OtlpProtocol::Grpc).await;
    let dir = tmpdir("tenant");
    let mut c = forwarding(endpoint, OtlpProtocol::Grpc, &dir);
    c.receivers.otlp.auth = Some(
        serde_json::from_value(serde_json::json!({
            "api_keys": [{ "key": ACME, "tenant": "acme" }, { "key": FLEET }]
        }))
        .expect("auth"),
    );
    let running = start(&c).await;
    let http = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    let claiming = |seed: u64| {
        let mut req = realistic_request(6, seed);
        for rs in &mut req.resource_spans {
            rs.resource
                .get_or_insert_with(Default::default)
                .attributes
                .push(llmhub_testkit::s("tenant.id", "globex"));
            for span in rs.scope_spans.iter_mut().flat_map(|ss| &mut ss.spans) {
                span.attributes.retain(|a| a.key != "tenant.id");
                span.attributes.push(llmhub_testkit::s("tenant.id", "initech"));
            }
        }
        req
    };
    let client = reqwest::Client::new();
    for (key, seed) in [(ACME, 81_000), (FLEET, 82_000)] {
        let r = client
            .post(&http)
            .header("content-type", "application/x-protobuf")
            .header("authorization", format!("Bearer {key}"))
            .body(claiming(seed).encode_to_vec())
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 200);
    }
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while captured.lock().expect("lock").len() < 2 && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await.expect("stop");
    let got = captured.lock().expect("lock").clone();
    assert_eq!(got.len(), 2, "both requests forwarded");
    let tenants = |attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue]| -> Vec<String> {
        attrs
            .iter()
            .filter(|a| a.key == "tenant.id")
            .map(|a| match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    };
    let by_service_seed = |req: &ExportTraceServiceRequest| {
        // The requests are told apart by their span ids: realistic_request derives them from the seed.
        realistic_request(6, 81_000).resource_spans[0].scope_spans[0].spans[0].span_id
            == req.resource_spans[0].scope_spans[0].spans[0].span_id
    };
    for req in &got {
        let (want_span, want_resource) = if by_service_seed(req) {
            ("acme", "acme")
        } else {
            ("initech", "globex")
        };
        for rs in &req.resource_spans {
            let r = rs.resource.as_ref().expect("resource");
            assert_eq!(tenants(&r.attributes), vec![want_resource.to_owned()]);
            for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                assert_eq!(
                    tenants(&span.attributes),
                    vec![want_span.to_owned()],
                    "one tenant.id per span"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// While llmhub drains after a stop (here: a forwarding queue whose endpoint is down, written out
/// until the drain deadline), `/readyz` answers 503 naming the drain, and the metrics endpoint
/// keeps answering until the drain ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_draining_until_the_queues_are_written_out_or_the_deadline_passes() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tmpdir("drain");
    let mut c = forwarding(format!("http://127.0.0.1:{port}"), OtlpProtocol::Grpc, &dir);
    if let Some(o) = c.exporters.otlp.as_mut() {
        o.queue.directory = None;
    }
    let running = start(&c).await;
    let metrics = running.metrics_addr;
    let http = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    assert_eq!(
        post_otlp(
            &http,
            "application/x-protobuf",
            realistic_request(20, 91_000).encode_to_vec()
        )
        .await,
        200
    );
    // Not ready already: the forwarder's endpoint does not answer (its first attempt is refused
    // within milliseconds; waited for, up to 5 s).
    let until = std::time::Instant::now() + Duration::from_secs(5);
    let (status, why) = loop {
        let (status, why) = readyz(metrics).await;
        if status != 200 || std::time::Instant::now() > until {
            break (status, why);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("otlp forwarder: the last send to"), "{why}");
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(running.stop());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, why) = readyz(metrics).await;
    assert_eq!(status, 503, "not ready while draining: {why}");
    assert!(why.contains("draining"), "{why}");
    stopping.await.expect("stop task").expect("stops cleanly");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took <= llmhub::service::DRAIN_DEADLINE + Duration::from_secs(5),
        "the drain waited for the queue up to its deadline: {took:?}"
    );
    assert!(
        reqwest::get(format!("http://{metrics}/readyz")).await.is_err(),
        "gone after the drain"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

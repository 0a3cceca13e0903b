//! Pricing end to end: spans through a running llmhub produce the expected USD cost counters, an
//! unknown model is counted as unpriced (never as zero), SDK-reported cost stays apart, user
//! models and Azure deployment names from the config price calls; and the `llmhub prices` commands.

mod common;

use common::{chat, i, loopback_config, request, s, scrape, span, start, sum};
use prost::Message;
use std::process::Command;

async fn send(
    http: std::net::SocketAddr,
    req: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) {
    let resp = reqwest::Client::new()
        .post(format!("http://{http}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(req.encode_to_vec())
        .send()
        .await
        .expect("export");
    assert_eq!(resp.status().as_u16(), 200);
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_through_serve_produce_the_expected_cost_counters() {
    let mut cfg = loopback_config();
    let pricing = &mut cfg.processors.genai.pricing;
    pricing
        .azure_deployments
        .insert("prod-chat".into(), "gpt-4o-mini".into());
    pricing.models = serde_yaml_ng::from_str(
        r#"
- provider: self-hosted
  model: acme-llama-ft
  prices:
    - { effective_from: "2025-01-01", source: "internal GPU cost model", unit: per_million_tokens, input: "0.10", output: "0.40" }
"#,
    )
    .expect("user models");
    let running = start(&cfg).await;
    let http = running.http_addr.expect("http");

    // Calls start on 2025-11-20 (testkit's base time): the catalog's current gpt-4o price,
    // $2.50 input / $10 output per million.
    let mut spans = vec![
        chat(1, "gpt-4o", 1_000, 100),
        chat(2, "gpt-4o", 1_000, 100),
        chat(3, "gpt-4o", 1_000, 100),
    ];
    // gpt-4o-mini with cache reads: 10,000 input of which 8,000 cached, 500 output:
    // 2,000 × $0.15 + 8,000 × $0.075 + 500 × $0.60, per million = $0.0012.
    spans.push(span(
        4,
        "chat gpt-4o-mini",
        300,
        vec![
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.provider.name", "openai"),
            s("gen_ai.request.model", "gpt-4o-mini"),
            i("gen_ai.usage.input_tokens", 10_000),
            i("gen_ai.usage.cache_read.input_tokens", 8_000),
            i("gen_ai.usage.output_tokens", 500),
        ],
    ));
    // An unknown model: counted as unpriced, no cost series at all.
    spans.push(chat(5, "gpt-9-ultra", 50, 5));
    // OpenLIT-style SDK-reported cost on a priced call: kept apart.
    let mut with_sdk_cost = chat(6, "gpt-4o", 2_000, 0);
    with_sdk_cost.attributes.push(common::d("gen_ai.usage.cost", 0.0123));
    spans.push(with_sdk_cost);
    send(http, request("billing", spans)).await;

    // An Azure deployment name and a private model.
    let mut azure = chat(7, "prod-chat", 1_000_000, 0);
    azure.attributes[1] = s("gen_ai.provider.name", "azure.ai.openai");
    let mut private = chat(8, "acme-llama-ft", 1_000_000, 1_000_000);
    private.attributes[1] = s("gen_ai.provider.name", "self-hosted");
    send(http, request("billing-2", vec![azure, private])).await;

    let m = scrape(running.metrics_addr).await;
    let cost = |service: &str, model: &str| {
        sum(
            &m,
            "llmhub_cost_usd_total",
            &[("service_name", service), ("gen_ai_request_model", model)],
        )
    };
    // 3 × (1,000 × 2.5 + 100 × 10) / 1M + 2,000 × 2.5 / 1M
    assert!(
        close(cost("billing", "gpt-4o"), 0.0105 + 0.005),
        "{}",
        cost("billing", "gpt-4o")
    );
    assert!(
        close(cost("billing", "gpt-4o-mini"), 0.0012),
        "{}",
        cost("billing", "gpt-4o-mini")
    );
    assert_eq!(
        common::count(&m, "llmhub_cost_usd_total", &[("gen_ai_request_model", "gpt-9-ultra")]),
        0
    );
    assert_eq!(
        sum(
            &m,
            "llmhub_cost_unknown_price_total",
            &[
                ("gen_ai_request_model", "gpt-9-ultra"),
                ("llmhub_price_status", "unknown_model")
            ]
        ),
        1.0
    );
    assert!(close(
        sum(&m, "llmhub_cost_sdk_reported_usd_total", &[("service_name", "billing")]),
        0.0123
    ));
    // prod-chat → gpt-4o-mini at $0.15 per million input: 1,000,000 tokens = $0.15.
    assert!(
        close(cost("billing-2", "prod-chat"), 0.15),
        "{}",
        cost("billing-2", "prod-chat")
    );
    // The private model at $0.10 + $0.40.
    assert!(
        close(cost("billing-2", "acme-llama-ft"), 0.5),
        "{}",
        cost("billing-2", "acme-llama-ft")
    );
    running.stop().await.expect("stop");
}

fn llmhub(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_llmhub"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn prices_show_check_and_import() {
    let (code, out, _) = llmhub(&[
        "prices",
        "show",
        "--provider",
        "aws.bedrock",
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("match: prefix aws.bedrock/anthropic.claude-3-7-sonnet-20250219-v1:0"),
        "{out}"
    );
    let (code, out, _) = llmhub(&["prices", "show", "gpt-4o", "--at", "2024-09-01"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("input 5  output 15"),
        "the price before the 2024-10-02 change: {out}"
    );
    let (code, _, err) = llmhub(&["prices", "show", "no-such-model-x"]);
    assert_eq!(code, 1);
    assert!(err.contains("no price for \"no-such-model-x\""), "{err}");

    let (code, out, _) = llmhub(&["prices", "check"]);
    assert_eq!(code, 0);
    assert!(out.contains("lint clean"), "{out}");

    // Unpriced models seen by a running llmhub, read from its /metrics text.
    let dir = std::env::temp_dir().join(format!("llmhub-prices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let metrics = dir.join("metrics.txt");
    std::fs::write(
        &metrics,
        "# TYPE llmhub_cost_unknown_price_total counter\nllmhub_cost_unknown_price_total{gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-9-ultra\",llmhub_price_status=\"unknown_model\"} 7\n# EOF\n",
    )
    .expect("write");
    let (code, out, _) = llmhub(&["prices", "check", "--metrics", metrics.to_str().expect("utf-8")]);
    assert_eq!(code, 1);
    assert!(out.contains("gpt-9-ultra") && out.contains(" 7"), "{out}");
    // An error is not a finding: a missing metrics file or a catalog that does not load exit 2.
    let missing = dir.join("no-such-metrics.txt");
    let (code, _, err) = llmhub(&["prices", "check", "--metrics", missing.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read metrics from"), "{err}");
    let broken = dir.join("broken-catalog.yaml");
    std::fs::write(&broken, "version: x\nmodels: [\n").expect("write");
    let (code, _, err) = llmhub(&["prices", "check", "--catalog", broken.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{err}");

    // Import from LiteLLM's format: what changed, what is new; --output writes a valid catalog.
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/prices/litellm_sample.json");
    let merged = dir.join("merged.yaml");
    let (code, out, err) = llmhub(&[
        "prices",
        "import",
        "--format",
        "litellm",
        sample,
        "--effective-from",
        "2026-12-01",
        "--output",
        merged.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("changed  openai/gpt-4o  input: 2.5 -> 2"), "{out}");
    assert!(
        out.contains("added    openai/acme-new-model  input=1 output=4"),
        "{out}"
    );
    assert!(out.contains("1 new, 1 with changed prices, 1 unchanged"), "{out}");
    let (code, out, err) = llmhub(&[
        "prices",
        "show",
        "gpt-4o",
        "--catalog",
        merged.to_str().expect("utf-8"),
        "--at",
        "2026-12-02",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("input 2  output 10"), "{out}");
    let (_, out, _) = llmhub(&[
        "prices",
        "show",
        "gpt-4o",
        "--catalog",
        merged.to_str().expect("utf-8"),
        "--at",
        "2026-11-30",
    ]);
    assert!(
        out.contains("input 2.5  output 10"),
        "the old price still holds before the import date: {out}"
    );
}

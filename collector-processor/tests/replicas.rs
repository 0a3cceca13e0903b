//! Scale-out (docs/scaling.md): two `llmhub serve` replicas write to one PostgreSQL database and
//! are scraped by one real Prometheus, with spans routed by trace id as a collector's load-balancing
//! exporter does. A third llmhub that receives everything alone is the reference.
//!
//! Needs PostgreSQL 15 (`scripts/servers.sh`) and the `prometheus` binary; run with
//! `cargo test -- --include-ignored` (the README's test command does).

mod common;

use common::pg::{self, export, grpc_channel, Server};
use common::prometheus::{self, scalar};
use llmhub_testkit::realistic_request;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::time::{Duration, Instant};

/// The replica a trace goes to: what a load balancer keyed on the trace id does (any function of
/// the trace id alone keeps a trace's spans together).
fn replica_of(trace_id: &[u8], replicas: usize) -> usize {
    // FNV-1a; its high bits depend on every bit of the id.
    let h = trace_id.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h >> 32) as usize % replicas
}

/// `req`'s spans split by [`replica_of`], resources and scopes kept.
fn split_by_trace(req: &ExportTraceServiceRequest, replicas: usize) -> Vec<ExportTraceServiceRequest> {
    (0..replicas)
        .map(|r| {
            let mut part = req.clone();
            for rs in &mut part.resource_spans {
                for ss in &mut rs.scope_spans {
                    ss.spans.retain(|s| replica_of(&s.trace_id, replicas) == r);
                }
            }
            part
        })
        .collect()
}

/// `req` with a second report of every fourth model call, as a wrapper instrumentation adds around
/// the provider SDK's span: same trace, same response id and usage, a child span of its own.
/// llmhub counts such a pair once when both reach the same llmhub.
fn with_wrapper_copies(mut req: ExportTraceServiceRequest) -> ExportTraceServiceRequest {
    for rs in &mut req.resource_spans {
        for ss in &mut rs.scope_spans {
            let mut copies = Vec::new();
            let calls = ss
                .spans
                .iter()
                .filter(|s| s.attributes.iter().any(|a| a.key == "gen_ai.response.id"));
            for span in calls.step_by(4) {
                let mut copy = span.clone();
                copy.parent_span_id = span.span_id.clone();
                copy.span_id[0] ^= 0x80;
                copies.push(copy);
            }
            ss.spans.extend(copies);
        }
    }
    req
}

/// Spans in `req`.
fn span_count(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

fn serve_with_sink(dir: &std::path::Path, name: &str, url: &str, schema: &str) -> llmhub_testkit::ServeProcess {
    let config = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &config,
        format!(
            "exporters:\n  postgres:\n    url: {url}\n    schema: {schema}\n    batch_linger_ms: 50\nservice:\n  pipelines:\n    traces:\n      exporters: [prometheus, postgres]\n"
        ),
    )
    .expect("config");
    let cfg = config.display().to_string();
    let mut args = vec!["--config", cfg.as_str()];
    args.extend(llmhub_testkit::LOOPBACK_EPHEMERAL);
    llmhub_testkit::spawn_serve_logged(
        env!("CARGO_BIN_EXE_llmhub"),
        &args,
        None,
        &[],
        &dir.join(format!("{name}.log")),
    )
    .expect("llmhub starts")
}

/// Waits until `q` answers `want` (Prometheus scrapes every second); returns the last answer.
async fn settle(prom: &prometheus::Prometheus, q: &str, want: f64) -> Option<f64> {
    settle_near(prom, q, want, 0.0).await
}

/// [`settle`] within `tolerance` of `want`.
async fn settle_near(prom: &prometheus::Prometheus, q: &str, want: f64, tolerance: f64) -> Option<f64> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let got = scalar(&prom.query(q).await);
        if got.is_some_and(|v| (v - want).abs() <= tolerance) || Instant::now() > until {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh) and a Prometheus binary"]
async fn two_replicas_store_each_span_once_and_sum_to_one_llmhub() {
    let url = Server::Pg15.url();
    let admin = pg::connect(&url).await;
    let schema = pg::fresh_schema(&admin, "replicas").await;
    let dir = pg::tmpdir("replicas");
    let a = serve_with_sink(&dir, "a", &url, &schema);
    let b = serve_with_sink(&dir, "b", &url, &schema);
    // The reference: one llmhub that sees every span (no database).
    let mut args = vec![];
    args.extend(llmhub_testkit::LOOPBACK_EPHEMERAL);
    let one = llmhub_testkit::spawn_serve_logged(env!("CARGO_BIN_EXE_llmhub"), &args, None, &[], &dir.join("one.log"))
        .expect("reference llmhub starts");
    // A second reference that gets only the request repeated below: how many calls it holds.
    let alone =
        llmhub_testkit::spawn_serve_logged(env!("CARGO_BIN_EXE_llmhub"), &args, None, &[], &dir.join("alone.log"))
            .expect("second reference llmhub starts");
    let prom = prometheus::start_targets(
        &[
            a.metrics.clone(),
            b.metrics.clone(),
            one.metrics.clone(),
            alone.metrics.clone(),
        ],
        "replicas",
    );
    let replicas = format!(r#"instance=~"{}|{}""#, a.metrics, b.metrics);
    let reference = format!(r#"instance="{}""#, one.metrics);

    // Realistic traffic (model calls, agents, tools, and wrapper copies of some calls in the same
    // trace), each request split by trace id between the replicas, and sent whole to the reference.
    let requests: Vec<ExportTraceServiceRequest> = (0..8)
        .map(|i| with_wrapper_copies(realistic_request(200, 7_700 + i)))
        .collect();
    let mut to = [grpc_channel(&a.grpc).await, grpc_channel(&b.grpc).await];
    let mut reference_grpc = grpc_channel(&one.grpc).await;
    let mut sent = [0usize; 2];
    for req in &requests {
        for (r, part) in split_by_trace(req, 2).iter().enumerate() {
            sent[r] += span_count(part);
            export(&mut to[r], part).await.expect("replica accepts");
        }
        export(&mut reference_grpc, req).await.expect("reference accepts");
    }
    assert!(sent[0] > 300 && sent[1] > 300, "both replicas get traffic: {sent:?}");
    let again = &requests[3];
    export(&mut grpc_channel(&alone.grpc).await, again)
        .await
        .expect("accepted");
    let total = (sent[0] + sent[1]) as f64;
    let seen = settle(
        &prom,
        &format!("sum(llmhub_receiver_spans_accepted_total{{{reference}}})"),
        total,
    )
    .await;
    assert_eq!(seen, Some(total), "the reference's scraped span count");

    // Stored once: the rows are exactly the records one processor makes of the whole traffic.
    let want = pg::expected_records(&requests).len() as i64;
    let rows = pg::wait_for_rows(&admin, &schema, want, Duration::from_secs(30)).await;
    assert_eq!(rows, want, "rows in {schema}.llm_calls");
    let distinct: i64 = admin
        .query_one(
            &format!("SELECT count(DISTINCT (trace_id, span_id)) FROM {schema}.llm_calls"),
            &[],
        )
        .await
        .expect("distinct")
        .get(0);
    assert_eq!(distinct, want);

    // The replicas' metrics, summed by Prometheus, equal the single llmhub's.
    for metric in [
        "llmhub_requests_total",
        "llmhub_tokens_total",
        "llmhub_cost_usd_total",
        "llmhub_errors_total",
        "gen_ai_client_operation_duration_seconds_count",
    ] {
        let one = match scalar(&prom.query(&format!("sum({metric}{{{reference}}})")).await) {
            Some(v) if v > 0.0 => v,
            other => panic!("the reference has no {metric}: {other:?}"),
        };
        let q = format!("sum({metric}{{{replicas}}})");
        // Cost is a sum of doubles, added in a different order on each side.
        let tolerance = if metric == "llmhub_cost_usd_total" {
            1e-9 * one
        } else {
            0.0
        };
        let two = settle_near(&prom, &q, one, tolerance).await;
        assert!(
            two.is_some_and(|v| (v - one).abs() <= tolerance),
            "{q} = {two:?}, the single llmhub's is {one}"
        );
    }
    let written = settle(
        &prom,
        &format!("sum(llmhub_postgres_rows_written_total{{{replicas}}})"),
        want as f64,
    )
    .await;
    assert_eq!(written, Some(want as f64), "rows written by both replicas");

    // A request delivered to both replicas (a client that retried on the other after a timeout):
    // stored once, counted by the database as duplicates, but counted twice in the metrics. No
    // replica can know what the other received; that is why the routing must be by trace id.
    let again_rows = pg::expected_records(std::slice::from_ref(again)).len() as f64;
    let calls = |instance: String| {
        let prom = &prom;
        async move { scalar(&prom.query(&format!("sum(llmhub_requests_total{{{instance}}})")).await) }
    };
    let one_calls = calls(reference.clone()).await.expect("reference calls");
    assert_eq!(calls(replicas.clone()).await, Some(one_calls));
    let alone_spans = span_count(again);
    let alone_seen = settle(
        &prom,
        &format!(
            r#"sum(llmhub_receiver_spans_accepted_total{{instance="{}"}})"#,
            alone.metrics
        ),
        alone_spans as f64,
    )
    .await;
    assert_eq!(
        alone_seen,
        Some(alone_spans as f64),
        "the second reference's scraped span count"
    );
    let again_calls = calls(format!(r#"instance="{}""#, alone.metrics))
        .await
        .expect("calls of the repeat");
    assert!(again_calls > 0.0, "the repeated request has model calls");
    // Each half goes to the replica that did not get it the first time.
    let wrong_replica = split_by_trace(again, 2);
    export(&mut to[1], &wrong_replica[0]).await.expect("accepted");
    export(&mut to[0], &wrong_replica[1]).await.expect("accepted");
    let dup = settle(
        &prom,
        &format!("sum(llmhub_postgres_rows_duplicate_total{{{replicas}}})"),
        again_rows,
    )
    .await;
    assert_eq!(dup, Some(again_rows), "duplicates the database reported");
    assert_eq!(
        pg::wait_for_rows(&admin, &schema, want + 1, Duration::from_secs(2)).await,
        want,
        "stored once"
    );
    let q = format!("sum(llmhub_requests_total{{{replicas}}})");
    assert_eq!(
        settle(&prom, &q, one_calls + again_calls).await,
        Some(one_calls + again_calls),
        "the repeat is counted again by the metrics"
    );
    drop((a, b, one, alone));
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("cleanup");
    let _ = std::fs::remove_dir_all(&dir);
}

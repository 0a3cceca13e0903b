//! Helpers for tests against the real PostgreSQL 15 and PostgreSQL 17 + TimescaleDB servers that
//! `scripts/servers.sh` starts (the README's test command runs it and exports their URLs).

use bytes::Bytes;
use llmhub::config::Config;
use llmhub::config::GenAiProcessor as GenAiConfig;
use llmhub::metrics::Metrics;
use llmhub::processors::genai::GenAiProcessor;
use llmhub_core::LlmCall;
use llmhub_exporters::postgres::PostgresConfig;
use llmhub_testkit::RawGrpcCodec;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prometheus_client::registry::Registry;
use prost::Message;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_postgres::{Client, NoTls, Row};

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Which server.
#[derive(Debug, Clone, Copy)]
pub enum Server {
    /// PostgreSQL 15 on the host.
    Pg15,
    /// PostgreSQL 17 with TimescaleDB, in the Debian 13 chroot.
    Timescale,
}

impl Server {
    /// Its connection URL, from the environment `scripts/servers.sh env` prints.
    pub fn url(self) -> String {
        let var = match self {
            Server::Pg15 => "LLMHUB_TEST_PG15_URL",
            Server::Timescale => "LLMHUB_TEST_TIMESCALE_URL",
        };
        std::env::var(var).unwrap_or_else(|_| {
            panic!("{var} is not set: run scripts/test.sh, which starts the servers with scripts/servers.sh and exports their URLs")
        })
    }

    /// `scripts/servers.sh` name.
    pub fn script_name(self) -> &'static str {
        match self {
            Server::Pg15 => "pg15",
            Server::Timescale => "timescale",
        }
    }

    /// Stops or starts the server with `scripts/servers.sh`.
    pub fn control(self, action: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/servers.sh");
        let out = std::process::Command::new("bash")
            .args([script, action, self.script_name()])
            .output()
            .expect("run scripts/servers.sh");
        assert!(
            out.status.success(),
            "servers.sh {action} {}: {}{}",
            self.script_name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Connects (no TLS: the test servers listen on loopback).
pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to the test server");
    tokio::spawn(conn);
    client
}

/// A database of its own for one test on `server` (dropped first if a previous run left it; two
/// statements, since neither runs inside a transaction). Returns its URL.
pub async fn fresh_database(server: Server, name: &str) -> String {
    let admin = connect(&server.url()).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop database");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    server.url().replace("/llmhub_test", &format!("/{name}"))
}

/// A fresh schema for one test (dropped first if a previous run left it).
pub async fn fresh_schema(client: &Client, name: &str) -> String {
    let schema = format!("t_{name}");
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .expect("drop schema");
    schema
}

/// A processor configured like the server's that keeps every record: the expected side.
pub fn expected_processor() -> GenAiProcessor {
    let mut reg = Registry::default();
    let cfg = GenAiConfig::default();
    let matcher = llmhub::processors::pricing::matcher(&cfg.pricing).expect("catalog");
    GenAiProcessor::new(&cfg, matcher, Arc::new(Metrics::new(&mut reg, 1_000_000, 1_000_000))).collecting()
}

/// The records the server should have written for `requests`, sent in this order.
pub fn expected_records(requests: &[ExportTraceServiceRequest]) -> Vec<LlmCall> {
    let p = expected_processor();
    requests
        .iter()
        .flat_map(|r| p.process(r, llmhub::metrics::Transport::Grpc).records)
        .collect()
}

/// [`expected_records`] by (trace id, span id).
pub fn records_by_id(requests: &[ExportTraceServiceRequest]) -> std::collections::HashMap<(Vec<u8>, Vec<u8>), LlmCall> {
    expected_records(requests)
        .into_iter()
        .map(|r| ((r.trace_id.to_vec(), r.span_id.to_vec()), r))
        .collect()
}

/// The record's JSON with times cut to microseconds (PostgreSQL's `timestamptz` precision).
pub fn expected_json(c: &LlmCall) -> Value {
    let mut v = c.to_json();
    for k in ["start_unix_nano", "end_unix_nano"] {
        let n = v[k].as_u64().expect("nanos");
        v[k] = json!(n / 1000 * 1000);
    }
    v
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).expect("after 1970").as_nanos() as u64
}

fn dec(r: &Row, col: &str) -> Option<String> {
    r.get::<_, Option<rust_decimal::Decimal>>(col).map(|d| d.to_string())
}

/// Every row of `schema.llm_calls` as record JSON (the shape of `LlmCall::to_json`), sorted by
/// trace and span id.
pub async fn rows_json(client: &Client, schema: &str) -> Vec<Value> {
    let rows = client
        .query(
            &format!("SELECT * FROM {schema}.llm_calls ORDER BY trace_id, span_id"),
            &[],
        )
        .await
        .expect("select rows");
    rows.iter().map(row_json).collect()
}

/// One row as record JSON.
pub fn row_json(r: &Row) -> Value {
    let text = |c: &str| r.get::<_, Option<String>>(c);
    let int = |c: &str| r.get::<_, Option<i64>>(c);
    let float = |c: &str| r.get::<_, Option<f64>>(c);
    let usage = if r.get::<_, bool>("usage_reported") {
        json!({
            "input_uncached": int("input_uncached_tokens"),
            "cache_read": int("cache_read_tokens"),
            "cache_write": int("cache_write_tokens"),
            "cache_write_1h": int("cache_write_1h_tokens"),
            "output": int("output_tokens"),
            "reasoning": int("reasoning_tokens"),
        })
    } else {
        Value::Null
    };
    let cost = match dec(r, "cost_usd") {
        Some(total) => json!({
            "total": total,
            "input_uncached": dec(r, "cost_input_uncached_usd"),
            "cache_read": dec(r, "cost_cache_read_usd"),
            "cache_write": dec(r, "cost_cache_write_usd"),
            "cache_write_1h": dec(r, "cost_cache_write_1h_usd"),
            "output": dec(r, "cost_output_usd"),
            "reasoning": dec(r, "cost_reasoning_usd"),
            "request": dec(r, "cost_request_usd"),
            "catalog_version": text("catalog_version"),
            "rule": text("price_rule"),
        }),
        None => Value::Null,
    };
    let mut v = json!({
        "trace_id": hex::encode(r.get::<_, Vec<u8>>("trace_id")),
        "span_id": hex::encode(r.get::<_, Vec<u8>>("span_id")),
        "parent_span_id": r.get::<_, Option<Vec<u8>>>("parent_span_id").map(hex::encode),
        "start_unix_nano": nanos(r.get("time")),
        "end_unix_nano": nanos(r.get("end_time")),
        "tenant": text("tenant"),
        "service_name": text("service_name"),
        "environment": text("environment"),
        "dialect": text("dialect"),
        "scope_name": text("scope_name"),
        "role": text("role"),
        "operation": text("operation"),
        "provider": text("provider"),
        "request_model": text("request_model"),
        "response_model": text("response_model"),
        "normalized_model": text("model"),
        "response_id": text("response_id"),
        "streaming": r.get::<_, Option<bool>>("streaming"),
        "finish_reasons": r.get::<_, Vec<String>>("finish_reasons"),
        "status": text("status"),
        "error_class": text("error_class"),
        "error_type": text("error_type"),
        "server_address": text("server_address"),
        "server_port": r.get::<_, Option<i32>>("server_port"),
    });
    // Two literals: one would pass serde_json's macro recursion limit.
    let rest = json!({
        "usage": usage,
        "counts_usage": r.get::<_, bool>("counts_usage"),
        "duration_s": float("duration_s"),
        "ttft_s": float("ttft_s"),
        "tpot_s": float("tpot_s"),
        "output_tokens_per_s": float("output_tokens_per_s"),
        "ttft_from_server": r.get::<_, bool>("ttft_from_server"),
        "tpot_from_server": r.get::<_, bool>("tpot_from_server"),
        "sdk_reported_cost_usd": float("sdk_reported_cost_usd"),
        "service_tier": text("service_tier"),
        "price_status": text("price_status"),
        "cost": cost,
        "agent_id": text("agent_id"),
        "agent_name": text("agent_name"),
        "workflow_name": text("workflow_name"),
        "conversation_id": text("conversation_id"),
        "tool_name": text("tool_name"),
        "tool_call_id": text("tool_call_id"),
    });
    if let (Some(a), Value::Object(b)) = (v.as_object_mut(), rest) {
        a.extend(b);
    }
    v
}

/// (trace id, span id) of a set of records.
pub fn record_ids(records: &[LlmCall]) -> std::collections::BTreeSet<(Vec<u8>, Vec<u8>)> {
    records
        .iter()
        .map(|c| (c.trace_id.to_vec(), c.span_id.to_vec()))
        .collect()
}

/// (trace id, span id) of every row of `schema.llm_calls`.
pub async fn row_ids(client: &Client, schema: &str) -> std::collections::BTreeSet<(Vec<u8>, Vec<u8>)> {
    client
        .query(&format!("SELECT trace_id, span_id FROM {schema}.llm_calls"), &[])
        .await
        .expect("ids")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Asserts that `schema.llm_calls` holds exactly `want`, row by row and field by field.
pub async fn assert_rows_are(client: &Client, schema: &str, want: &[LlmCall]) {
    let mut expected: Vec<Value> = want.iter().map(expected_json).collect();
    expected.sort_by(|a, b| {
        (a["trace_id"].as_str(), a["span_id"].as_str()).cmp(&(b["trace_id"].as_str(), b["span_id"].as_str()))
    });
    let got = rows_json(client, schema).await;
    assert_eq!(got.len(), expected.len(), "rows in {schema}.llm_calls");
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "row differs from its record");
    }
}

/// Row count and distinct (trace, span) count of `schema.llm_calls`.
pub async fn counts(client: &Client, schema: &str) -> (i64, i64) {
    let r = client
        .query_one(
            &format!("SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM {schema}.llm_calls"),
            &[],
        )
        .await
        .expect("count rows");
    (r.get(0), r.get(1))
}

/// Polls until `schema.llm_calls` holds `want` rows (or the timeout passes); returns the count.
pub async fn wait_for_rows(client: &Client, schema: &str, want: i64, timeout: std::time::Duration) -> i64 {
    let until = std::time::Instant::now() + timeout;
    loop {
        let n = client
            .query_one(&format!("SELECT count(*) FROM {schema}.llm_calls"), &[])
            .await
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(-1);
        if n >= want || std::time::Instant::now() > until {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

// --- llmhub with the sink ---------------------------------------------------------------------

/// A sink config writing into `schema`, with short linger and retry delays.
pub fn sink_config(url: &str, schema: &str) -> PostgresConfig {
    PostgresConfig {
        url: Some(url.to_owned()),
        schema: schema.to_owned(),
        batch_linger_ms: 50,
        retry_initial_ms: 50,
        retry_max_ms: 1000,
        ..PostgresConfig::default()
    }
}

/// A loopback config with the sink in the pipeline.
pub fn with_sink(pg: PostgresConfig) -> Config {
    let mut c = super::loopback_config();
    c.exporters.postgres = Some(pg);
    c.service.pipelines.traces.exporters = vec!["prometheus".into(), "postgres".into()];
    c
}

/// A fresh temporary directory.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("llmhub-pgtest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A gRPC client to `addr`.
pub async fn grpc_channel(addr: &str) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    tonic::client::Grpc::new(channel)
}

/// One OTLP/gRPC trace export of `req`.
pub async fn export(
    grpc: &mut tonic::client::Grpc<tonic::transport::Channel>,
    req: &ExportTraceServiceRequest,
) -> Result<Bytes, tonic::Status> {
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    grpc.unary(
        tonic::Request::new(Bytes::from(req.encode_to_vec())),
        http::uri::PathAndQuery::from_static(TRACE_EXPORT),
        RawGrpcCodec,
    )
    .await
    .map(|r| r.into_inner())
}

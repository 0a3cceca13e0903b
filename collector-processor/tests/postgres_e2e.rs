//! The PostgreSQL/TimescaleDB sink against real servers: PostgreSQL 15 on the host and
//! PostgreSQL 17 + TimescaleDB in the chroot (`scripts/servers.sh`). Spans go in over real OTLP
//! (gRPC and HTTP/JSON); rows come out of `llm_calls` and are compared field by field with the
//! records the processor makes of the same spans.
//!
//! These tests need the servers, so they are `#[ignore]`d for a bare `cargo test`; the README's
//! test command starts the servers and runs them with `--include-ignored`.

mod common;

use bytes::Bytes;
use common::pg::{self, Server};
use common::{loopback_config, scrape, start, sum};
use llmhub::config::Config;
use llmhub::receivers::otlp::answer::{RetryInfo, RpcStatus, RETRY_INFO_URL};
use llmhub::testkit::{realistic_request, RawGrpcCodec};
use llmhub_exporters::postgres::PostgresConfig;
use llmhub_exporters::queue::QueueConfig;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

fn sink_config(url: &str, schema: &str) -> PostgresConfig {
    PostgresConfig {
        url: Some(url.to_owned()),
        schema: schema.to_owned(),
        batch_linger_ms: 50,
        retry_initial_ms: 50,
        retry_max_ms: 1000,
        ..PostgresConfig::default()
    }
}

fn with_sink(pg: PostgresConfig) -> Config {
    let mut c = loopback_config();
    c.exporters.postgres = Some(pg);
    c.service.pipelines.traces.exporters = vec!["prometheus".into(), "postgres".into()];
    c
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("llmhub-pgtest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

async fn grpc_channel(addr: &str) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    tonic::client::Grpc::new(channel)
}

async fn export(
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

fn fixture_requests() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dialects");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v.into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).expect("fixture")))
        .collect()
}

/// N spans in, exactly N rows out, each equal field by field to the processor's record.
async fn rows_equal_records(server: Server, name: &str) {
    let url = server.url();
    let client = pg::connect(&url).await;
    let schema = pg::fresh_schema(&client, name).await;
    let running = start(&with_sink(sink_config(&url, &schema))).await;
    let http = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    let mut grpc = grpc_channel(&running.grpc_addr.expect("grpc").to_string()).await;

    // Every dialect fixture over OTLP/HTTP JSON, then realistic batches over gRPC.
    let mut sent: Vec<ExportTraceServiceRequest> = Vec::new();
    let web = reqwest::Client::new();
    for (path, body) in fixture_requests() {
        let r = web
            .post(&http)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 200, "{path}");
        sent.push(llmhub::receivers::otlp::json::decode_traces(&body).expect("fixture decodes"));
    }
    for seed in 0..20 {
        let req = realistic_request(100, 7_000 + seed);
        export(&mut grpc, &req).await.expect("export accepted");
        sent.push(req);
    }
    let want = pg::expected_records(&sent);
    assert!(want.len() > 2000, "{} records", want.len());
    let got_n = pg::wait_for_rows(&client, &schema, want.len() as i64, Duration::from_secs(60)).await;
    assert_eq!(got_n, want.len() as i64, "rows in llm_calls");

    let mut expected: Vec<serde_json::Value> = want.iter().map(pg::expected_json).collect();
    expected.sort_by(|a, b| {
        (a["trace_id"].as_str(), a["span_id"].as_str()).cmp(&(b["trace_id"].as_str(), b["span_id"].as_str()))
    });
    let got = pg::rows_json(&client, &schema).await;
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g, e, "row differs from its record");
    }
    // Priced rows carry exact decimals: the sum in SQL equals the sum of the records.
    let sql_total: rust_decimal::Decimal = client
        .query_one(
            &format!("SELECT coalesce(sum(cost_usd), 0) FROM {schema}.llm_calls"),
            &[],
        )
        .await
        .expect("sum")
        .get(0);
    let rec_total: rust_decimal::Decimal = want.iter().filter_map(|c| c.cost.as_ref()).map(|c| c.total).sum();
    assert_eq!(sql_total, rec_total);
    assert!(rec_total > rust_decimal::Decimal::ZERO);

    let m = scrape(running.metrics_addr).await;
    assert_eq!(sum(&m, "llmhub_postgres_rows_written_total", &[]), want.len() as f64);
    assert_eq!(sum(&m, "llmhub_postgres_dead_letters_total", &[]), 0.0);
    running.stop().await.expect("stop");

    // The layout: a hypertable with TimescaleDB, native daily partitions otherwise.
    match server {
        Server::Timescale => {
            let n: i64 = client
                .query_one(
                    "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_schema = $1 AND hypertable_name = 'llm_calls'",
                    &[&schema],
                )
                .await
                .expect("hypertables")
                .get(0);
            assert_eq!(n, 1, "llm_calls is a hypertable");
        }
        Server::Pg15 => {
            let parts: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'llm_calls'",
                    &[&schema],
                )
                .await
                .expect("partitions")
                .get(0);
            // The fixtures' days, the realistic batches' day, and a week ahead of today.
            assert!(parts >= 8, "{parts} partitions");
        }
    }
    let version: i32 = client
        .query_one(
            &format!("SELECT max(version) FROM {schema}.llmhub_schema_migrations"),
            &[],
        )
        .await
        .expect("migrations")
        .get(0);
    assert_eq!(version, 1);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh)"]
async fn pg15_rows_equal_records_field_by_field() {
    rows_equal_records(Server::Pg15, "rows_pg15").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 17 + TimescaleDB (scripts/servers.sh)"]
async fn timescale_rows_equal_records_field_by_field() {
    rows_equal_records(Server::Timescale, "rows_ts").await;
}

/// Rows the database refuses go to the dead-letter file with its message; their batch-mates are
/// written. A batch replayed whole (a retry after a lost acknowledgement) adds no row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh)"]
async fn rejected_rows_are_dead_lettered_and_replays_add_nothing() {
    let url = Server::Pg15.url();
    let client = pg::connect(&url).await;
    let schema = pg::fresh_schema(&client, "deadletter").await;
    let dir = tmpdir("deadletter");
    let dead = dir.join("dead.jsonl");
    let mut cfg = sink_config(&url, &schema);
    cfg.dead_letter_file = Some(dead.clone());
    cfg.batch_linger_ms = 300;
    cfg.pool_size = 1;

    // Create the table, then add a rule the sink does not know about.
    let running = start(&with_sink(cfg.clone())).await;
    let mut grpc = grpc_channel(&running.grpc_addr.expect("grpc").to_string()).await;
    let warmup = realistic_request(10, 1);
    export(&mut grpc, &warmup).await.expect("accepted");
    pg::wait_for_rows(&client, &schema, 1, Duration::from_secs(30)).await;
    client
        .batch_execute(&format!(
            "ALTER TABLE {schema}.llm_calls ADD CONSTRAINT no_poison CHECK (request_model IS DISTINCT FROM 'poison-model')"
        ))
        .await
        .expect("constraint");
    let before = pg::counts(&client, &schema).await.0;

    let mut req = realistic_request(200, 2);
    let mut poisoned = Vec::new();
    for (k, span) in req.resource_spans[0].scope_spans[0].spans.iter_mut().enumerate() {
        if k % 50 == 7 {
            for kv in span.attributes.iter_mut() {
                if kv.key == "gen_ai.request.model" {
                    kv.value = Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                        value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                            "poison-model".into(),
                        )),
                    });
                    poisoned.push(hex::encode(&span.span_id));
                }
            }
        }
    }
    assert!(!poisoned.is_empty());
    export(&mut grpc, &req).await.expect("accepted");
    let want_good = pg::expected_records(&[warmup.clone(), req.clone()])
        .iter()
        .filter(|c| c.request_model.as_deref() != Some("poison-model"))
        .count() as i64;
    let n = pg::wait_for_rows(&client, &schema, want_good, Duration::from_secs(30)).await;
    assert_eq!(n, want_good, "every good row written (had {before} before)");
    let m = scrape(running.metrics_addr).await;
    assert_eq!(
        sum(&m, "llmhub_postgres_dead_letters_total", &[]),
        poisoned.len() as f64
    );
    running.stop().await.expect("stop");

    let text = std::fs::read_to_string(&dead).expect("dead-letter file");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), poisoned.len());
    let mut got: Vec<String> = lines
        .iter()
        .map(|l| l["span_id"].as_str().expect("span id").to_owned())
        .collect();
    got.sort();
    poisoned.sort();
    assert_eq!(got, poisoned);
    for l in &lines {
        assert_eq!(l["sqlstate"], "23514");
        assert!(l["reason"].as_str().expect("reason").contains("no_poison"), "{l}");
    }

    // Replay: a second process sends the same spans again (its dedup memory is empty).
    client
        .batch_execute(&format!("ALTER TABLE {schema}.llm_calls DROP CONSTRAINT no_poison"))
        .await
        .expect("drop constraint");
    let running = start(&with_sink(cfg)).await;
    let mut grpc = grpc_channel(&running.grpc_addr.expect("grpc").to_string()).await;
    export(&mut grpc, &warmup).await.expect("accepted");
    export(&mut grpc, &req).await.expect("accepted");
    let all = want_good + poisoned.len() as i64;
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = scrape(running.metrics_addr).await;
        let done =
            sum(&m, "llmhub_postgres_rows_written_total", &[]) + sum(&m, "llmhub_postgres_rows_duplicate_total", &[]);
        if done >= (all) as f64 || std::time::Instant::now() > until {
            assert_eq!(
                sum(&m, "llmhub_postgres_rows_written_total", &[]),
                poisoned.len() as f64,
                "only the dead-lettered rows are new"
            );
            assert_eq!(sum(&m, "llmhub_postgres_rows_duplicate_total", &[]), want_good as f64);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pg::counts(&client, &schema).await, (all, all), "no row twice");
    running.stop().await.expect("stop");
    let _ = std::fs::remove_dir_all(&dir);
}

/// With the database unreachable and a small memory queue, the receivers refuse with OTLP's
/// retryable statuses: gRPC RESOURCE_EXHAUSTED with RetryInfo, HTTP 429 with Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_with_retryable_statuses() {
    // Port 9 (discard) on loopback: nothing listens, connections are refused at once.
    let mut cfg = sink_config("postgres://llmhub@127.0.0.1:9/none", "public");
    cfg.queue = QueueConfig {
        max_memory_bytes: 64 * 1024,
        ..QueueConfig::default()
    };
    let running = start(&with_sink(cfg)).await;
    let mut grpc = grpc_channel(&running.grpc_addr.expect("grpc").to_string()).await;
    let mut accepted = 0;
    let status = loop {
        match export(&mut grpc, &realistic_request(50, 100 + accepted)).await {
            Ok(_) => accepted += 1,
            Err(s) => break s,
        }
        assert!(accepted < 100, "never refused");
    };
    assert!(accepted >= 1, "the first requests fit");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("queue is full"), "{}", status.message());
    let details = RpcStatus::decode(status.details()).expect("google.rpc.Status details");
    let info = details
        .details
        .iter()
        .find(|a| a.type_url == RETRY_INFO_URL)
        .expect("RetryInfo present");
    let delay = RetryInfo::decode(info.value.as_slice())
        .expect("RetryInfo")
        .retry_delay
        .expect("delay");
    assert!(delay.seconds >= 1);

    let http: SocketAddr = running.http_addr.expect("http");
    let r = reqwest::Client::new()
        .post(format!("http://{http}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(realistic_request(5, 999).encode_to_vec())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let body = RpcStatus::decode(r.bytes().await.expect("body")).expect("status body");
    assert_eq!(body.code, 8);

    // The writers keep retrying the unreachable database meanwhile, and say so.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = scrape(running.metrics_addr).await;
        // The queue gauges are refreshed every second.
        if (sum(&m, "llmhub_postgres_retries_total", &[("llmhub_reason", "connection")]) >= 2.0
            && sum(&m, "llmhub_postgres_queue_oldest_age_seconds", &[]) > 0.0)
            || std::time::Instant::now() > until
        {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(sum(&m, "llmhub_postgres_retries_total", &[("llmhub_reason", "connection")]) >= 2.0);
    assert!(
        sum(
            &m,
            "llmhub_receiver_spans_refused_total",
            &[("llmhub_reason", "queue_full")]
        ) >= 55.0
    );
    assert!(sum(&m, "llmhub_postgres_queue_rows", &[]) >= 50.0);
    assert!(sum(&m, "llmhub_postgres_queue_oldest_age_seconds", &[]) > 0.0);
    running.stop().await.expect("stop");
}

/// Stop the database for 30 s under steady load and start it again: every record arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh); stops and restarts it"]
async fn a_30_second_database_outage_loses_and_duplicates_nothing() {
    let server = Server::Pg15;
    let url = server.url();
    let schema = {
        let client = pg::connect(&url).await;
        pg::fresh_schema(&client, "outage").await
    };
    let dir = tmpdir("outage");
    let mut cfg = sink_config(&url, &schema);
    cfg.queue = QueueConfig {
        directory: Some(dir.clone()),
        ..QueueConfig::default()
    };
    let running = start(&with_sink(cfg)).await;
    let addr = running.grpc_addr.expect("grpc").to_string();
    let load = tokio::spawn(async move {
        let mut grpc = grpc_channel(&addr).await;
        let mut sent = Vec::new();
        let started = std::time::Instant::now();
        let mut seed = 50_000;
        while started.elapsed() < Duration::from_secs(42) {
            let req = realistic_request(20, seed);
            seed += 1;
            export(&mut grpc, &req)
                .await
                .expect("every request accepted during the outage");
            sent.push(req);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sent
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.control("stop");
    let stopped_at = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let m = scrape(running.metrics_addr).await;
    let queued = sum(&m, "llmhub_postgres_queue_rows", &[]);
    let disk = sum(&m, "llmhub_postgres_queue_disk_bytes", &[]);
    server.control("start");
    eprintln!(
        "database down for {:?}; {queued} rows queued, {disk} bytes on disk",
        stopped_at.elapsed()
    );
    assert!(queued > 1000.0, "rows waited in the queue: {queued}");
    assert!(disk > 0.0);
    let sent = load.await.expect("load");
    let want = pg::expected_records(&sent);
    let client = pg::connect(&url).await;
    let n = pg::wait_for_rows(&client, &schema, want.len() as i64, Duration::from_secs(90)).await;
    assert_eq!(n, want.len() as i64);
    assert_eq!(pg::counts(&client, &schema).await, (n, n), "none duplicated");
    let rows: BTreeSet<(Vec<u8>, Vec<u8>)> = client
        .query(&format!("SELECT trace_id, span_id FROM {schema}.llm_calls"), &[])
        .await
        .expect("ids")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: BTreeSet<(Vec<u8>, Vec<u8>)> =
        want.iter().map(|c| (c.trace_id.to_vec(), c.span_id.to_vec())).collect();
    assert_eq!(rows, expected, "exactly the records sent");
    let m = scrape(running.metrics_addr).await;
    assert!(sum(&m, "llmhub_postgres_retries_total", &[("llmhub_reason", "connection")]) >= 1.0);
    running.stop().await.expect("stop");
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("cleanup");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kill -9 llmhub under load with `durability: wal`, start it again: every span whose request was
/// acknowledged is in the database, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 17 + TimescaleDB (scripts/servers.sh)"]
async fn kill_9_under_load_with_wal_keeps_every_acknowledged_span() {
    let server = Server::Timescale;
    let url = server.url();
    let client = pg::connect(&url).await;
    let schema = pg::fresh_schema(&client, "kill9").await;
    let dir = tmpdir("kill9");
    let config = dir.join("llmhub.yaml");
    std::fs::write(
        &config,
        format!(
            "exporters:\n  postgres:\n    url: {url}\n    schema: {schema}\n    batch_linger_ms: 50\n    retry_initial_ms: 50\n    retry_max_ms: 1000\n    queue:\n      directory: {}\n      durability: wal\nservice:\n  pipelines:\n    traces:\n      exporters: [prometheus, postgres]\n",
            dir.join("queue").display()
        ),
    )
    .expect("config");
    let exe = env!("CARGO_BIN_EXE_llmhub");
    let cfg_arg = config.display().to_string();
    let mut args = vec!["--config", cfg_arg.as_str()];
    args.extend(llmhub::testkit::LOOPBACK_EPHEMERAL);
    let mut first = llmhub::testkit::spawn_serve(exe, &args, None).expect("llmhub starts");
    let addr = first.grpc.clone();
    // Load from two clients; each remembers what was acknowledged.
    let mut clients = Vec::new();
    for c in 0..2u64 {
        let addr = addr.clone();
        clients.push(tokio::spawn(async move {
            let mut grpc = grpc_channel(&addr).await;
            let mut acked = Vec::new();
            for k in 0..100_000u64 {
                let req = realistic_request(50, 900_000 + c * 100_000 + k);
                match export(&mut grpc, &req).await {
                    Ok(_) => acked.push(req),
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    // Half-way the database goes away too, so a backlog builds up that only the log holds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.control("stop");
    tokio::time::sleep(Duration::from_secs(2)).await;
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    server.control("start");
    let mut acked = Vec::new();
    for c in clients {
        acked.extend(c.await.expect("client"));
    }
    assert!(acked.len() > 20, "load ran: {} requests acknowledged", acked.len());
    let client = pg::connect(&url).await;
    let in_db_at_kill = pg::counts(&client, &schema).await.0;

    let second = llmhub::testkit::spawn_serve(exe, &args, None).expect("llmhub restarts");
    let want = pg::expected_records(&acked);
    let want_ids: BTreeSet<(Vec<u8>, Vec<u8>)> =
        want.iter().map(|c| (c.trace_id.to_vec(), c.span_id.to_vec())).collect();
    let until = std::time::Instant::now() + Duration::from_secs(90);
    let missing = loop {
        let rows: BTreeSet<(Vec<u8>, Vec<u8>)> = client
            .query(&format!("SELECT trace_id, span_id FROM {schema}.llm_calls"), &[])
            .await
            .expect("ids")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let missing = want_ids.difference(&rows).count();
        if missing == 0 || std::time::Instant::now() > until {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "{} acknowledged records, {in_db_at_kill} rows in the database at the kill, {missing} missing after the restart",
        want_ids.len()
    );
    assert_eq!(missing, 0, "acknowledged spans lost");
    assert!(
        (in_db_at_kill as usize) + 1000 < want_ids.len(),
        "a real backlog was replayed from the log"
    );
    let (n, distinct) = pg::counts(&client, &schema).await;
    assert_eq!(n, distinct, "no row twice");
    let mut second = second;
    let _ = second.child.kill();
    let _ = second.child.wait();
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("cleanup");
    let _ = std::fs::remove_dir_all(&dir);
}

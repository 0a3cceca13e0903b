//! The PostgreSQL/TimescaleDB sink against real servers: PostgreSQL 15 on the host and
//! PostgreSQL 17 + TimescaleDB in the chroot (`scripts/servers.sh`). Spans go in over real OTLP
//! (gRPC and HTTP/JSON); rows come out of `llm_calls` and are compared field by field with the
//! records the processor makes of the same spans.
//!
//! These tests need the servers, so they are `#[ignore]`d for a bare `cargo test`; the README's
//! test command starts the servers and runs them with `--include-ignored`. The tests that stop the
//! servers are in `postgres_faults.rs`.

mod common;

use common::pg::{self, export, grpc_channel, sink_config, tmpdir, with_sink, Server};
use common::{fixture_requests, post_otlp, scrape, start, sum};
use llmhub::receivers::otlp::answer::{RetryInfo, RpcStatus, RETRY_INFO_URL};
use llmhub_exporters::postgres::PostgresConfig;
use llmhub_exporters::queue::QueueConfig;
use llmhub_testkit::realistic_request;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// N spans in, exactly N rows out, each equal field by field to the processor's record.
async fn rows_equal_records(server: Server, name: &str) {
    let url = server.url();
    let client = pg::connect(&url).await;
    let schema = pg::fresh_schema(&client, name).await;
    client.batch_execute("SET TIME ZONE 'UTC'").await.expect("UTC session");
    let test_start = now_secs();
    let running = start(&with_sink(sink_config(&url, &schema))).await;
    let http = format!("http://{}/v1/traces", running.http_addr.expect("http"));
    let mut grpc = grpc_channel(&running.grpc_addr.expect("grpc").to_string()).await;

    // Every dialect fixture over OTLP/HTTP JSON, then realistic batches over gRPC.
    let mut sent: Vec<ExportTraceServiceRequest> = Vec::new();
    for (path, body) in fixture_requests() {
        assert_eq!(post_otlp(&http, "application/json", body.clone()).await, 200, "{path}");
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

    pg::assert_rows_are(&client, &schema, &want).await;
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
            // One partition per day of the rows and per day from today to a week ahead (the
            // default `partitions_ahead_days`), named and bounded by that UTC day.
            let mut days: std::collections::BTreeSet<i64> = want
                .iter()
                .map(|r| (r.start_unix_nano / 86_400_000_000_000) as i64)
                .collect();
            let today_at_start = (test_start / 86_400) as i64;
            days.extend(today_at_start..=today_at_start + 7);
            let rows = client
                .query(
                    "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
                       JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace
                       JOIN pg_class c ON c.oid = i.inhrelid
                      WHERE n.nspname = $1 AND p.relname = 'llm_calls' ORDER BY 1",
                    &[&schema],
                )
                .await
                .expect("partitions");
            let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            let iso = |d: i64| {
                let (y, m, dd) = llmhub_core::timefmt::civil_from_days(d);
                format!("{y:04}-{m:02}-{dd:02}")
            };
            let partition = |d: i64| {
                (
                    format!("llm_calls_p{}", iso(d).replace('-', "")),
                    format!(
                        "FOR VALUES FROM ('{} 00:00:00+00') TO ('{} 00:00:00+00')",
                        iso(d),
                        iso(d + 1)
                    ),
                )
            };
            let want_parts: Vec<(String, String)> = days.iter().map(|d| partition(*d)).collect();
            // (A UTC midnight during the test lets the sink add the next day too.)
            let next = partition(today_at_start + 8);
            let got_without_next: Vec<(String, String)> = got.iter().filter(|p| **p != next).cloned().collect();
            assert_eq!(got_without_next, want_parts);
            if got.len() != want_parts.len() {
                assert!(
                    now_secs() / 86_400 > test_start / 86_400,
                    "{:?} only after midnight",
                    next.0
                );
            }
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
    assert_eq!(version, 2);
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
    // Readiness names the full queue first (requests are refused), not only the failing writes.
    let r = reqwest::get(format!("http://{}/readyz", running.metrics_addr))
        .await
        .expect("readyz");
    assert_eq!(r.status(), 503);
    let why = r.text().await.expect("body");
    assert!(
        why.starts_with("not ready: postgres sink: the postgres queue is full (") && why.contains("limit 65536)"),
        "{why}"
    );
    running.stop().await.expect("stop");
}

fn tls_dir() -> PathBuf {
    PathBuf::from(std::env::var("LLMHUB_PG15_DIR").expect("LLMHUB_PG15_DIR (scripts/servers.sh env)")).join("tls")
}

fn pg15_port() -> String {
    std::env::var("LLMHUB_PG15_PORT").expect("LLMHUB_PG15_PORT (scripts/servers.sh env)")
}

/// Sends one realistic batch through a sink configured with `pg` and returns the rows written
/// (after at most `wait`) and the connection-retry count.
async fn write_through(pg: PostgresConfig, seed: u64, wait: Duration) -> (i64, f64) {
    let admin = pg::connect(&Server::Pg15.url()).await;
    let schema = pg.schema.clone();
    client_drop_schema(&admin, &schema).await;
    let running = start(&with_sink(pg)).await;
    let mut grpc = grpc_channel(&running.grpc_addr.expect("grpc").to_string()).await;
    export(&mut grpc, &realistic_request(20, seed)).await.expect("accepted");
    let want = pg::expected_records(&[realistic_request(20, seed)]).len() as i64;
    let until = std::time::Instant::now() + wait;
    let mut n = 0;
    while std::time::Instant::now() < until {
        n = admin
            .query_one(&format!("SELECT count(*) FROM {schema}.llm_calls"), &[])
            .await
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0);
        if n >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if n > 0 {
        // The sink's connection is still open: it must be encrypted.
        let ssl: bool = admin
            .query_one(
                "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'llmhub' AND a.usename IN ('llmhub_pw', 'llmhub_cert')",
                &[],
            )
            .await
            .expect("pg_stat_ssl")
            .get(0);
        assert!(ssl, "the sink's connections use TLS");
        assert_eq!(n, want);
    }
    let m = scrape(running.metrics_addr).await;
    running.stop().await.expect("stop");
    client_drop_schema(&admin, &schema).await;
    (
        n,
        sum(&m, "llmhub_postgres_retries_total", &[("llmhub_reason", "connection")]),
    )
}

async fn client_drop_schema(c: &tokio_postgres::Client, schema: &str) {
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .expect("drop schema");
}

/// TLS with the server checked against the test CA: a password user (password from a file,
/// libpq-style `sslmode=verify-full&sslrootcert=`), a client-certificate user, and a refusal when
/// the server's certificate cannot be verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 with TLS (scripts/servers.sh)"]
async fn tls_with_password_or_client_certificate() {
    let tls = tls_dir();
    let port = pg15_port();
    let dir = tmpdir("tls");
    let pw = dir.join("password");
    std::fs::write(&pw, "llmhub-test-password\n").expect("password file");

    let mut by_password = sink_config(
        &format!(
            "postgres://llmhub_pw@localhost:{port}/llmhub_test?sslmode=verify-full&sslrootcert={}",
            tls.join("ca.crt").display()
        ),
        "t_tls_pw",
    );
    by_password.password_file = Some(pw.clone());
    let (n, _) = write_through(by_password, 5_001, Duration::from_secs(20)).await;
    assert!(n > 0, "password over verified TLS writes rows");

    let mut by_cert = sink_config(
        &format!("postgres://llmhub_cert@localhost:{port}/llmhub_test?sslmode=require"),
        "t_tls_cert",
    );
    by_cert.tls = llmhub_exporters::postgres::config::TlsConfig {
        ca_file: Some(tls.join("ca.crt")),
        cert_file: Some(tls.join("client.crt")),
        key_file: Some(tls.join("client.key")),
        ..Default::default()
    };
    let (n, _) = write_through(by_cert, 5_002, Duration::from_secs(20)).await;
    assert!(n > 0, "client-certificate authentication writes rows");

    // The public root set does not know the test CA: the handshake fails, nothing is written.
    let mut unverifiable = sink_config(
        &format!("postgres://llmhub_pw@localhost:{port}/llmhub_test?sslmode=require"),
        "t_tls_bad",
    );
    unverifiable.password_file = Some(pw);
    unverifiable.tls.verify = llmhub_exporters::postgres::config::TlsVerify::Full;
    let (n, retries) = write_through(unverifiable, 5_003, Duration::from_secs(3)).await;
    assert_eq!(n, 0);
    assert!(retries >= 1.0, "the failed handshakes are retried and counted");
    let _ = std::fs::remove_dir_all(&dir);
}

/// No connection string in the config: the libpq environment variables are used (here by a real
/// `llmhub serve` process, TLS verified through `PGSSLMODE`/`PGSSLROOTCERT`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 with TLS (scripts/servers.sh)"]
async fn connection_settings_from_the_libpq_environment() {
    let admin = pg::connect(&Server::Pg15.url()).await;
    client_drop_schema(&admin, "t_env").await;
    let dir = tmpdir("env");
    let config = dir.join("llmhub.yaml");
    std::fs::write(
        &config,
        "exporters:\n  postgres:\n    schema: t_env\n    batch_linger_ms: 50\nservice:\n  pipelines:\n    traces:\n      exporters: [prometheus, postgres]\n",
    )
    .expect("config");
    let cfg_arg = config.display().to_string();
    let mut args = vec!["--config", cfg_arg.as_str()];
    args.extend(llmhub_testkit::LOOPBACK_EPHEMERAL);
    let ca = tls_dir().join("ca.crt");
    let env = [
        ("PGHOST", "localhost".to_owned()),
        ("PGPORT", pg15_port()),
        ("PGUSER", "llmhub_pw".to_owned()),
        ("PGPASSWORD", "llmhub-test-password".to_owned()),
        ("PGDATABASE", "llmhub_test".to_owned()),
        ("PGSSLMODE", "verify-full".to_owned()),
        ("PGSSLROOTCERT", ca.display().to_string()),
    ];
    let mut child =
        llmhub_testkit::spawn_serve_with_env(env!("CARGO_BIN_EXE_llmhub"), &args, None, &env).expect("llmhub starts");
    let mut grpc = grpc_channel(&child.grpc).await;
    let req = realistic_request(30, 5_100);
    export(&mut grpc, &req).await.expect("accepted");
    let want = pg::expected_records(&[req]).len() as i64;
    let n = pg::wait_for_rows(&admin, "t_env", want, Duration::from_secs(20)).await;
    child.kill();
    assert_eq!(n, want);
    client_drop_schema(&admin, "t_env").await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `llmhub demo --postgres URL`: one command fills the database and says how to query it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 (scripts/servers.sh)"]
async fn demo_with_postgres_fills_the_database() {
    let url = Server::Pg15.url();
    let admin = pg::connect(&url).await;
    // The demo writes into the default schema of a database of its own.
    let demo_url = pg::fresh_database(Server::Pg15, "llmhub_demo").await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_llmhub"))
        .args(["demo", "--postgres", &demo_url, "--duration", "4", "--rate", "40"])
        .args(["--grpc-port", "0", "--http-port", "0", "--metrics-port", "0"])
        .output()
        .await
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("SQL:") && stdout.contains("FROM llm_calls"), "{stdout}");
    let c = pg::connect(&demo_url).await;
    let (rows, priced): (i64, i64) = {
        let r = c
            .query_one("SELECT count(*), count(cost_usd) FROM public.llm_calls", &[])
            .await
            .expect("rows");
        (r.get(0), r.get(1))
    };
    assert!(rows > 50 && priced > 10, "{rows} rows, {priced} priced");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!("rows in PostgreSQL {rows}")),
        "final line {last:?}, {rows} rows"
    );
    drop(c);
    admin
        .batch_execute("DROP DATABASE llmhub_demo WITH (FORCE)")
        .await
        .expect("cleanup");
}

/// A call costs the same in SQL (`llm_cost`, llm_analytics) as in the processor, to the last
/// decimal: every priced row the sink wrote is priced again in SQL and compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 with llm_analytics installed (scripts/test.sh)"]
async fn sql_cost_equals_the_processors_cost() {
    let url = Server::Pg15.url();
    let admin = pg::connect(&url).await;
    let db = pg::fresh_database(Server::Pg15, "llmhub_cost").await;
    let c = pg::connect(&db).await;
    c.batch_execute("CREATE EXTENSION llm_analytics")
        .await
        .expect("extension installed by cargo pgrx");
    let running = start(&with_sink(sink_config(&db, "public"))).await;
    let mut grpc = grpc_channel(&running.grpc_addr.expect("grpc").to_string()).await;
    let mut sent = Vec::new();
    for seed in 0..6 {
        let req = realistic_request(200, 8_800 + seed);
        export(&mut grpc, &req).await.expect("accepted");
        sent.push(req);
    }
    let want = pg::expected_records(&sent).len() as i64;
    assert_eq!(
        pg::wait_for_rows(&c, "public", want, Duration::from_secs(30)).await,
        want
    );
    running.stop().await.expect("stop");
    let r = c
        .query_one(
            "SELECT count(*) FILTER (WHERE cost_usd IS NOT NULL),
                    count(*) FILTER (WHERE cost_usd IS NOT NULL AND llm_cost(
                        provider, coalesce(response_model, request_model), time,
                        input_uncached_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
                        output_tokens, reasoning_tokens, service_tier) IS DISTINCT FROM cost_usd),
                    max(catalog_version) = llm_price_catalog_version()
             FROM llm_calls",
            &[],
        )
        .await
        .expect("price again in SQL");
    let (priced, different, same_catalog): (i64, i64, bool) = (r.get(0), r.get(1), r.get(2));
    assert!(priced > 500, "{priced} priced rows");
    assert_eq!(different, 0, "rows whose SQL cost differs from the processor's");
    assert!(same_catalog);
    // Repricing every row with the same catalog changes nothing, to the last digit: llm_price gives
    // each row the status, total, per-bucket costs and rule the processor gave it.
    let costs = "SELECT string_agg(concat_ws(' ', price_status, cost_usd::text, cost_input_uncached_usd::text, cost_cache_read_usd::text,
                     cost_cache_write_usd::text, cost_cache_write_1h_usd::text, cost_output_usd::text, cost_reasoning_usd::text,
                     cost_request_usd::text, catalog_version, price_rule), E'\\n' ORDER BY trace_id, span_id) FROM llm_calls";
    let before: String = c.query_one(costs, &[]).await.expect("costs").get(0);
    let r = c
        .query_one(
            "SELECT rows_repriced, rows_changed FROM llm_reprice((SELECT min(time) FROM llm_calls), (SELECT max(time) FROM llm_calls) + interval '1 second')",
            &[],
        )
        .await
        .expect("reprice");
    let (repriced, changed): (i64, i64) = (r.get(0), r.get(1));
    assert!(repriced >= priced, "{repriced} rows repriced");
    assert_eq!(changed, 0, "rows whose SQL price differs from the processor's");
    let after: String = c.query_one(costs, &[]).await.expect("costs").get(0);
    assert_eq!(before, after);

    // A least-privilege writer (llm_grant_writer: INSERT, SELECT of the key columns) writes with
    // the direct COPY and makes partitions through llm_create_partitions.
    c.batch_execute(
        "DROP ROLE IF EXISTS llmhub_e2e_writer; CREATE ROLE llmhub_e2e_writer LOGIN;
         SELECT llm_grant_writer('llmhub_e2e_writer');",
    )
    .await
    .expect("writer role");
    let writer_url = db.replace("postgres://postgres@", "postgres://llmhub_e2e_writer@");
    let running = start(&with_sink(sink_config(&writer_url, "public"))).await;
    let mut grpc = grpc_channel(&running.grpc_addr.expect("grpc").to_string()).await;
    let mut more = Vec::new();
    for seed in 0..2 {
        let req = realistic_request(200, 9_900 + seed);
        export(&mut grpc, &req).await.expect("accepted");
        more.push(req);
    }
    let total = want + pg::expected_records(&more).len() as i64;
    assert_eq!(
        pg::wait_for_rows(&c, "public", total, Duration::from_secs(30)).await,
        total,
        "the writer's rows arrived"
    );
    running.stop().await.expect("stop");
    let writer = pg::connect(&writer_url).await;
    let denied = writer
        .query_one("SELECT tenant, cost_usd FROM llm_calls LIMIT 1", &[])
        .await
        .expect_err("the writer reads no value but the keys");
    assert_eq!(
        denied.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
        "{denied}"
    );
    writer
        .query_one("SELECT count(*) FROM llm_calls_view", &[])
        .await
        .expect_err("nor the readers' view");
    c.batch_execute("DROP OWNED BY llmhub_e2e_writer; DROP ROLE llmhub_e2e_writer")
        .await
        .ok();

    // Bad arguments are named.
    let err = c
        .query_one("SELECT llm_cost('openai', 'gpt-4o', now(), -5)", &[])
        .await
        .expect_err("negative tokens");
    let msg = err.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert!(msg.contains("input_uncached must not be negative, got -5"), "{msg}");
    let unknown: Option<rust_decimal::Decimal> = c
        .query_one("SELECT llm_cost('openai', 'no-such-model', now(), 100)", &[])
        .await
        .expect("unknown model")
        .get(0);
    assert_eq!(unknown, None, "unknown model: NULL, never 0");
    drop(c);
    admin
        .batch_execute("DROP DATABASE llmhub_cost WITH (FORCE)")
        .await
        .expect("cleanup");
}

/// Per UTC hour of `llm_calls`, the rows, errors, cost and output tokens, beside what the hourly
/// and daily rollups hold for it: the hours where they differ (an empty list when the rollups hold
/// every row).
async fn rollups_differ(c: &tokio_postgres::Client) -> Vec<String> {
    c.query(
        "WITH raw AS (SELECT date_trunc('hour', time, 'UTC') AS h, count(*) AS n, count(*) FILTER (WHERE status = 'error') AS e,
                             coalesce(sum(cost_usd), 0) AS usd, coalesce(sum(output_tokens) FILTER (WHERE counts_usage), 0) AS out
                        FROM llm_calls GROUP BY 1),
              hourly AS (SELECT bucket AS h, sum(calls) AS n, sum(errors) AS e, sum(cost_usd) AS usd, sum(output_tokens) AS out
                           FROM llm_rollup_1h GROUP BY 1),
              raw_d AS (SELECT date_trunc('day', h, 'UTC') AS d, sum(n) AS n, sum(usd) AS usd FROM raw GROUP BY 1),
              daily AS (SELECT bucket AS d, sum(calls) AS n, sum(cost_usd) AS usd FROM llm_rollup_1d GROUP BY 1)
         SELECT concat_ws(' ', 'hour', h, raw.n, hourly.n, raw.usd, hourly.usd)
           FROM raw FULL JOIN hourly USING (h)
          WHERE (raw.n, raw.e, raw.usd, raw.out) IS DISTINCT FROM (hourly.n, hourly.e, hourly.usd, hourly.out)
         UNION ALL
         SELECT concat_ws(' ', 'day', d, raw_d.n, daily.n, raw_d.usd, daily.usd)
           FROM raw_d FULL JOIN daily USING (d)
          WHERE (raw_d.n, raw_d.usd) IS DISTINCT FROM (daily.n, daily.usd)",
        &[],
    )
    .await
    .expect("compare")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Rows the sink writes reach the rollups with nothing but `llm_refresh_rollups()`, however old
/// their time: the first refresh of a database that already holds rows, then rows a day older
/// than anything rolled up (a backfill) and rows in hours already rolled up (late arrivals), as
/// the least-privileged writer. The same writes without the sink's note of the hours it wrote
/// (INSERT on llm_rollup_pending revoked) stay out of the rollups: the note is what brings them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 with llm_analytics installed (scripts/test.sh)"]
async fn rollups_take_every_row_the_sink_wrote() {
    let url = Server::Pg15.url();
    let admin = pg::connect(&url).await;
    let db = pg::fresh_database(Server::Pg15, "llmhub_rollup_rows").await;
    let c = pg::connect(&db).await;
    c.batch_execute(
        "CREATE EXTENSION llm_analytics;
         DROP ROLE IF EXISTS llmhub_rollup_writer; CREATE ROLE llmhub_rollup_writer LOGIN;
         SELECT llm_grant_writer('llmhub_rollup_writer');",
    )
    .await
    .expect("extension and writer");
    let writer_url = db.replace("postgres://postgres@", "postgres://llmhub_rollup_writer@");
    let base = realistic_request(400, 31).encode_to_vec();
    let restamp = llmhub_testkit::Restamp::new(&base);
    let mut rows = 0i64;
    // Writes rounds of the request (round k is k hours later, with new trace ids) and waits for them.
    let write = |rounds: Vec<u64>, rows_before: i64| {
        let writer_url = writer_url.clone();
        let requests: Vec<Vec<u8>> = rounds.iter().map(|&k| restamp.round(k)).collect();
        async move {
            let running = start(&with_sink(sink_config(&writer_url, "public"))).await;
            let mut grpc = grpc_channel(&running.grpc_addr.expect("grpc").to_string()).await;
            let mut decoded = Vec::new();
            for r in &requests {
                let req = ExportTraceServiceRequest::decode(&r[..]).expect("request");
                export(&mut grpc, &req).await.expect("accepted");
                decoded.push(req);
            }
            let want = rows_before + pg::expected_records(&decoded).len() as i64;
            let c = pg::connect(&writer_url.replace("llmhub_rollup_writer@", "postgres@")).await;
            assert_eq!(
                pg::wait_for_rows(&c, "public", want, Duration::from_secs(30)).await,
                want
            );
            running.stop().await.expect("stop");
            want
        }
    };
    let refresh = || async {
        let r = c
            .query_one(
                "SELECT from_time::text, to_time::text, noted_hours FROM llm_refresh_rollups()",
                &[],
            )
            .await
            .expect("refresh");
        let (from, to, noted): (Option<String>, String, i64) = (r.get(0), r.get(1), r.get(2));
        assert!(from.as_deref().is_some_and(|f| f <= to.as_str()), "{from:?} .. {to}");
        noted
    };
    // Rows of two hours a year ago, written before any refresh.
    rows = write(vec![48, 50], rows).await;
    refresh().await;
    assert_eq!(rollups_differ(&c).await, Vec::<String>::new(), "the first refresh");
    // A backfill two days before anything rolled up, and late rows in the hour between the two.
    rows = write(vec![0, 49], rows).await;
    let pending: i64 = c
        .query_one("SELECT count(DISTINCT hour) FROM llm_rollup_pending", &[])
        .await
        .expect("notes")
        .get(0);
    assert!(pending >= 2, "{pending} hours noted");
    let noted = refresh().await;
    assert!(noted >= 2, "{noted} hours rebuilt from the notes");
    assert_eq!(rollups_differ(&c).await, Vec::<String>::new(), "backfill and late rows");
    let left: i64 = c
        .query_one("SELECT count(*) FROM llm_rollup_pending", &[])
        .await
        .expect("notes")
        .get(0);
    assert_eq!(left, 0, "the refresh took every note");
    // Without the note, the same kind of write stays out of the rollups.
    c.batch_execute("REVOKE INSERT ON llm_rollup_pending FROM llmhub_rollup_writer")
        .await
        .expect("revoke");
    rows = write(vec![51], rows).await;
    assert_eq!(refresh().await, 0);
    assert!(
        !rollups_differ(&c).await.is_empty(),
        "{rows} rows: the unnoted rows are missing"
    );
    drop(c);
    admin
        .batch_execute("DROP DATABASE llmhub_rollup_rows WITH (FORCE)")
        .await
        .expect("cleanup");
    admin
        .batch_execute("DROP ROLE llmhub_rollup_writer")
        .await
        .expect("cleanup");
}

/// The quick start's database (`llmhub demo --postgres`: the sink creates `llm_calls`) accepts
/// `CREATE EXTENSION llm_analytics` afterwards: the extension adopts the table with every row,
/// the rollups take them, and the sink goes on writing into it. A table whose columns differ is
/// refused with the difference named, and nothing is created.
async fn quick_start_database_accepts_the_extension(server: Server, db: &str) {
    let admin = pg::connect(&server.url()).await;
    let db_url = pg::fresh_database(server, db).await;
    let c = pg::connect(&db_url).await;
    if matches!(server, Server::Timescale) {
        c.batch_execute("SET client_min_messages = warning; CREATE EXTENSION timescaledb")
            .await
            .expect("timescaledb");
    }
    let send = |seed: u64| {
        let db_url = db_url.clone();
        async move {
            let running = start(&with_sink(sink_config(&db_url, "public"))).await;
            let mut grpc = grpc_channel(&running.grpc_addr.expect("grpc").to_string()).await;
            let req = realistic_request(300, seed);
            export(&mut grpc, &req).await.expect("accepted");
            (running, pg::expected_records(&[req]).len() as i64)
        }
    };
    // The sink alone makes llm_calls and writes.
    let (running, first) = send(61).await;
    assert_eq!(
        pg::wait_for_rows(&c, "public", first, Duration::from_secs(30)).await,
        first
    );
    running.stop().await.expect("stop");
    // A column of its own: refused, naming it, and nothing of the extension is left.
    c.batch_execute("ALTER TABLE llm_calls ADD COLUMN note text")
        .await
        .expect("column");
    let e = c
        .batch_execute("CREATE EXTENSION llm_analytics")
        .await
        .expect_err("other columns are refused");
    let msg = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_default();
    assert_eq!(
        msg,
        "llm_calls already exists and its columns are not the ones llm_analytics keeps: note text where the extension has (none)"
    );
    c.batch_execute(
        "ALTER TABLE llm_calls DROP COLUMN note; SET client_min_messages = warning; CREATE EXTENSION llm_analytics",
    )
    .await
    .expect("the sink's table is adopted");
    let member: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
              WHERE e.extname = 'llm_analytics' AND d.objid = 'llm_calls'::regclass AND d.deptype = 'e'",
            &[],
        )
        .await
        .expect("membership")
        .get(0);
    assert_eq!(member, 1, "llm_calls belongs to the extension");
    // The sink's copy of llm_create_partitions (its migration 2) gave way to the extension's.
    let owners: Vec<bool> = c
        .query(
            "SELECT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                             WHERE e.extname = 'llm_analytics' AND d.objid = p.oid AND d.deptype = 'e')
               FROM pg_proc p WHERE p.proname = 'llm_create_partitions'",
            &[],
        )
        .await
        .expect("partition functions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(owners, vec![true], "one llm_create_partitions, the extension's");
    assert_eq!(
        pg::wait_for_rows(&c, "public", first, Duration::from_secs(1)).await,
        first
    );
    // The rollups take the rows, and the sink writes on into the adopted table.
    c.batch_execute("SELECT llm_refresh_rollups()").await.expect("refresh");
    assert_eq!(rollups_differ(&c).await, Vec::<String>::new(), "the adopted rows");
    let (running, second) = send(62).await;
    assert_eq!(
        pg::wait_for_rows(&c, "public", first + second, Duration::from_secs(30)).await,
        first + second
    );
    running.stop().await.expect("stop");
    // The sink noted the hours it wrote (the extension's llm_rollup_pending): a refresh takes them.
    c.batch_execute("SELECT llm_refresh_rollups()").await.expect("refresh");
    assert_eq!(
        rollups_differ(&c).await,
        Vec::<String>::new(),
        "rows written after the adoption"
    );
    drop(c);
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 with llm_analytics installed (scripts/test.sh)"]
async fn quick_start_database_accepts_the_extension_on_postgresql() {
    quick_start_database_accepts_the_extension(Server::Pg15, "llmhub_adopt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 17 + TimescaleDB with llm_analytics installed (scripts/test.sh)"]
async fn quick_start_database_accepts_the_extension_on_timescaledb() {
    quick_start_database_accepts_the_extension(Server::Timescale, "llmhub_adopt").await;
}

//! Tenant isolation tried as the roles users really connect with, on PostgreSQL 15 (native daily
//! partitions) and on PostgreSQL 17 + TimescaleDB (a hypertable with chunks): a database with the
//! `llm_analytics` extension, rows of three tenants written by llmhub's sink as the least-privileged
//! writer role (`llm_grant_writer`), the rollups refreshed, then a reader granted only `acme`
//! (`llm_grant_reader`) logs in and tries every path around the isolation. Each must show nothing
//! of `globex`: no row, no value, no tenant name. An operator (`llm_grant_operator`) and an
//! application role (`llm_grant_application`) are checked to see what they should, so the test can
//! fail.
//!
//! `#[ignore]`d for a bare `cargo test`; the README's test command installs the extension, starts
//! the servers and runs it.

mod common;

use common::pg::{self, export, grpc_channel, sink_config, with_sink, Server};
use common::start;
use futures_util::StreamExt;
use llmhub_testkit::realistic_request;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::{AsyncMessage, Client, NoTls};

/// What every check compares against: a string that appears in globex's data and nowhere else.
const SECRET: &str = "globex";

/// Connects as `user` to `url`'s server and database; notices (RAISE NOTICE) are kept.
async fn connect_as(url: &str, user: &str, options: Option<&str>) -> (Client, Arc<Mutex<Vec<String>>>) {
    let mut cfg: tokio_postgres::Config = url.parse().expect("url");
    cfg.user(user);
    if let Some(o) = options {
        cfg.options(o);
    }
    let (client, mut conn) = cfg.connect(NoTls).await.expect("the role logs in");
    let notices = Arc::new(Mutex::new(Vec::new()));
    let n = notices.clone();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notice(notice)) => n.lock().expect("notices").push(notice.message().to_owned()),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    (client, notices)
}

/// Every cell of every row of `sql` as text (NULL as ""), or the error's SQLSTATE.
async fn cells(c: &Client, sql: &str) -> Result<Vec<String>, String> {
    let wrapped = format!("SELECT row_to_json(q)::text FROM ({sql}) q");
    match c.query(&wrapped, &[]).await {
        Ok(rows) => Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect()),
        Err(e) => Err(e.code().map(|c| c.code().to_owned()).unwrap_or_else(|| e.to_string())),
    }
}

/// `sql` must be refused for lack of privilege.
async fn denied(c: &Client, sql: &str) {
    match cells(c, sql).await {
        Err(code) => assert_eq!(code, "42501", "{sql}: refused for privilege, got {code}"),
        Ok(rows) => panic!("{sql}: answered {} rows", rows.len()),
    }
}

/// `sql` must answer (or be refused), and show nothing of globex.
async fn nothing_of_globex(c: &Client, sql: &str) -> usize {
    match cells(c, sql).await {
        Ok(rows) => {
            let leak: Vec<&String> = rows.iter().filter(|r| r.contains(SECRET)).collect();
            assert!(
                leak.is_empty(),
                "{sql}: shows {SECRET}: {:?}",
                &leak[..leak.len().min(3)]
            );
            rows.len()
        }
        Err(code) => {
            assert_eq!(code, "42501", "{sql}: failed otherwise than for privilege: {code}");
            0
        }
    }
}

struct Setup {
    db_url: String,
    admin: Client,
    /// Rows per tenant, as the owner counts them.
    acme: i64,
    globex: i64,
}

async fn setup(server: Server, db: &str) -> Setup {
    let url = server.url();
    let root = pg::connect(&url).await;
    root.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await
        .expect("drop");
    root.batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create");
    for r in ["t_acme", "t_app", "t_op", "t_writer"] {
        let _ = root
            .batch_execute(&format!(
                "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{r}') THEN
                   EXECUTE 'DROP OWNED BY {r} CASCADE'; EXECUTE 'DROP ROLE {r}'; END IF; END $$"
            ))
            .await;
    }
    // (DROP OWNED runs per database; roles are per cluster and another database may still hold
    // grants: drop those databases' objects too.)
    let db_url = url.replace("/llmhub_test", &format!("/{db}"));
    let admin = pg::connect(&db_url).await;
    let ts = matches!(server, Server::Timescale);
    admin
        .batch_execute(&format!(
            "SET client_min_messages = warning; {} CREATE EXTENSION llm_analytics;
             CREATE ROLE t_acme LOGIN; SELECT llm_grant_reader('t_acme', 'acme');
             CREATE ROLE t_app LOGIN; SELECT llm_grant_application('t_app');
             CREATE ROLE t_op LOGIN; SELECT llm_grant_operator('t_op');
             CREATE ROLE t_writer LOGIN; SELECT llm_grant_writer('t_writer');",
            if ts { "CREATE EXTENSION timescaledb;" } else { "" }
        ))
        .await
        .expect("extension and roles");
    // The rows, by the sink connected as the writer.
    let writer_url = db_url.replace("postgres://postgres@", "postgres://t_writer@");
    let running = start(&with_sink(sink_config(&writer_url, "public"))).await;
    let mut grpc = grpc_channel(&running.grpc_addr.expect("grpc").to_string()).await;
    let mut sent = Vec::new();
    for seed in 0..6 {
        let req = realistic_request(100, 880_000 + seed);
        export(&mut grpc, &req).await.expect("accepted");
        sent.push(req);
    }
    let want = pg::expected_records(&sent).len() as i64;
    assert_eq!(
        pg::wait_for_rows(&admin, "public", want, Duration::from_secs(30)).await,
        want
    );
    running.stop().await.expect("stop");
    admin
        .batch_execute(
            "SELECT llm_refresh_rollups_range(now() - interval '30 days', now() + interval '1 day');
             SELECT llm_set_budget(100, 'acme'), llm_set_budget(100, 'globex'), llm_set_budget(5, 'globex', 'svc');
             ANALYZE;",
        )
        .await
        .expect("rollups and statistics");
    let per = |t: &'static str| {
        let admin = &admin;
        async move {
            admin
                .query_one("SELECT count(*) FROM llm_calls WHERE tenant = $1", &[&t])
                .await
                .expect("count")
                .get::<_, i64>(0)
        }
    };
    let (acme, globex) = (per("acme").await, per("globex").await);
    assert!(acme > 50 && globex > 50, "both tenants have rows: {acme} / {globex}");
    Setup {
        db_url,
        admin,
        acme,
        globex,
    }
}

/// Every relation of the database outside the system catalogs that holds rows, by name.
async fn relations(admin: &Client) -> Vec<String> {
    admin
        .query(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
                AND n.nspname NOT LIKE 'timescaledb_%' AND n.nspname <> '_timescaledb_catalog'
                AND n.nspname <> '_timescaledb_config' AND n.nspname <> '_timescaledb_cache'
              ORDER BY 1",
            &[],
        )
        .await
        .expect("relations")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn isolation_on(server: Server, db: &str) {
    let s = setup(server, db).await;
    let rels = relations(&s.admin).await;
    let chunks_or_partitions: Vec<&String> = rels
        .iter()
        .filter(|r| r.contains("_hyper_") || r.contains("llm_calls_p"))
        .collect();
    assert!(
        !chunks_or_partitions.is_empty(),
        "the storage is split ({}): {rels:?}",
        if matches!(server, Server::Timescale) {
            "chunks"
        } else {
            "partitions"
        }
    );
    // The owner sees globex everywhere the readers must not: the checks below can fail.
    let owner_sees = nothing_of_globex_count(&s.admin, "SELECT * FROM llm_calls").await;
    assert!(owner_sees > 0);

    let (acme, notices) = connect_as(&s.db_url, "t_acme", None).await;
    // 1. The table, every partition and chunk by name, every relation of the database.
    denied(&acme, "SELECT tenant FROM llm_calls").await;
    denied(&acme, "TABLE llm_calls").await;
    for r in &chunks_or_partitions {
        denied(&acme, &format!("SELECT * FROM {r}")).await;
    }
    for r in &rels {
        nothing_of_globex(&acme, &format!("SELECT * FROM {r}")).await;
    }
    // Its own rows are there.
    let mine: i64 = acme
        .query_one("SELECT count(*) FROM llm_calls_view WHERE tenant = 'acme'", &[])
        .await
        .expect("own rows")
        .get(0);
    assert_eq!(mine, s.acme);
    // 2. Selecting another tenant: SET, set_config, the connection's options.
    for widen in [
        "SET llmhub.tenant = 'globex'",
        "SELECT set_config('llmhub.tenant', 'globex', false)",
    ] {
        acme.batch_execute(widen).await.expect("a setting may be set");
        for r in &rels {
            nothing_of_globex(&acme, &format!("SELECT * FROM {r}")).await;
        }
        let n: i64 = acme
            .query_one("SELECT count(*) FROM llm_calls_view", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, 0, "{widen}: narrowed to nothing, never widened");
        acme.batch_execute("RESET llmhub.tenant").await.expect("reset");
    }
    let (via_options, _) = connect_as(&s.db_url, "t_acme", Some("-c llmhub.tenant=globex")).await;
    assert_eq!(nothing_of_globex(&via_options, "SELECT * FROM llm_calls_view").await, 0);
    // Stored budgets (before 3., whose owner calls grant t_acme the tenant 'nobody'): the reader
    // evaluates its tenant's, and the owner sees that globex's are there.
    let budgets = cells(&acme, "SELECT * FROM llm_budgets_status()")
        .await
        .expect("status");
    assert_eq!(budgets.len(), 1, "{budgets:?}");
    assert!(budgets[0].contains(r#""tenant":"acme""#), "{budgets:?}");
    assert_eq!(nothing_of_globex(&acme, "SELECT * FROM llm_budgets_status()").await, 1);
    let all = cells(&s.admin, "SELECT tenant FROM llm_budgets_status()")
        .await
        .expect("owner");
    assert_eq!(all.len(), 3, "{all:?}");
    // 3. Every function with a tenant argument (an input; a result column named tenant is not
    // one), naming globex.
    let with_tenant: Vec<String> = s
        .admin
        .query(
            "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'public' AND p.proname LIKE 'llm\\_%'
                AND EXISTS (SELECT 1 FROM unnest(p.proargnames, coalesce(p.proargmodes, array_fill('i'::\"char\", ARRAY[coalesce(cardinality(p.proargnames), 0)]))) a(name, mode)
                             WHERE a.name = 'tenant' AND a.mode IN ('i', 'b', 'v'))
              ORDER BY 1",
            &[],
        )
        .await
        .expect("functions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let calls = [
        (
            "llm_budget",
            "SELECT * FROM llm_budget(1000, now() - interval '30 days', now() + interval '1 day', tenant => 'globex')",
        ),
        ("llm_drop_budget", "SELECT llm_drop_budget('globex')"),
        ("llm_grant_reader", "SELECT llm_grant_reader('t_acme', 'globex')"),
        (
            "llm_grant_reading",
            "SELECT llm_grant_reading('t_acme', 'tenant', 'globex')",
        ),
        (
            "llm_latency_burn",
            "SELECT * FROM llm_latency_burn(0.001, 0.99, interval '5 minutes', interval '30 days', tenant => 'globex')",
        ),
        (
            "llm_multi_window_burn",
            "SELECT * FROM llm_multi_window_burn(0.99, interval '5 minutes', interval '30 days', tenant => 'globex')",
        ),
        ("llm_revoke_reader", "SELECT llm_revoke_reader('t_op', 'globex')"),
        ("llm_set_budget", "SELECT llm_set_budget(1, 'globex')"),
    ];
    assert_eq!(
        with_tenant,
        calls.iter().map(|c| c.0.to_owned()).collect::<Vec<_>>(),
        "every function with a tenant argument is tried"
    );
    for (name, sql) in calls {
        let owner = cells(&s.admin, &sql.replace("'globex'", "'nobody'")).await;
        let as_acme = cells(&acme, sql).await;
        if name.starts_with("llm_grant") || ["llm_revoke_reader", "llm_set_budget", "llm_drop_budget"].contains(&name) {
            assert_eq!(as_acme, Err("42501".to_owned()), "{sql}");
        } else {
            assert_eq!(as_acme, owner, "{sql}: what a tenant without rows gives");
        }
    }
    // 4. SECURITY DEFINER functions: each pins search_path with pg_temp last, and a reader may run
    // none (a temporary object shadowing a name is not found before the extension's).
    let definers = s
        .admin
        .query(
            "SELECT p.oid::regprocedure::text, array_to_string(p.proconfig, ' '), has_function_privilege('t_acme', p.oid, 'EXECUTE')
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prosecdef AND n.nspname = 'public'",
            &[],
        )
        .await
        .expect("definers");
    assert!(!definers.is_empty());
    for d in &definers {
        let (f, config, exec): (String, Option<String>, bool) = (d.get(0), d.get(1), d.get(2));
        let config = config.unwrap_or_default();
        assert!(
            config.contains("search_path=") && config.ends_with("pg_temp"),
            "{f}: {config}"
        );
        assert!(!exec, "{f} is not for readers");
    }
    acme.batch_execute("CREATE TEMP TABLE llm_calls (tenant text); INSERT INTO llm_calls VALUES ('x')")
        .await
        .expect("a temporary table of its own");
    denied(&acme, "SELECT llm_create_partitions(current_date, current_date)").await;
    acme.batch_execute("DROP TABLE pg_temp.llm_calls").await.expect("drop");
    // 5. COPY out.
    let copy_denied = acme
        .copy_out("COPY llm_calls TO STDOUT")
        .await
        .err()
        .and_then(|e| e.code().map(|c| c.code().to_owned()));
    assert_eq!(copy_denied.as_deref(), Some("42501"));
    let stream = acme
        .copy_out("COPY (SELECT * FROM llm_calls_view) TO STDOUT")
        .await
        .expect("copy of the view");
    let bytes: Vec<u8> = stream
        .map(|b| b.expect("copy data").to_vec())
        .collect::<Vec<_>>()
        .await
        .concat();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("acme") && !text.contains(SECRET));
    // 6. Statistics: the owner's pg_stats hold globex; the reader's none.
    let stats = "SELECT * FROM pg_stats WHERE schemaname NOT IN ('pg_catalog', 'information_schema')";
    assert!(cells(&s.admin, stats)
        .await
        .expect("stats")
        .iter()
        .any(|r| r.contains(SECRET)));
    nothing_of_globex(&acme, stats).await;
    // 7. EXPLAIN of its queries.
    for q in [
        "SELECT * FROM llm_calls_view",
        "SELECT * FROM llm_rollup_1h",
        "SELECT * FROM llm_rollup_top_traces_1h",
    ] {
        let plan: Vec<String> = acme
            .query(&format!("EXPLAIN (ANALYZE, VERBOSE, BUFFERS) {q}"), &[])
            .await
            .expect("explain")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(!plan.join("\n").contains(SECRET), "{q}: {plan:?}");
    }
    // 8. Views and functions of its own: a leaky function sees only its rows.
    acme.batch_execute(
        "CREATE FUNCTION pg_temp.leak(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
           $$ BEGIN RAISE NOTICE 'leak %', t; RETURN true; END $$;
         CREATE TEMP VIEW mine AS SELECT * FROM llm_calls_view;",
    )
    .await
    .expect("a function and a view of its own");
    for q in [
        "SELECT * FROM llm_calls_view WHERE pg_temp.leak(tenant)",
        "SELECT * FROM mine WHERE pg_temp.leak(tenant)",
        "SELECT * FROM llm_rollup_1h WHERE pg_temp.leak(tenant)",
        "SELECT * FROM llm_rollup_top_conversations_1h WHERE pg_temp.leak(conversation_id || tenant)",
    ] {
        nothing_of_globex(&acme, q).await;
    }
    let seen = notices.lock().expect("notices").clone();
    assert!(seen.iter().any(|n| n.contains("acme")), "the leak ran");
    assert!(!seen.iter().any(|n| n.contains(SECRET)), "{seen:?}");
    let create = acme
        .batch_execute("CREATE VIEW public.mine AS SELECT * FROM llm_calls_view")
        .await
        .expect_err("no view in a shared schema");
    assert_eq!(create.code().map(|c| c.code()), Some("42501"), "{create}");

    // The other scopes see what they should.
    let (op, _) = connect_as(&s.db_url, "t_op", None).await;
    let n: i64 = op
        .query_one("SELECT count(*) FROM llm_calls_view WHERE tenant = 'globex'", &[])
        .await
        .expect("operator")
        .get(0);
    assert_eq!(n, s.globex);
    denied(&op, "SELECT tenant FROM llm_calls").await;
    let (app, _) = connect_as(&s.db_url, "t_app", Some("-c llmhub.tenant=globex")).await;
    let per_tenant: Vec<(Option<String>, i64)> = app
        .query("SELECT tenant, count(*) FROM llm_calls_view GROUP BY 1", &[])
        .await
        .expect("application")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(per_tenant, vec![(Some("globex".to_owned()), s.globex)]);
    let (writer, _) = connect_as(&s.db_url, "t_writer", None).await;
    denied(&writer, "SELECT tenant FROM llm_calls").await;
    denied(&writer, "SELECT * FROM llm_calls_view").await;
    denied(&writer, "SELECT * FROM llm_rollup_1h").await;
    s.admin.batch_execute("SELECT 1").await.expect("alive");
}

async fn nothing_of_globex_count(c: &Client, sql: &str) -> usize {
    cells(c, sql)
        .await
        .expect("answers")
        .iter()
        .filter(|r| r.contains(SECRET))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 15 with llm_analytics installed (scripts/test.sh)"]
async fn a_tenant_reader_reads_nothing_of_another_tenant_on_postgresql() {
    isolation_on(Server::Pg15, "llmhub_tenancy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL 17 + TimescaleDB with llm_analytics installed (scripts/test.sh)"]
async fn a_tenant_reader_reads_nothing_of_another_tenant_on_timescaledb() {
    isolation_on(Server::Timescale, "llmhub_tenancy").await;
}

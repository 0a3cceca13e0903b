//! Every SQL panel of the bundled dashboards over 30 days of rollups at the equivalent of 1M model
//! calls a day (`llmhub_dashboards::synthetic_rollups_sql`), with Grafana's macros expanded for a
//! 30-day range: median time of 5 runs after a warm-up, beside the 200 ms budget the dashboards
//! issue sets, same server, same run — as the reader roles the provisioned data sources connect
//! as (an operator, and one tenant's reader, row-level security on), beside the owner (no
//! row-level security applies to it).
//!
//! ```sh
//! (cd pg-extension && cargo pgrx install --release --pg-config /usr/bin/pg_config)
//! eval "$(scripts/servers.sh env)"
//! cargo bench -p llmhub --bench dashboard_queries
//! LLMHUB_BENCH_DAYS=90 cargo bench -p llmhub --bench dashboard_queries   # 90 days (docs/scaling.md)
//! ```
//! Under `cargo test` it runs each query once over 2 days.

use llmhub_dashboards::Source;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> Client {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    c
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (days, runs) = if bench {
        let days =
            std::env::var("LLMHUB_BENCH_DAYS").map_or(30, |d| d.parse().expect("LLMHUB_BENCH_DAYS: a number of days"));
        (days, 5usize)
    } else {
        (2u32, 1)
    };
    let base = std::env::var("LLMHUB_BENCH_PG_URL")
        .or_else(|_| std::env::var("LLMHUB_TEST_PG15_URL"))
        .expect("set LLMHUB_TEST_PG15_URL (scripts/servers.sh env) or LLMHUB_BENCH_PG_URL");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let admin = connect(&base).await;
        admin
            .batch_execute("DROP DATABASE IF EXISTS llmhub_bench_dash WITH (FORCE)")
            .await
            .expect("drop");
        admin
            .batch_execute("CREATE DATABASE llmhub_bench_dash")
            .await
            .expect("create");
        let c = connect(&base.replace("/llmhub_test", "/llmhub_bench_dash")).await;
        c.batch_execute("CREATE EXTENSION llm_analytics")
            .await
            .expect("extension");
        let t = Instant::now();
        c.batch_execute(&llmhub_dashboards::synthetic_rollups_sql(days, 1_000_000))
            .await
            .expect("rollups");
        let rows: i64 = c
            .query_one("SELECT count(*) FROM llm_rollup_1h", &[])
            .await
            .expect("count")
            .get(0);
        eprintln!(
            "{days} days of rollups ({rows} hourly rows) in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let tenant: String = c
            .query_one("SELECT min(tenant) FROM llm_rollup_1d", &[])
            .await
            .expect("a tenant")
            .get(0);
        c.batch_execute(&format!(
            "DROP ROLE IF EXISTS bench_operator; DROP ROLE IF EXISTS bench_tenant;
             CREATE ROLE bench_operator LOGIN; SELECT llm_grant_operator('bench_operator');
             CREATE ROLE bench_tenant LOGIN; SELECT llm_grant_reader('bench_tenant', '{tenant}');"
        ))
        .await
        .expect("reader roles");
        let db = base.replace("/llmhub_test", "/llmhub_bench_dash");
        let operator = connect(&db.replace("postgres://postgres@", "postgres://bench_operator@")).await;
        let reader = connect(&db.replace("postgres://postgres@", "postgres://bench_tenant@")).await;
        let to = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let from = to - u64::from(days) * 86_400;
        println!("| dashboard | panel | owner (ms) | operator (ms) | tenant reader (ms) | slowest vs 200 ms budget |");
        println!("|---|---|---|---|---|---|");
        let mut worst = 0.0f64;
        for d in llmhub_dashboards::all() {
            for p in d.panels.iter().filter(|p| p.source == Source::Postgres) {
                for q in &p.queries {
                    let sql = llmhub_dashboards::expand_sql(&q.expr, from, to).expect("expands");
                    let mut medians = Vec::new();
                    for client in [&c, &operator, &reader] {
                        if bench {
                            client.query(sql.as_str(), &[]).await.expect("warm-up");
                        }
                        let mut times = Vec::new();
                        for _ in 0..runs {
                            let t = Instant::now();
                            client
                                .query(sql.as_str(), &[])
                                .await
                                .unwrap_or_else(|e| panic!("{}/{}: {e}", d.file, p.title));
                            times.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        times.sort_by(f64::total_cmp);
                        medians.push(times[times.len() / 2]);
                    }
                    let slowest = medians.iter().copied().fold(0.0, f64::max);
                    worst = worst.max(slowest);
                    println!(
                        "| {} | {} | {:.1} | {:.1} | {:.1} | {:.2} |",
                        d.file,
                        p.title,
                        medians[0],
                        medians[1],
                        medians[2],
                        slowest / 200.0
                    );
                }
            }
        }
        println!("slowest: {worst:.1} ms ({:.2} of the budget)", worst / 200.0);
        drop((c, operator, reader));
        admin
            .batch_execute("DROP DATABASE llmhub_bench_dash WITH (FORCE)")
            .await
            .expect("cleanup");
    });
}

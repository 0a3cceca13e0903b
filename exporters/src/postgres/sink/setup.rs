//! The table a writer's connection writes into: found, or created and migrated under an
//! advisory lock, and its partitions kept ahead of the data.

use super::*;

pub(super) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Finds (or creates and migrates) `llm_calls`. Runs on a writer's connection.
pub(super) async fn prepare(shared: &Shared, client: &Client) -> Result<Target, Retry> {
    let mut guard = shared.target.lock().await;
    if let Some(t) = guard.as_ref() {
        return Ok(t.clone());
    }
    // The extension's schema owns llm_calls once the extension provides the table; an extension
    // without it (an older version) leaves the table to the sink's own migrations.
    let ext_schema: Option<String> = client
        .query_opt(
            "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
             WHERE e.extname = 'llm_analytics'
               AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'llm_calls')",
            &[],
        )
        .await?
        .map(|r| r.get(0));
    let has_timescale = client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'", &[])
        .await?
        .is_some();
    let schema = match &ext_schema {
        Some(s) => s.clone(),
        None => shared.cfg.schema.clone(),
    };
    let qs = quote_ident(&schema);
    if ext_schema.is_none() {
        migrate(shared, client, &qs, has_timescale).await?;
    } else {
        tracing::info!(schema = %schema, "llm_analytics extension installed: writing into its llm_calls");
    }
    let layout = detect_layout(client, &schema, has_timescale).await?;
    let table = format!("{qs}.llm_calls");
    let staged_only: bool = client
        .query_one("SELECT row_security_active($1::text::regclass)", &[&table])
        .await?
        .get(0);
    if staged_only {
        let other_unique: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_index WHERE indrelid = $1::text::regclass AND indisunique AND NOT indisprimary",
                &[&table],
            )
            .await?
            .get(0);
        if other_unique > 0 {
            tracing::error!(table = %table, "llm_calls has a unique index besides its primary key, and row-level security applies to the sink's role: \
                the sink cannot name its conflict target and could drop rows that differ; it will not write until the index is dropped \
                (or the role owns the table or has BYPASSRLS)");
            return Err(Retry(
                Failure::Transient,
                "llm_calls has a unique index besides its primary key, and row-level security applies to the sink's role".to_owned(),
            ));
        }
    }
    let pending = match &ext_schema {
        None => None,
        Some(_) => {
            let name = format!("{qs}.llm_rollup_pending");
            let row = client
                .query_one(
                    "SELECT to_regclass($1) IS NOT NULL, to_regclass($1) IS NOT NULL AND has_table_privilege($1, 'INSERT')",
                    &[&name],
                )
                .await?;
            let (exists, may): (bool, bool) = (row.get(0), row.get(1));
            if exists && !may {
                tracing::warn!(table = %name, "the sink's role may not insert into llm_rollup_pending: rows older than the rollups' late window \
                    (late arrivals, backfills) will not reach the rollups until llm_refresh_rollups_range covers them; run llm_grant_writer for the role");
            }
            may.then_some(name)
        }
    };
    let t = Target {
        table,
        schema: qs,
        layout,
        staged_only,
        pending,
    };
    tracing::info!(table = %t.table, layout = ?layout, staged_only, "PostgreSQL sink target ready");
    *guard = Some(t.clone());
    Ok(t)
}

pub(super) async fn migrate(
    shared: &Shared,
    client: &Client,
    qs: &str,
    has_timescale: bool,
) -> Result<(), tokio_postgres::Error> {
    let layout = match shared.cfg.partitioning {
        Partitioning::Auto if has_timescale => Layout::Hypertable,
        Partitioning::Auto | Partitioning::Native => Layout::NativePartitions,
        Partitioning::Timescaledb => Layout::Hypertable,
    };
    client
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({SCHEMA_LOCK});
             CREATE SCHEMA IF NOT EXISTS {qs};
             CREATE TABLE IF NOT EXISTS {qs}.llmhub_schema_migrations (
                 version integer PRIMARY KEY,
                 description text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now());"
        ))
        .await?;
    let result = async {
        let applied: Vec<i32> = client
            .query(&format!("SELECT version FROM {qs}.llmhub_schema_migrations"), &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for m in MIGRATIONS {
            if applied.contains(&m.version) {
                continue;
            }
            let sql = (m.sql)(layout).replace("{schema}", qs);
            let desc = m.description.replace('\'', "''");
            client
                .batch_execute(&format!(
                    "BEGIN;\n{sql}\nINSERT INTO {qs}.llmhub_schema_migrations (version, description) VALUES ({}, '{desc}');\nCOMMIT;",
                    m.version
                ))
                .await?;
            tracing::info!(version = m.version, description = m.description, ?layout, "migration applied");
        }
        Ok(())
    }
    .await;
    let _ = client
        .batch_execute(&format!("ROLLBACK; SELECT pg_advisory_unlock({SCHEMA_LOCK});"))
        .await;
    result
}

pub(super) async fn detect_layout(
    client: &Client,
    schema: &str,
    has_timescale: bool,
) -> Result<Layout, tokio_postgres::Error> {
    let kind: Option<i8> = client
        .query_opt(
            "SELECT c.relkind::\"char\" FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'llm_calls'",
            &[&schema],
        )
        .await?
        .map(|r| r.get(0));
    if kind == Some(b'p' as i8) {
        return Ok(Layout::NativePartitions);
    }
    if has_timescale {
        let hyper = client
            .query_opt(
                "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = $1 AND hypertable_name = 'llm_calls'",
                &[&schema],
            )
            .await?
            .is_some();
        if hyper {
            return Ok(Layout::Hypertable);
        }
    }
    Ok(Layout::Plain)
}

/// Creates the daily partitions for `days` (and the days ahead of today) that are not known to exist.
pub(super) async fn ensure_partitions(
    shared: &Shared,
    client: &Client,
    t: &Target,
    days: impl IntoIterator<Item = i64>,
) -> Result<(), tokio_postgres::Error> {
    if t.layout != Layout::NativePartitions {
        return Ok(());
    }
    let today = (now_ms() / 86_400_000) as i64;
    let ahead = (today..=today + i64::from(shared.cfg.partitions_ahead_days)).collect::<Vec<_>>();
    let missing: Vec<i64> = {
        let known = match shared.partitions.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut m: Vec<i64> = days.into_iter().chain(ahead).filter(|d| !known.contains(d)).collect();
        m.sort_unstable();
        m.dedup();
        m
    };
    if missing.is_empty() {
        return Ok(());
    }
    // One owner: the extension's llm_create_partitions, which the sink's migration 2 installs
    // when the sink made the table.
    let days: Vec<String> = missing.iter().map(|d| schema::iso_date(*d)).collect();
    client
        .execute(
            &format!(
                "SELECT {}.llm_create_partitions(d, d) FROM unnest($1::text[]::date[]) d",
                t.schema
            ),
            &[&days],
        )
        .await?;
    let mut known = match shared.partitions.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    known.extend(missing);
    Ok(())
}

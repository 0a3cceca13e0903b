//! The `llm_calls` table: its columns (in COPY order), the sink's versioned migrations, and
//! partitions kept ahead of the data.
//!
//! When the `llm_analytics` extension is installed, its schema owns `llm_calls` and the sink only
//! writes into it; otherwise the sink creates and migrates the table itself under an advisory
//! lock, so replicas starting together do not race. Migrations are recorded in
//! `<schema>.llmhub_schema_migrations`.

use llmhub_core::timefmt::civil_from_days;

/// One column of `llm_calls`.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Column name.
    pub name: &'static str,
    /// SQL type with constraints.
    pub sql: &'static str,
}

macro_rules! columns {
    ($($name:literal $sql:literal),* $(,)?) => { &[$(Column { name: $name, sql: $sql }),*] };
}

/// Every column, in the order rows are encoded ([`super::row::encode`]).
pub const COLUMNS: &[Column] = columns![
    "time" "timestamptz NOT NULL",
    "end_time" "timestamptz NOT NULL",
    "trace_id" "bytea NOT NULL",
    "span_id" "bytea NOT NULL",
    "parent_span_id" "bytea",
    "tenant" "text",
    "service_name" "text NOT NULL",
    "environment" "text",
    "dialect" "text NOT NULL",
    "scope_name" "text NOT NULL",
    "role" "text NOT NULL",
    "operation" "text NOT NULL",
    "provider" "text",
    "request_model" "text",
    "response_model" "text",
    "model" "text",
    "response_id" "text",
    "streaming" "boolean",
    "finish_reasons" "text[] NOT NULL",
    "status" "text NOT NULL",
    "error_class" "text",
    "error_type" "text",
    "server_address" "text",
    "server_port" "integer",
    "usage_reported" "boolean NOT NULL",
    "counts_usage" "boolean NOT NULL",
    "input_uncached_tokens" "bigint",
    "cache_read_tokens" "bigint",
    "cache_write_tokens" "bigint",
    "cache_write_1h_tokens" "bigint",
    "output_tokens" "bigint",
    "reasoning_tokens" "bigint",
    "duration_s" "double precision",
    "ttft_s" "double precision",
    "tpot_s" "double precision",
    "output_tokens_per_s" "double precision",
    "ttft_from_server" "boolean NOT NULL",
    "tpot_from_server" "boolean NOT NULL",
    "sdk_reported_cost_usd" "double precision",
    "service_tier" "text",
    "price_status" "text NOT NULL",
    "cost_usd" "numeric",
    "cost_input_uncached_usd" "numeric",
    "cost_cache_read_usd" "numeric",
    "cost_cache_write_usd" "numeric",
    "cost_cache_write_1h_usd" "numeric",
    "cost_output_usd" "numeric",
    "cost_reasoning_usd" "numeric",
    "cost_request_usd" "numeric",
    "catalog_version" "text",
    "price_rule" "text",
    "agent_id" "text",
    "agent_name" "text",
    "workflow_name" "text",
    "conversation_id" "text",
    "tool_name" "text",
    "tool_call_id" "text",
];

/// Comma-separated column names, for `COPY` and `INSERT ... SELECT`.
pub fn column_list() -> String {
    COLUMNS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}

/// Column definitions (`name type`), for a table shaped like `llm_calls` without its keys.
pub fn column_definitions() -> String {
    COLUMNS
        .iter()
        .map(|c| format!("{} {}", c.name, c.sql))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How `llm_calls` is laid out in the database at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A TimescaleDB hypertable: chunks are created by TimescaleDB as rows arrive.
    Hypertable,
    /// Native range partitions by day: the sink creates them ahead of the rows.
    NativePartitions,
    /// A plain table (created by someone else): nothing to manage.
    Plain,
}

/// A migration: version, description and SQL (`{schema}` is replaced by the quoted schema).
pub struct Migration {
    /// Version, strictly increasing.
    pub version: i32,
    /// What it does.
    pub description: &'static str,
    /// Statements, run in one transaction.
    pub sql: fn(layout: Layout) -> String,
}

/// Every migration, oldest first. Never edit a released one; add the next.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "llm_calls: one row per model call, agent or tool step",
    sql: |layout| {
        let cols: Vec<String> = COLUMNS.iter().map(|c| format!("    {} {}", c.name, c.sql)).collect();
        let mut sql = format!(
            "CREATE TABLE {{schema}}.llm_calls (\n{},\n    PRIMARY KEY (trace_id, span_id, time)\n)",
            cols.join(",\n")
        );
        if layout == Layout::NativePartitions {
            sql.push_str(" PARTITION BY RANGE (time)");
        }
        sql.push_str(";\n");
        match layout {
            Layout::Hypertable => sql.push_str(
                "SELECT create_hypertable('{schema}.llm_calls', 'time', chunk_time_interval => interval '1 day');\n",
            ),
            _ => sql.push_str("CREATE INDEX llm_calls_time_idx ON {schema}.llm_calls (time DESC);\n"),
        }
        sql.push_str(
            "COMMENT ON TABLE {schema}.llm_calls IS 'One row per LLM call, agent or tool step, written by llmhub. Costs are exact USD decimals; NULL cost means not priced (see price_status).';\n",
        );
        sql
    },
}];

/// The name of the daily partition holding `day` (days since the Unix epoch, UTC).
pub fn partition_name(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("llm_calls_p{y:04}{m:02}{d:02}")
}

/// `CREATE TABLE IF NOT EXISTS` of the partition for `day`, bounds in UTC.
pub fn partition_sql(schema: &str, day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    let (y2, m2, d2) = civil_from_days(day + 1);
    format!(
        "CREATE TABLE IF NOT EXISTS {schema}.{} PARTITION OF {schema}.llm_calls \
         FOR VALUES FROM ('{y:04}-{m:02}-{d:02} 00:00:00+00') TO ('{y2:04}-{m2:02}-{d2:02} 00:00:00+00')",
        partition_name(day)
    )
}

/// `YYYY-MM-DD` of `day` (days since the Unix epoch).
pub fn iso_date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmhub_core::timefmt::days_from_civil;

    #[test]
    fn partitions_are_named_by_their_utc_day() {
        assert_eq!(partition_name(20_416), "llm_calls_p20251124");
    }

    #[test]
    fn partition_bounds_are_utc_and_cross_month_and_year_ends() {
        let day = days_from_civil(2026, 12, 31);
        assert_eq!(
            partition_sql("s", day),
            "CREATE TABLE IF NOT EXISTS s.llm_calls_p20261231 PARTITION OF s.llm_calls FOR VALUES FROM ('2026-12-31 00:00:00+00') TO ('2027-01-01 00:00:00+00')"
        );
    }

    /// The extension creates the same table (pg-extension/sql/llm_calls.sql): same columns, same
    /// types, same order, so the sink's COPY fits either.
    #[test]
    fn the_extension_table_has_the_sinks_columns_in_order() {
        let sql = include_str!("../../../pg-extension/sql/llm_calls.sql");
        let body = &sql[sql.find("columns text := $cols$").expect("the column list")..];
        let declared: Vec<String> = body
            .lines()
            .skip(1)
            .map(str::trim)
            .take_while(|l| !l.starts_with("PRIMARY KEY"))
            .map(|l| l.trim_end_matches(',').to_owned())
            .collect();
        let expected: Vec<String> = COLUMNS.iter().map(|c| format!("{} {}", c.name, c.sql)).collect();
        assert_eq!(declared, expected);
    }

    #[test]
    fn the_first_migration_creates_every_column_once() {
        let sql = (MIGRATIONS[0].sql)(Layout::NativePartitions);
        for c in COLUMNS {
            assert_eq!(sql.matches(&format!("    {} ", c.name)).count(), 1, "{}", c.name);
        }
        assert!(sql.contains("PARTITION BY RANGE (time)"));
        assert!((MIGRATIONS[0].sql)(Layout::Hypertable).contains("create_hypertable"));
        let mut names: Vec<_> = COLUMNS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COLUMNS.len());
    }
}

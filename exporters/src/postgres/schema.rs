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
pub const MIGRATIONS: &[Migration] = &[
    Migration {
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
    },
    Migration {
        version: 2,
        description: "llm_create_partitions: the extension's definition of the daily partitions",
        sql: |_| {
            // The extension script's environment: its schema first on the search path.
            format!(
                "SET LOCAL search_path = {{schema}}, pg_catalog;\n{}",
                CREATE_PARTITIONS_SQL.replace("@extschema@", "{schema}")
            )
        },
    },
];

/// The one definition of `llm_calls`' daily partitions (names, UTC bounds, the lock), shared with
/// the extension: the sink installs it in its schema (migration 2) and calls it for the days it
/// writes, whether the extension made the table or the sink did.
const CREATE_PARTITIONS_SQL: &str = include_str!("../../../pg-extension/sql/llm_create_partitions.sql");

/// The advisory lock ("llmhub" in ASCII, 119212947830114) under which the schema is migrated and
/// partitions are created, by the sink and by the extension's `llm_create_partitions` alike.
pub(crate) const SCHEMA_LOCK: i64 = 0x6c6c_6d68_7562;

/// `YYYY-MM-DD` of `day` (days since the Unix epoch).
pub fn iso_date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_created_under_the_sinks_schema_lock() {
        assert_eq!(
            CREATE_PARTITIONS_SQL.matches("pg_advisory_xact_lock(").count(),
            1,
            "one lock"
        );
        assert!(CREATE_PARTITIONS_SQL.contains(&format!("pg_advisory_xact_lock({SCHEMA_LOCK})")));
        let sql = (MIGRATIONS[1].sql)(Layout::NativePartitions);
        assert!(sql.starts_with("SET LOCAL search_path = {schema}, pg_catalog;\n"));
        assert!(sql.contains("SET search_path = {schema}, pg_temp"));
        assert!(!sql.contains("@extschema@"));
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

    /// Every literal the extension's SQL and the dashboards compare an enum column with
    /// (`role = 'model_call'`, `status IN ('ok', 'error')`, ...), with the file it is in.
    fn compared_literals(column: &str) -> Vec<(String, String)> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut files = Vec::new();
        for dir in ["pg-extension/src", "pg-extension/sql", "crates/llmhub-dashboards/src"] {
            for entry in std::fs::read_dir(format!("{root}/{dir}")).expect(dir) {
                files.push(entry.expect("entry").path());
            }
        }
        let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut found = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path).expect("source");
            for (at, _) in text.match_indices(column) {
                if text[..at].chars().next_back().is_some_and(is_ident) {
                    continue;
                }
                let rest = text[at + column.len()..].trim_start();
                if rest.starts_with(is_ident) {
                    continue;
                }
                let Some(rest) = ["<>", "!=", "=", "NOT IN", "IN"]
                    .iter()
                    .find_map(|op| rest.strip_prefix(op))
                    .map(str::trim_start)
                else {
                    continue;
                };
                // One quoted literal, or a parenthesised list of them.
                let quoted = |t: &str| {
                    t.strip_prefix('\'')
                        .and_then(|t| t.split_once('\''))
                        .map(|(lit, _)| lit.to_owned())
                };
                let literals: Vec<String> = match rest.strip_prefix('(') {
                    Some(inner) => inner[..inner.find(')').unwrap_or(0)]
                        .split(',')
                        .filter_map(|item| quoted(item.trim()))
                        .collect(),
                    None => quoted(rest).into_iter().collect(),
                };
                found.extend(literals.into_iter().map(|lit| (lit, path.display().to_string())));
            }
        }
        found
    }

    /// The SQL outside this crate spells the record's enums again; each spelling must be one the
    /// sink writes (`as_str` of the enum), so a renamed variant cannot leave a comparison that
    /// silently matches nothing.
    #[test]
    fn enum_literals_in_the_extension_and_dashboards_are_the_sinks() {
        use llmhub_core::{CallStatus, Dialect, ErrorClass, PriceStatus, SpanRole};
        let columns: [(&str, Vec<&str>); 5] = [
            ("role", SpanRole::ALL.iter().map(|v| v.as_str()).collect()),
            ("status", CallStatus::ALL.iter().map(|v| v.as_str()).collect()),
            ("price_status", PriceStatus::ALL.iter().map(|v| v.as_str()).collect()),
            ("error_class", ErrorClass::ALL.iter().map(|v| v.as_str()).collect()),
            ("dialect", Dialect::ALL.iter().map(|v| v.as_str()).collect()),
        ];
        let mut checked = Vec::new();
        for (column, values) in &columns {
            let found = compared_literals(column);
            for (lit, file) in &found {
                assert!(
                    values.contains(&lit.as_str()),
                    "{file}: {column} compared with '{lit}', which the sink never writes"
                );
            }
            checked.push((*column, found.len()));
        }
        // How many comparisons there are today, so a scan that stops finding them fails too.
        let want = [
            ("role", 17),
            ("status", 4),
            ("price_status", 1),
            ("error_class", 0),
            ("dialect", 0),
        ];
        assert_eq!(checked, want);
    }
}

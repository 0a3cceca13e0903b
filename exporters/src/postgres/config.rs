//! PostgreSQL sink configuration (serde, defaults in one place, validation without I/O).

use crate::queue::QueueConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How the sink lays out `llm_calls` when it creates the table itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Partitioning {
    /// A TimescaleDB hypertable when the `timescaledb` extension is installed in the database,
    /// native daily partitions otherwise.
    #[default]
    Auto,
    /// A TimescaleDB hypertable (writes fail, logged and retried, until TimescaleDB is installed).
    Timescaledb,
    /// Native PostgreSQL range partitions, one per UTC day, created ahead of time.
    Native,
}

/// Server certificate checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TlsVerify {
    /// As libpq: check the chain and host name when a CA is given (`tls.ca_file` or the URL's
    /// `sslrootcert`, or `sslmode=verify-full`), otherwise encrypt without checking.
    #[default]
    Auto,
    /// Always check the certificate chain and that it names the host (libpq's `verify-full`),
    /// against `tls.ca_file` or the Mozilla root set.
    Full,
    /// Encrypt without checking the certificate; open to impersonation.
    None,
}

/// TLS towards the server. Used when the connection's `sslmode` is `prefer` or `require`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of the CA certificates to trust; without it the Mozilla root set is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for certificate authentication (`cert` in pg_hba.conf).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// `auto`, `full` or `none`.
    pub verify: TlsVerify,
}

/// The PostgreSQL/TimescaleDB sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// Connection string: a URL (`postgres://user@host:5432/db?sslmode=require`) or libpq
    /// `key=value` pairs; libpq's `sslmode=verify-ca|verify-full`, `sslrootcert`, `sslcert` and
    /// `sslkey` are understood. Without it the libpq environment variables are read (`PGHOST`,
    /// `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A file holding the password (first line), so it stays out of the config and the logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Schema of `llm_calls` when the sink manages it. When the `llm_analytics` extension is
    /// installed, its schema is used instead.
    pub schema: String,
    /// Table layout when the sink creates `llm_calls`.
    pub partitioning: Partitioning,
    /// Native partitioning: days of partitions kept created ahead of today.
    pub partitions_ahead_days: u32,
    /// Connections, each with one writer.
    pub pool_size: usize,
    /// Most rows per COPY.
    pub batch_max_rows: usize,
    /// How long a writer waits for a batch to fill before writing what it has, in milliseconds.
    pub batch_linger_ms: u64,
    /// First retry delay after a failed write, in milliseconds; doubles up to `retry_max_ms`,
    /// with full jitter.
    pub retry_initial_ms: u64,
    /// Longest retry delay, in milliseconds.
    pub retry_max_ms: u64,
    /// Longest time one batch write may take, in milliseconds: the server's `statement_timeout` on
    /// the sink's connections, and the writer's own deadline for the whole write (a connection
    /// that stops answering without closing is dropped then, and the batch retried).
    pub write_timeout_ms: u64,
    /// Where rows the database rejects are written (JSON lines, with the reason). Default:
    /// `postgres-dead-letters.jsonl` in the queue directory, or in the working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_file: Option<PathBuf>,
    /// The queue in front of the writers.
    pub queue: QueueConfig,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: None,
            password_file: None,
            tls: TlsConfig::default(),
            schema: "public".to_owned(),
            partitioning: Partitioning::Auto,
            partitions_ahead_days: 7,
            pool_size: 2,
            batch_max_rows: 5000,
            batch_linger_ms: 200,
            retry_initial_ms: 100,
            retry_max_ms: 30_000,
            write_timeout_ms: 60_000,
            dead_letter_file: None,
            queue: QueueConfig::default(),
        }
    }
}

impl PostgresConfig {
    /// Problems with this section, each naming the field under `path`.
    pub fn problems(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(url) = &self.url {
            if let Err(e) = super::connect::libpq_compat(url).0.parse::<tokio_postgres::Config>() {
                out.push(format!(
                    "{path}.url: not a PostgreSQL connection string ({e}), e.g. `postgres://llmhub@db.example:5432/llmhub?sslmode=require`"
                ));
            }
        }
        let ident_ok = !self.schema.is_empty()
            && self.schema.len() <= 63
            && self
                .schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !self.schema.starts_with(|c: char| c.is_ascii_digit());
        if !ident_ok {
            out.push(format!(
                "{path}.schema: must be a lower-case SQL identifier (letters, digits, _), got {:?}",
                self.schema
            ));
        }
        if self.pool_size == 0 || self.pool_size > 64 {
            out.push(format!("{path}.pool_size: must be 1..=64, got {}", self.pool_size));
        }
        if self.batch_max_rows == 0 || self.batch_max_rows > 1_000_000 {
            out.push(format!(
                "{path}.batch_max_rows: must be 1..=1000000, got {}",
                self.batch_max_rows
            ));
        }
        if self.retry_initial_ms == 0 || self.retry_initial_ms > self.retry_max_ms {
            out.push(format!(
                "{path}.retry_initial_ms: must be positive and at most retry_max_ms ({}), got {}",
                self.retry_max_ms, self.retry_initial_ms
            ));
        }
        if !(100..=3_600_000).contains(&self.write_timeout_ms) {
            out.push(format!(
                "{path}.write_timeout_ms: got {}, expected 100 to 3600000 (one hour), e.g. 60000",
                self.write_timeout_ms
            ));
        }
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            out.push(format!(
                "{path}.tls: cert_file and key_file go together (client certificate authentication)"
            ));
        }
        out.extend(self.queue.problems(&format!("{path}.queue")));
        out
    }
}

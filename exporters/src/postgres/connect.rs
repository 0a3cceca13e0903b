//! Connecting: the connection string from config or the libpq environment, the password from a
//! file, and TLS through rustls (CA file, client certificate, verification mode).

use super::config::{PostgresConfig, TlsConfig, TlsVerify};
use super::error::SinkError;
use tokio_postgres::config::SslMode;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Everything needed to open a connection, built once (files read, TLS configured).
#[derive(Clone)]
pub struct Connector {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Connector")
            .field("hosts", &self.config.get_hosts())
            .field("ports", &self.config.get_ports())
            .field("user", &self.config.get_user())
            .field("dbname", &self.config.get_dbname())
            .finish()
    }
}

/// TLS settings found in a libpq connection string that tokio-postgres does not read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LibpqTls {
    /// `sslmode=verify-ca` or `verify-full`.
    pub verify: bool,
    /// `sslrootcert`.
    pub root_cert: Option<String>,
    /// `sslcert`.
    pub cert: Option<String>,
    /// `sslkey`.
    pub key: Option<String>,
}

/// Rewrites a libpq connection string for tokio-postgres: `sslmode=verify-ca|verify-full` becomes
/// `require` (with verification), `sslrootcert`, `sslcert` and `sslkey` are taken out.
pub fn libpq_compat(conn: &str) -> (String, LibpqTls) {
    let mut tls = LibpqTls::default();
    let mut take = |k: &str, v: &str| -> Option<String> {
        match (k, v) {
            ("sslmode", "verify-ca" | "verify-full") => {
                tls.verify = true;
                Some("sslmode=require".to_owned())
            }
            ("sslrootcert", _) => {
                tls.root_cert = Some(v.to_owned());
                None
            }
            ("sslcert", _) => {
                tls.cert = Some(v.to_owned());
                None
            }
            ("sslkey", _) => {
                tls.key = Some(v.to_owned());
                None
            }
            _ => Some(format!("{k}={v}")),
        }
    };
    let is_url = conn.starts_with("postgres://") || conn.starts_with("postgresql://");
    let out = if is_url {
        match conn.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<String> = query
                    .split('&')
                    .filter(|p| !p.is_empty())
                    .filter_map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        take(k, v)
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => conn.to_owned(),
        }
    } else {
        conn.split_whitespace()
            .filter_map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                take(k, v)
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (out, tls)
}

fn from_env() -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    c.host(var("PGHOST").unwrap_or_else(|| "localhost".to_owned()));
    c.port(var("PGPORT").and_then(|p| p.parse().ok()).unwrap_or(5432));
    let user = var("PGUSER").unwrap_or_else(|| "postgres".to_owned());
    c.dbname(var("PGDATABASE").unwrap_or_else(|| user.clone()));
    c.user(&user);
    if let Some(p) = var("PGPASSWORD") {
        c.password(p);
    }
    match var("PGSSLMODE").as_deref() {
        Some("disable") => {
            c.ssl_mode(SslMode::Disable);
        }
        Some("require" | "verify-ca" | "verify-full") => {
            c.ssl_mode(SslMode::Require);
        }
        _ => {}
    }
    c
}

impl Connector {
    /// Reads the connection settings, password file and TLS files.
    pub fn new(cfg: &PostgresConfig) -> Result<Connector, SinkError> {
        let (mut config, mut libpq) = match &cfg.url {
            Some(url) => {
                let (conn, libpq) = libpq_compat(url);
                let config = conn
                    .parse::<tokio_postgres::Config>()
                    .map_err(|e| SinkError::Config(format!("url: {e}")))?;
                (config, libpq)
            }
            None => {
                let mut libpq = LibpqTls::default();
                if let Ok(mode) = std::env::var("PGSSLMODE") {
                    libpq.verify = matches!(mode.as_str(), "verify-ca" | "verify-full");
                }
                libpq.root_cert = std::env::var("PGSSLROOTCERT").ok().filter(|v| !v.is_empty());
                (from_env(), libpq)
            }
        };
        // The config's TLS files win over the connection string's.
        let mut tls = cfg.tls.clone();
        tls.ca_file = tls.ca_file.or(libpq.root_cert.take().map(Into::into));
        tls.cert_file = tls.cert_file.or(libpq.cert.take().map(Into::into));
        tls.key_file = tls.key_file.or(libpq.key.take().map(Into::into));
        if libpq.verify && tls.verify == TlsVerify::Auto {
            tls.verify = TlsVerify::Full;
        }
        config.application_name("llmhub");
        config.connect_timeout(std::time::Duration::from_secs(10));
        // A server or network that goes away without closing the connection is noticed within
        // about a minute even when nothing is being written (the write deadline covers writes).
        if config.get_keepalives_idle() == std::time::Duration::from_secs(2 * 60 * 60) {
            config
                .keepalives(true)
                .keepalives_idle(std::time::Duration::from_secs(30))
                .keepalives_interval(std::time::Duration::from_secs(10))
                .keepalives_retries(3);
        }
        if let Some(path) = &cfg.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| SinkError::Config(format!("password_file {}: {e}", path.display())))?;
            config.password(text.lines().next().unwrap_or(""));
        }
        Ok(Connector {
            config,
            tls: MakeRustlsConnect::new(tls_config(&tls)?),
        })
    }

    /// Opens one connection; its driver runs on a spawned task.
    pub async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    /// `host:port/db` for logs (no credentials).
    pub fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "?".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}/{}", self.config.get_dbname().unwrap_or(""))
    }
}

fn tls_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, SinkError> {
    let verify = match tls.verify {
        TlsVerify::Auto => tls.ca_file.is_some(),
        TlsVerify::Full => true,
        TlsVerify::None => false,
    };
    let client = llmhub_server::tls::ClientTls {
        ca_file: tls.ca_file.clone(),
        cert_file: tls.cert_file.clone(),
        key_file: tls.key_file.clone(),
        insecure_skip_verify: !verify,
    };
    // `none`, or `auto` without a CA: encrypt, check the handshake signatures, accept any
    // certificate (libpq's `prefer` and `require`).
    Ok(client.load("tls", &[])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_tls_parameters_are_understood() {
        let (url, tls) = libpq_compat(
            "postgres://u@db:5432/x?sslmode=verify-full&sslrootcert=/ca.pem&application_name=a&sslcert=/c.pem&sslkey=/k.pem",
        );
        assert_eq!(url, "postgres://u@db:5432/x?sslmode=require&application_name=a");
        assert!(tls.verify);
        assert_eq!(tls.root_cert.as_deref(), Some("/ca.pem"));
        assert_eq!(tls.cert.as_deref(), Some("/c.pem"));
        assert_eq!(tls.key.as_deref(), Some("/k.pem"));
        let (kv, tls) = libpq_compat("host=db user=u sslmode=verify-ca sslrootcert=/ca.pem");
        assert_eq!(kv, "host=db user=u sslmode=require");
        assert!(tls.verify);
        let (plain, tls) = libpq_compat("postgres://u@db/x?sslmode=prefer");
        assert_eq!(plain, "postgres://u@db/x?sslmode=prefer");
        assert_eq!(tls, LibpqTls::default());
        assert!(plain.parse::<tokio_postgres::Config>().is_ok());
    }
}

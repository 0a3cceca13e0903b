//! Connecting: the connection string from config or the libpq environment, the password from a
//! file, and TLS through rustls (CA file, client certificate, verification mode).

use super::config::{PostgresConfig, TlsVerify};
use super::error::SinkError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
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
        let mut config = match &cfg.url {
            Some(url) => url
                .parse::<tokio_postgres::Config>()
                .map_err(|e| SinkError::Config(format!("url: {e}")))?,
            None => from_env(),
        };
        config.application_name("llmhub");
        config.connect_timeout(std::time::Duration::from_secs(10));
        if let Some(path) = &cfg.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| SinkError::Config(format!("password_file {}: {e}", path.display())))?;
            config.password(text.lines().next().unwrap_or(""));
        }
        Ok(Connector {
            config,
            tls: MakeRustlsConnect::new(tls_config(cfg)?),
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

fn pem_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, SinkError> {
    let data =
        std::fs::read(path).map_err(|e| SinkError::Config(format!("tls: cannot read {}: {e}", path.display())))?;
    rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SinkError::Config(format!("tls: {} is not PEM certificates: {e}", path.display())))
}

fn tls_config(cfg: &PostgresConfig) -> Result<rustls::ClientConfig, SinkError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Config(format!("tls: {e}")))?;
    let builder = match cfg.tls.verify {
        TlsVerify::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider))),
        TlsVerify::Full => {
            let mut roots = RootCertStore::empty();
            match &cfg.tls.ca_file {
                Some(path) => {
                    for cert in pem_certs(path)? {
                        roots
                            .add(cert)
                            .map_err(|e| SinkError::Config(format!("tls.ca_file: {e}")))?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots)
        }
    };
    match (&cfg.tls.cert_file, &cfg.tls.key_file) {
        (Some(cert), Some(key)) => {
            let certs = pem_certs(cert)?;
            let data = std::fs::read(key)
                .map_err(|e| SinkError::Config(format!("tls.key_file: cannot read {}: {e}", key.display())))?;
            let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut data.as_slice())
                .map_err(|e| SinkError::Config(format!("tls.key_file: {e}")))?
                .ok_or_else(|| SinkError::Config("tls.key_file: no private key in the file".to_owned()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| SinkError::Config(format!("tls: client certificate: {e}")))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// `verify: none`: encrypt, check signatures, but accept any certificate.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

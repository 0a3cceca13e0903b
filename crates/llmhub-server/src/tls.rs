//! TLS on llmhub's listeners (rustls, ring): the OTLP/gRPC and OTLP/HTTP receivers and the metrics
//! endpoint each take an optional `tls` section with a certificate and key from PEM files and,
//! for mutual TLS, the CA that client certificates must chain to. The client side ([`ClientTls`]:
//! a CA, a client certificate, or no verification) serves the span forwarder and the PostgreSQL
//! sink.
//!
//! Keys are read once at start and never logged; errors name the setting and the file, never its
//! contents.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A listener's TLS settings (the OpenTelemetry Collector's server `tls` shape).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// PEM certificate chain presented to clients, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates. When set, every client must present a certificate that chains to one
    /// of them (mutual TLS); connections without one fail the handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// Oldest protocol version accepted: `"1.2"` or `"1.3"`.
    #[serde(default = "default_min_version")]
    pub min_version: String,
}

fn default_min_version() -> String {
    "1.2".to_owned()
}

/// Why a PEM file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file is not PEM.
    #[error("{} is not {what}: {error}", path.display())]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
        /// The parse error.
        error: std::io::Error,
    },
    /// The file holds no item of the kind wanted.
    #[error("{} holds no {what} ({marker})", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
        /// The PEM line that starts one.
        marker: &'static str,
    },
}

/// Why a `tls` section could not be loaded; its message names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `min_version` is not "1.2" or "1.3".
    #[error("{path}.min_version: got {got:?}, expected \"1.2\" or \"1.3\"")]
    MinVersion {
        /// The section.
        path: String,
        /// The value given.
        got: String,
    },
    /// A file of the section could not be read.
    #[error("{path}.{setting}: {error}")]
    File {
        /// The section.
        path: String,
        /// The setting naming the file.
        setting: &'static str,
        /// Why.
        error: PemError,
    },
    /// A CA certificate was refused.
    #[error("{path}.{setting}: {}: {error}", file.display())]
    Ca {
        /// The section.
        path: String,
        /// The setting naming the file.
        setting: &'static str,
        /// The file.
        file: PathBuf,
        /// rustls' reason.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The certificate and key do not go together, or rustls refused them.
    #[error("{path}: cert_file and key_file do not make a usable certificate: {error}")]
    Unusable {
        /// The section.
        path: String,
        /// rustls' reason.
        error: rustls::Error,
    },
    /// The protocol versions could not be set.
    #[error("{path}: {error}")]
    Versions {
        /// The section.
        path: String,
        /// rustls' reason.
        error: rustls::Error,
    },
    /// `cert_file` without `key_file`, or the reverse.
    #[error("{path}.{missing}: required with {given}")]
    Incomplete {
        /// The section.
        path: String,
        /// The setting missing.
        missing: &'static str,
        /// The setting given.
        given: &'static str,
    },
}

fn file_error<'a>(path: &'a str, setting: &'static str) -> impl FnOnce(PemError) -> TlsError + 'a {
    move |error| TlsError::File {
        path: path.to_owned(),
        setting,
        error,
    }
}

/// ALPN for a gRPC listener: HTTP/2 only.
pub const ALPN_GRPC: &[&[u8]] = &[b"h2"];
/// ALPN for an HTTP listener: HTTP/2, then HTTP/1.1.
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];

impl ServerTlsConfig {
    /// Reads the files and builds the server configuration offering `alpn`. Errors name `path`
    /// (the section's place in the configuration) and the setting at fault.
    pub fn load(&self, path: &str, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&'static rustls::SupportedProtocolVersion] = match self.min_version.as_str() {
            "1.2" => &[&rustls::version::TLS13, &rustls::version::TLS12],
            "1.3" => &[&rustls::version::TLS13],
            other => {
                return Err(TlsError::MinVersion {
                    path: path.to_owned(),
                    got: other.to_owned(),
                })
            }
        };
        let certs = read_certs(&self.cert_file).map_err(file_error(path, "cert_file"))?;
        let key = read_private_key(&self.key_file).map_err(file_error(path, "key_file"))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|error| TlsError::Versions {
                path: path.to_owned(),
                error,
            })?;
        let builder = match &self.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let bad_ca = |error: Box<dyn std::error::Error + Send + Sync>| TlsError::Ca {
                    path: path.to_owned(),
                    setting: "client_ca_file",
                    file: ca.clone(),
                    error,
                };
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_certs(ca).map_err(file_error(path, "client_ca_file"))? {
                    roots.add(cert).map_err(|e| bad_ca(Box::new(e)))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| bad_ca(Box::new(e)))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut cfg = builder
            .with_single_cert(certs, key)
            .map_err(|error| TlsError::Unusable {
                path: path.to_owned(),
                error,
            })?;
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(cfg))
    }
}

/// A client's TLS settings (the OpenTelemetry Collector's client `tls` shape): the span
/// forwarder's, and the PostgreSQL sink's underneath its own verification modes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientTls {
    /// PEM CA certificates to trust; without it the Mozilla root set (webpki-roots) is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for mutual TLS (with `key_file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate (still encrypted, the handshake signatures still checked).
    /// For tests only: anyone on the path can read and change the traffic.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

impl ClientTls {
    /// Problems with the settings that need no file read, each naming the field under `path`.
    pub fn problems(&self, path: &str) -> Vec<String> {
        self.incomplete(path).map(|e| e.to_string()).into_iter().collect()
    }

    /// `cert_file` without `key_file`, or the reverse.
    fn incomplete(&self, path: &str) -> Option<TlsError> {
        let (missing, given) = match (&self.cert_file, &self.key_file) {
            (Some(_), None) => ("key_file", "cert_file"),
            (None, Some(_)) => ("cert_file", "key_file"),
            _ => return None,
        };
        Some(TlsError::Incomplete {
            path: path.to_owned(),
            missing,
            given,
        })
    }

    /// Reads the files and builds the client configuration offering `alpn` (none: no ALPN).
    /// Errors name `path` and the setting at fault.
    pub fn load(&self, path: &str, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, TlsError> {
        if let Some(e) = self.incomplete(path) {
            return Err(e);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::Versions {
                path: path.to_owned(),
                error,
            })?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        } else {
            let mut roots = rustls::RootCertStore::empty();
            match &self.ca_file {
                Some(ca) => {
                    for cert in read_certs(ca).map_err(file_error(path, "ca_file"))? {
                        roots.add(cert).map_err(|e| TlsError::Ca {
                            path: path.to_owned(),
                            setting: "ca_file",
                            file: ca.clone(),
                            error: Box::new(e),
                        })?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots)
        };
        let mut cfg = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let certs = read_certs(cert).map_err(file_error(path, "cert_file"))?;
                let key = read_private_key(key).map_err(file_error(path, "key_file"))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|error| TlsError::Unusable {
                        path: path.to_owned(),
                        error,
                    })?
            }
            // Either both or neither: the other cases returned above.
            _ => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(cfg)
    }
}

/// `insecure_skip_verify`: accepts any server certificate, checks the handshake signatures.
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

/// The PEM certificates of a file (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let data = read_pem(path)?;
    let certs = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| PemError::NotPem {
            path: path.to_owned(),
            what: "PEM certificates",
            error,
        })?;
    if certs.is_empty() {
        return Err(PemError::Empty {
            path: path.to_owned(),
            what: "PEM certificate",
            marker: "-----BEGIN CERTIFICATE-----",
        });
    }
    Ok(certs)
}

fn read_pem(path: &Path) -> Result<Vec<u8>, PemError> {
    std::fs::read(path).map_err(|error| PemError::Unreadable {
        path: path.to_owned(),
        error,
    })
}

/// The first PEM private key of a file (PKCS#8, PKCS#1 or SEC1).
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    let data = read_pem(path)?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|error| PemError::NotPem {
            path: path.to_owned(),
            what: "a PEM private key",
            error,
        })?
        .ok_or_else(|| PemError::Empty {
            path: path.to_owned(),
            what: "PEM private key",
            marker: "-----BEGIN PRIVATE KEY-----",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> ServerTlsConfig {
        ServerTlsConfig {
            cert_file: dir.join("missing.crt"),
            key_file: dir.join("missing.key"),
            client_ca_file: None,
            min_version: "1.2".to_owned(),
        }
    }

    #[test]
    fn problems_name_the_setting_and_the_file() {
        let dir = std::env::temp_dir().join(format!("llmhub-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = cfg(&dir)
            .load("receivers.otlp.protocols.http.tls", ALPN_HTTP)
            .unwrap_err();
        assert!(
            matches!(
                &err,
                TlsError::File {
                    setting: "cert_file",
                    error: PemError::Unreadable { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        // The message holds the reason; a source as well would print it twice under `{:#}`.
        assert!(std::error::Error::source(&err).is_none());
        let e = err.to_string();
        assert!(
            e.starts_with("receivers.otlp.protocols.http.tls.cert_file: cannot read"),
            "{e}"
        );
        assert!(e.contains("missing.crt"), "{e}");

        std::fs::write(dir.join("missing.crt"), "not a certificate\n").unwrap();
        let e = cfg(&dir).load("x.tls", ALPN_HTTP).unwrap_err().to_string();
        assert!(
            e.starts_with("x.tls.cert_file:") && e.contains("holds no PEM certificate"),
            "{e}"
        );

        let mut c = cfg(&dir);
        c.min_version = "1.1".to_owned();
        let e = c.load("x.tls", ALPN_HTTP).unwrap_err().to_string();
        assert_eq!(e, "x.tls.min_version: got \"1.1\", expected \"1.2\" or \"1.3\"");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_key_file_without_a_key_is_refused_without_echoing_it() {
        let dir = std::env::temp_dir().join(format!("llmhub-tls-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("k.pem");
        std::fs::write(&key, "secret-looking text that is not PEM\n").unwrap();
        let e = read_private_key(&key).unwrap_err().to_string();
        assert!(e.contains("holds no PEM private key"), "{e}");
        assert!(!e.contains("secret-looking"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

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

/// ALPN for a gRPC listener: HTTP/2 only.
pub const ALPN_GRPC: &[&[u8]] = &[b"h2"];
/// ALPN for an HTTP listener: HTTP/2, then HTTP/1.1.
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];

impl ServerTlsConfig {
    /// Reads the files and builds the server configuration offering `alpn`. Errors name `path`
    /// (the section's place in the configuration) and the setting at fault.
    pub fn load(&self, path: &str, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&'static rustls::SupportedProtocolVersion] = match self.min_version.as_str() {
            "1.2" => &[&rustls::version::TLS13, &rustls::version::TLS12],
            "1.3" => &[&rustls::version::TLS13],
            other => {
                return Err(format!(
                    "{path}.min_version: got {other:?}, expected \"1.2\" or \"1.3\""
                ))
            }
        };
        let certs = read_certs(&self.cert_file).map_err(|e| format!("{path}.cert_file: {e}"))?;
        let key = read_private_key(&self.key_file).map_err(|e| format!("{path}.key_file: {e}"))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| format!("{path}: {e}"))?;
        let builder = match &self.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_certs(ca).map_err(|e| format!("{path}.client_ca_file: {e}"))? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("{path}.client_ca_file: {}: {e}", ca.display()))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| format!("{path}.client_ca_file: {}: {e}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut cfg = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("{path}: cert_file and key_file do not make a usable certificate: {e}"))?;
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
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => vec![format!("{path}.key_file: required with cert_file")],
            (None, Some(_)) => vec![format!("{path}.cert_file: required with key_file")],
            _ => Vec::new(),
        }
    }

    /// Reads the files and builds the client configuration offering `alpn` (none: no ALPN).
    /// Errors name `path` and the setting at fault.
    pub fn load(&self, path: &str, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("{path}: {e}"))?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        } else {
            let mut roots = rustls::RootCertStore::empty();
            match &self.ca_file {
                Some(ca) => {
                    for cert in read_certs(ca).map_err(|e| format!("{path}.ca_file: {e}"))? {
                        roots
                            .add(cert)
                            .map_err(|e| format!("{path}.ca_file: {}: {e}", ca.display()))?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots)
        };
        let mut cfg = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let certs = read_certs(cert).map_err(|e| format!("{path}.cert_file: {e}"))?;
                let key = read_private_key(key).map_err(|e| format!("{path}.key_file: {e}"))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("{path}: cert_file and key_file do not make a usable certificate: {e}"))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(self.problems(path).join("; ")),
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
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The first PEM private key of a file (PKCS#8, PKCS#1 or SEC1).
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| format!("{} is not a PEM private key: {e}", path.display()))?
        .ok_or_else(|| {
            format!(
                "{} holds no PEM private key (-----BEGIN PRIVATE KEY-----)",
                path.display()
            )
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
        let e = cfg(&dir)
            .load("receivers.otlp.protocols.http.tls", ALPN_HTTP)
            .unwrap_err();
        assert!(
            e.starts_with("receivers.otlp.protocols.http.tls.cert_file: cannot read"),
            "{e}"
        );
        assert!(e.contains("missing.crt"), "{e}");

        std::fs::write(dir.join("missing.crt"), "not a certificate\n").unwrap();
        let e = cfg(&dir).load("x.tls", ALPN_HTTP).unwrap_err();
        assert!(
            e.starts_with("x.tls.cert_file:") && e.contains("holds no PEM certificate"),
            "{e}"
        );

        let mut c = cfg(&dir);
        c.min_version = "1.1".to_owned();
        let e = c.load("x.tls", ALPN_HTTP).unwrap_err();
        assert_eq!(e, "x.tls.min_version: got \"1.1\", expected \"1.2\" or \"1.3\"");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_key_file_without_a_key_is_refused_without_echoing_it() {
        let dir = std::env::temp_dir().join(format!("llmhub-tls-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("k.pem");
        std::fs::write(&key, "secret-looking text that is not PEM\n").unwrap();
        let e = read_private_key(&key).unwrap_err();
        assert!(e.contains("holds no PEM private key"), "{e}");
        assert!(!e.contains("secret-looking"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

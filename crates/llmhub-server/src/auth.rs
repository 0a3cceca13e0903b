//! API-key authentication for llmhub's listeners: the OTLP receivers (each key optionally bound to
//! a tenant, which then overrides whatever tenant the spans claim) and `/metrics`.
//!
//! A client sends its key as `Authorization: Bearer <key>` or `X-API-Key: <key>` (HTTP headers,
//! or the same gRPC metadata). Keys come from the configuration (`${env:VAR}`) or from files; they
//! are kept as SHA-256 digests and compared in constant time (`subtle`; the given key is hashed
//! first, so neither its length nor where it differs shows in the timing), never logged, and
//! printed configurations show `<redacted>`.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::path::PathBuf;
use subtle::{ConditionallySelectable as _, ConstantTimeEq as _};

/// `auth` in the configuration.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The accepted keys.
    pub api_keys: Vec<ApiKey>,
}

/// One accepted key.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKey {
    /// The key itself (give it as `${env:VAR}`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "redacted")]
    pub key: Option<String>,
    /// A file holding the key (surrounding whitespace ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The tenant every span sent with this key belongs to (receivers only). Without it the
    /// spans' own tenant attribute is used (a collector forwarding many tenants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

fn redacted<S: serde::Serializer>(_: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("api_keys", &self.api_keys.len())
            .finish()
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("key_file", &self.key_file)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// Shortest key accepted.
pub const MIN_KEY_LEN: usize = 16;

/// The compiled keys.
pub struct Authenticator {
    /// Each key's SHA-256 digest, and its tenant.
    keys: Vec<([u8; 32], Option<String>)>,
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("keys", &self.keys.len()).finish()
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` or `X-API-Key` header.
    Missing,
    /// A key that is not one of the configured ones.
    Invalid,
}

impl Denied {
    /// The message for the client.
    pub fn message(self) -> &'static str {
        match self {
            Denied::Missing => {
                "authentication required: send the API key as Authorization: Bearer <key> or X-API-Key: <key>"
            }
            Denied::Invalid => "the API key is not valid",
        }
    }
}

impl Authenticator {
    /// Loads the keys (reading `key_file`s); problems name the key under `path`. With
    /// `tenants: false` (`/metrics`) a key may not name a tenant.
    pub fn new(cfg: &AuthConfig, path: &str, tenants: bool) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut keys: Vec<([u8; 32], Option<String>)> = Vec::new();
        if cfg.api_keys.is_empty() {
            problems.push(format!(
                "{path}.api_keys: empty; list at least one key, or remove {path}"
            ));
        }
        for (i, k) in cfg.api_keys.iter().enumerate() {
            let at = format!("{path}.api_keys[{i}]");
            let key = match (&k.key, &k.key_file) {
                (Some(key), None) => key.trim().to_owned(),
                (None, Some(file)) => match std::fs::read_to_string(file) {
                    Ok(s) => s.trim().to_owned(),
                    Err(e) => {
                        problems.push(format!("{at}.key_file: cannot read {}: {e}", file.display()));
                        continue;
                    }
                },
                _ => {
                    problems.push(format!("{at}: give key or key_file (one of them)"));
                    continue;
                }
            };
            if key.len() < MIN_KEY_LEN {
                problems.push(format!("{at}: the key is shorter than {MIN_KEY_LEN} characters"));
                continue;
            }
            if key.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
                problems.push(format!(
                    "{at}: the key must be printable ASCII without spaces (it travels in a header)"
                ));
                continue;
            }
            if keys.iter().any(|(other, _)| *other == digest(key.as_bytes())) {
                problems.push(format!("{at}: the same key is listed twice"));
                continue;
            }
            match (&k.tenant, tenants) {
                (Some(_), false) => {
                    problems.push(format!("{at}.tenant: only receiver keys name a tenant"));
                    continue;
                }
                (Some(t), true) if t.trim().is_empty() => {
                    problems.push(format!("{at}.tenant: empty; name the tenant or remove the key"));
                    continue;
                }
                _ => {}
            }
            keys.push((digest(key.as_bytes()), k.tenant.clone()));
        }
        if problems.is_empty() {
            Ok(Authenticator { keys })
        } else {
            Err(problems)
        }
    }

    /// Checks a request's `Authorization` and `X-API-Key` header values; `Ok` carries the key's
    /// tenant, if it names one.
    pub fn check(&self, authorization: Option<&[u8]>, api_key: Option<&[u8]>) -> Result<Option<&str>, Denied> {
        let bearer = authorization.and_then(|v| {
            let v = trim(v);
            (v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ")).then(|| trim(&v[7..]))
        });
        let Some(given) = bearer.or(api_key.map(trim)) else {
            return Err(Denied::Missing);
        };
        // Every key's digest is compared in constant time, and the match is selected without a
        // branch on it.
        let given = digest(given);
        let mut found = u32::MAX;
        for (i, (key, _)) in self.keys.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            found.conditional_assign(&i, key.ct_eq(&given));
        }
        self.keys
            .get(found as usize)
            .map(|(_, tenant)| tenant.as_deref())
            .ok_or(Denied::Invalid)
    }
}

impl Authenticator {
    /// [`Authenticator::check`] on a request's headers (HTTP, or gRPC metadata).
    pub fn check_headers(&self, headers: &http::HeaderMap) -> Result<Option<&str>, Denied> {
        let get = |h: &str| headers.get(h).map(|v| v.as_bytes());
        self.check(get("authorization"), get("x-api-key"))
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        let cfg: AuthConfig = serde_json::from_str(
            r#"{"api_keys": [{"key": "acme-key-0123456789", "tenant": "acme"}, {"key": "collector-key-0123456789"}]}"#,
        )
        .expect("config");
        Authenticator::new(&cfg, "receivers.otlp.auth", true).expect("keys")
    }

    #[test]
    fn bearer_and_api_key_headers_are_accepted_and_carry_the_tenant() {
        let a = auth();
        assert_eq!(a.check(Some(b"Bearer acme-key-0123456789"), None), Ok(Some("acme")));
        assert_eq!(a.check(Some(b"bearer  acme-key-0123456789 "), None), Ok(Some("acme")));
        assert_eq!(a.check(None, Some(b"collector-key-0123456789")), Ok(None));
        assert_eq!(a.check(None, None), Err(Denied::Missing));
        assert_eq!(a.check(Some(b"Basic abc"), None), Err(Denied::Missing));
        assert_eq!(a.check(Some(b"Bearer acme-key-012345678"), None), Err(Denied::Invalid));
        assert_eq!(a.check(Some(b"Bearer "), Some(b"x")), Err(Denied::Invalid));
    }

    #[test]
    fn bad_keys_are_refused_naming_them() {
        let err = |json: &str, tenants: bool| {
            let cfg: AuthConfig = serde_json::from_str(json).expect("parses");
            Authenticator::new(&cfg, "exporters.prometheus.auth", tenants)
                .expect_err("refused")
                .join("; ")
        };
        assert!(err(r#"{"api_keys": []}"#, true).contains("exporters.prometheus.auth.api_keys: empty"));
        assert!(err(r#"{"api_keys": [{"key": "short"}]}"#, true).contains("api_keys[0]: the key is shorter than 16"));
        assert!(err(r#"{"api_keys": [{}]}"#, true).contains("api_keys[0]: give key or key_file"));
        assert!(err(r#"{"api_keys": [{"key": "a-key-with space-inside"}]}"#, true).contains("printable ASCII"));
        assert!(
            err(r#"{"api_keys": [{"key": "0123456789abcdef", "tenant": "t"}]}"#, false)
                .contains("api_keys[0].tenant: only receiver keys")
        );
        assert!(err(
            r#"{"api_keys": [{"key": "0123456789abcdef"}, {"key": "0123456789abcdef"}]}"#,
            true
        )
        .contains("api_keys[1]: the same key is listed twice"));
        assert!(err(r#"{"api_keys": [{"key_file": "/nonexistent/llmhub.key"}]}"#, true)
            .contains("api_keys[0].key_file: cannot read /nonexistent/llmhub.key"));
    }

    #[test]
    fn keys_are_never_printed() {
        let cfg: AuthConfig =
            serde_json::from_str(r#"{"api_keys": [{"key": "acme-key-0123456789", "tenant": "acme"}]}"#)
                .expect("config");
        assert!(!format!("{cfg:?}").contains("acme-key"));
        assert!(!serde_json::to_string(&cfg).expect("prints").contains("acme-key"));
        assert!(!format!("{:?}", auth()).contains("acme-key"));
    }

    #[test]
    fn key_files_are_read_and_trimmed() {
        let path = std::env::temp_dir().join(format!("llmhub-auth-key-{}", std::process::id()));
        std::fs::write(&path, "file-key-0123456789\n").expect("write");
        let cfg = AuthConfig {
            api_keys: vec![ApiKey {
                key_file: Some(path.clone()),
                tenant: Some("globex".into()),
                ..ApiKey::default()
            }],
        };
        let a = Authenticator::new(&cfg, "a", true).expect("keys");
        assert_eq!(a.check(Some(b"Bearer file-key-0123456789"), None), Ok(Some("globex")));
        let _ = std::fs::remove_file(path);
    }
}

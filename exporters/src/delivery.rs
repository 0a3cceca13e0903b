//! What every push exporter shares about delivery: the dead-letter file, the retry backoff, the
//! endpoint check of its configuration, and its configured headers on the wire.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// An append-only JSON-lines file of what a destination refused for good. Each line, and the
/// file's directory entry when the write created it, is synced before [`DeadLetters::write`]
/// returns, so an item leaves its queue only once its dead letter is on disk.
#[derive(Debug)]
pub struct DeadLetters {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl DeadLetters {
    /// `configured`, or `default_name` in the queue directory (or the working directory).
    pub fn new(configured: Option<&Path>, queue_dir: Option<&Path>, default_name: &str) -> DeadLetters {
        let path = configured
            .map(Path::to_owned)
            .unwrap_or_else(|| queue_dir.unwrap_or(Path::new("")).join(default_name));
        DeadLetters {
            path,
            file: Mutex::new(None),
        }
    }

    /// Where the lines go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (an object; `at_unix_ms` is added) and syncs it. On an error the line is
    /// logged and the error returned: the caller keeps the item and tries again later.
    ///
    /// Lines are appended under a lock (so they never interleave); the sync runs after it is
    /// released, on a handle of the same file, so a writer never waits for another's sync.
    pub fn write(&self, mut line: serde_json::Value) -> std::io::Result<()> {
        if let Some(o) = line.as_object_mut() {
            o.insert("at_unix_ms".to_owned(), now_ms().into());
        }
        let result = self.append(&line);
        match &result {
            Ok(()) => {
                tracing::warn!(path = %self.path.display(), reason = %line["reason"], "refused for good; dead-lettered")
            }
            Err(e) => tracing::error!(path = %self.path.display(), error = %e, line = %line,
                "cannot write the dead-letter file; the item stays queued and is tried again"),
        }
        result
    }

    fn append(&self, line: &serde_json::Value) -> std::io::Result<()> {
        let (file, created) = {
            let mut guard = match self.file.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let created = guard.is_none();
            if created {
                if let Some(parent) = self.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                *guard = Some(std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?);
            }
            let Some(f) = guard.as_mut() else {
                return Err(std::io::Error::other("dead-letter file not open"));
            };
            if let Err(e) = writeln!(f, "{line}") {
                // Reopened next time: a partial line is followed by a newline of the next write.
                *guard = None;
                return Err(e);
            }
            (f.try_clone()?, created)
        };
        file.sync_data()?;
        if created {
            // The file's directory entry: a file created just now is found after a crash.
            std::fs::File::open(self.parent().unwrap_or(Path::new(".")))?.sync_all()?;
        }
        Ok(())
    }

    fn parent(&self) -> Option<&Path> {
        self.path.parent().filter(|p| !p.as_os_str().is_empty())
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The delay before retry number `attempt` (1 for the first): exponential from `initial_ms`,
/// capped at `max_ms`, with jitter over the upper half so replicas do not retry in step.
pub fn backoff(initial_ms: u64, max_ms: u64, attempt: u32) -> Duration {
    let cap = initial_ms.saturating_mul(1u64 << attempt.min(20)).min(max_ms).max(1);
    Duration::from_millis(fastrand::u64(cap / 2..=cap))
}

/// The problem with an endpoint URL setting, if any.
pub fn endpoint_problem(path: &str, endpoint: &str) -> Option<String> {
    (!(endpoint.starts_with("http://") || endpoint.starts_with("https://"))).then(|| {
        format!(
            "{path}.endpoint: got {endpoint:?}, expected an http:// or https:// URL, e.g. http://otel-collector:4317"
        )
    })
}

/// A configured header that cannot be sent.
#[derive(Debug, thiserror::Error)]
#[error("header {name:?}: {error}")]
pub struct HeaderError {
    /// The header as configured.
    pub name: String,
    /// Which part is wrong.
    pub part: HeaderPart,
    /// Why.
    error: Box<dyn std::error::Error + Send + Sync>,
}

/// The part of a header [`HeaderError`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderPart {
    /// Not a valid HTTP header or gRPC metadata name.
    Name,
    /// Not a valid header value (printable ASCII).
    Value,
}

impl HeaderError {
    fn new(name: &str, part: HeaderPart, error: impl std::error::Error + Send + Sync + 'static) -> HeaderError {
        HeaderError {
            name: name.to_owned(),
            part,
            error: Box::new(error),
        }
    }
}

/// A header value with a byte outside printable ASCII (tab allowed): gRPC metadata must be ASCII,
/// and HTTP allows other bytes only as obsolete text.
#[derive(Debug, thiserror::Error)]
#[error("the value must be printable ASCII")]
struct NotPrintableAscii;

fn printable_ascii(name: &str, value: &str) -> Result<(), HeaderError> {
    if value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        Ok(())
    } else {
        Err(HeaderError::new(name, HeaderPart::Value, NotPrintableAscii))
    }
}

/// One configured header as gRPC metadata (its name lowercased, as gRPC requires).
fn grpc_pair(
    name: &str,
    value: &str,
) -> Result<
    (
        tonic::metadata::MetadataKey<tonic::metadata::Ascii>,
        tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    ),
    HeaderError,
> {
    use tonic::metadata::{Ascii, MetadataKey, MetadataValue};
    let key = MetadataKey::<Ascii>::from_bytes(name.to_ascii_lowercase().as_bytes())
        .map_err(|e| HeaderError::new(name, HeaderPart::Name, e))?;
    printable_ascii(name, value)?;
    let value = MetadataValue::<Ascii>::try_from(value).map_err(|e| HeaderError::new(name, HeaderPart::Value, e))?;
    Ok((key, value))
}

/// One configured header as an HTTP header.
fn http_pair(name: &str, value: &str) -> Result<(http::HeaderName, http::HeaderValue), HeaderError> {
    let key = http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| HeaderError::new(name, HeaderPart::Name, e))?;
    printable_ascii(name, value)?;
    let value = http::HeaderValue::from_str(value).map_err(|e| HeaderError::new(name, HeaderPart::Value, e))?;
    Ok((key, value))
}

/// Whether a configured header can travel both as gRPC metadata and as an HTTP header: the
/// offline check of the same conversions [`grpc_metadata`] and [`http_headers`] make.
pub fn check_header(name: &str, value: &str) -> Result<(), HeaderError> {
    grpc_pair(name, value)?;
    http_pair(name, value)?;
    Ok(())
}

/// The configured headers as gRPC metadata (names lowercased, as gRPC requires).
pub fn grpc_metadata(
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<tonic::metadata::MetadataMap, HeaderError> {
    let mut metadata = tonic::metadata::MetadataMap::new();
    for (k, v) in headers {
        let (key, value) = grpc_pair(k, v)?;
        metadata.insert(key, value);
    }
    Ok(metadata)
}

/// The configured headers as HTTP headers.
pub fn http_headers(headers: &std::collections::BTreeMap<String, String>) -> Result<http::HeaderMap, HeaderError> {
    let mut out = http::HeaderMap::new();
    for (k, v) in headers {
        let (name, value) = http_pair(k, v)?;
        out.insert(name, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_stays_under_the_cap() {
        for attempt in 1..40 {
            let d = backoff(100, 30_000, attempt).as_millis() as u64;
            let cap = (100u64 << attempt.min(20)).min(30_000);
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d} ms");
        }
    }

    #[test]
    fn dead_letters_are_json_lines_with_a_time() {
        let dir = std::env::temp_dir().join(format!("llmhub-dl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let dl = DeadLetters::new(None, Some(&dir), "x.jsonl");
        dl.write(serde_json::json!({"reason": "bad"})).unwrap();
        dl.write(serde_json::json!({"reason": "worse"})).unwrap();
        let text = std::fs::read_to_string(dir.join("x.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["reason"], "worse");
        assert!(lines[0]["at_unix_ms"].as_u64().unwrap() > 1_700_000_000_000);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_dead_letter_that_cannot_be_written_is_an_error() {
        let file = std::env::temp_dir().join(format!("llmhub-dl-file-{}", std::process::id()));
        std::fs::write(&file, b"not a directory").unwrap();
        // The configured path lies under a regular file: no directory can be made there (root
        // included).
        let dl = DeadLetters::new(Some(&file.join("sub").join("dl.jsonl")), None, "unused");
        let e = dl.write(serde_json::json!({"reason": "bad"})).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotADirectory, "{e}");
        let _ = std::fs::remove_file(&file);
    }
}

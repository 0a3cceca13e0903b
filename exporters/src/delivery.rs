//! What every push exporter shares about delivery: the dead-letter file, the retry backoff, and
//! the endpoint check of its configuration.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// An append-only JSON-lines file of what a destination refused for good. Each line is synced
/// before the item is dropped from the queue.
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

    /// Appends one line (an object; `at_unix_ms` is added). If the file cannot be written, the
    /// line is logged instead, so nothing disappears silently.
    pub fn write(&self, mut line: serde_json::Value) {
        if let Some(o) = line.as_object_mut() {
            o.insert("at_unix_ms".to_owned(), now_ms().into());
        }
        let mut guard = match self.file.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard.is_none() {
            if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                let _ = std::fs::create_dir_all(parent);
            }
            match std::fs::OpenOptions::new().create(true).append(true).open(&self.path) {
                Ok(f) => *guard = Some(f),
                Err(e) => {
                    tracing::error!(path = %self.path.display(), error = %e, line = %line,
                        "cannot open the dead-letter file; the refused item is logged here instead");
                    return;
                }
            }
        }
        if let Some(f) = guard.as_mut() {
            if let Err(e) = writeln!(f, "{line}").and_then(|_| f.sync_data()) {
                tracing::error!(path = %self.path.display(), error = %e, line = %line,
                    "cannot write the dead-letter file; the refused item is logged here instead");
                return;
            }
        }
        tracing::warn!(path = %self.path.display(), reason = %line["reason"], "refused for good; dead-lettered");
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
        dl.write(serde_json::json!({"reason": "bad"}));
        dl.write(serde_json::json!({"reason": "worse"}));
        let text = std::fs::read_to_string(dir.join("x.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["reason"], "worse");
        assert!(lines[0]["at_unix_ms"].as_u64().unwrap() > 1_700_000_000_000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

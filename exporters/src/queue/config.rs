//! Queue configuration (serde, defaults in one place, validation without I/O).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// When a push is acknowledged relative to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Acknowledge once queued (in memory, or written to the on-disk log without a sync). Survives
    /// a crash of the process when a directory is set (the OS still holds the writes), not of the
    /// machine.
    #[default]
    None,
    /// Acknowledge only after the items are synced to the on-disk log (`fdatasync`, shared by
    /// concurrent requests). Survives a crash of the machine. Needs `directory`.
    Wal,
}

/// What an exporter does with a request when its queue cannot take it (full, over the memory
/// limit, closing, or its disk failing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// This exporter skips the request (counted); the others and the client's acknowledgement are
    /// not held up.
    #[default]
    Drop,
    /// The whole request is refused with OTLP's retryable status, so nothing is acknowledged that
    /// this exporter did not take.
    Refuse,
}

/// A queue in front of an exporter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Directory for the on-disk log (one subdirectory per exporter). Without it the queue lives
    /// in memory only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<PathBuf>,
    /// `none` or `wal` (see the durability docs).
    pub durability: Durability,
    /// Memory queue: the most bytes held before new spans are refused with a retryable status.
    pub max_memory_bytes: u64,
    /// Disk queue: the most bytes of log kept on disk before new spans are refused.
    pub max_disk_bytes: u64,
    /// Size at which the on-disk log starts a new segment file.
    pub segment_bytes: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            directory: None,
            durability: Durability::None,
            max_memory_bytes: 256 * 1024 * 1024,
            max_disk_bytes: 4 * 1024 * 1024 * 1024,
            segment_bytes: 64 * 1024 * 1024,
        }
    }
}

impl QueueConfig {
    /// Problems with this section, each naming the field under `path`.
    pub fn problems(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.durability == Durability::Wal && self.directory.is_none() {
            out.push(format!(
                "{path}.durability: `wal` needs {path}.directory (where the log is kept), e.g. `directory: /var/lib/llmhub/queue`"
            ));
        }
        if self.max_memory_bytes == 0 {
            out.push(format!("{path}.max_memory_bytes: must be positive, got 0"));
        }
        if self.segment_bytes < 1024 * 1024 {
            out.push(format!(
                "{path}.segment_bytes: must be at least 1048576 (1 MiB), got {}",
                self.segment_bytes
            ));
        }
        if self.directory.is_some() && self.max_disk_bytes < self.segment_bytes {
            out.push(format!(
                "{path}.max_disk_bytes: must be at least segment_bytes ({}), got {}",
                self.segment_bytes, self.max_disk_bytes
            ));
        }
        out
    }
}

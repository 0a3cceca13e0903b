//! Sink errors, and the one function that decides what a database error means for a batch.

use tokio_postgres::error::SqlState;

/// Errors that stop the sink from starting.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Bad settings or unreadable files.
    #[error("postgres exporter: {0}")]
    Config(String),
    /// The `tls` section's files.
    #[error("postgres exporter: {0}")]
    Tls(llmhub_server::tls::TlsError),
    /// The queue could not be opened.
    #[error("postgres exporter: cannot open the queue: {0}")]
    Queue(std::io::Error),
}

// Not `#[from]`, which would also make the wrapped error the source: the message already holds
// it, and a `{:#}` print would repeat it.
impl From<llmhub_server::tls::TlsError> for SinkError {
    fn from(e: llmhub_server::tls::TlsError) -> Self {
        SinkError::Tls(e)
    }
}

impl From<std::io::Error> for SinkError {
    fn from(e: std::io::Error) -> Self {
        SinkError::Queue(e)
    }
}

/// What a failed write means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection is gone or the server is unavailable: reconnect and retry the batch.
    Connection,
    /// A row already exists: some of the batch was written before (a retry after a lost
    /// acknowledgement, or a replay). Write it again skipping existing rows.
    Duplicate,
    /// A row has no partition to go to: create partitions, then retry.
    MissingPartition,
    /// The database refused some row's values: find the rows (bisect) and dead-letter them.
    RowRejected,
    /// The transaction was rolled back for a conflict with another (serialization failure,
    /// deadlock; SQLSTATE class 40), at any statement or at COMMIT: retry the batch.
    Conflict,
    /// Anything else (permissions, a missing table, a full disk): retry later with backoff.
    Transient,
}

/// Classifies a database error for a COPY of a batch.
pub fn classify(e: &tokio_postgres::Error) -> Failure {
    let Some(db) = e.as_db_error() else {
        return Failure::Connection;
    };
    let code = db.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        return Failure::Duplicate;
    }
    if *code == SqlState::CHECK_VIOLATION && db.message().contains("no partition of relation") {
        return Failure::MissingPartition;
    }
    let class = &code.code()[..2];
    match class {
        // Connection exception, operator intervention (shutdown), insufficient resources.
        "08" | "57" | "53" => Failure::Connection,
        // Data exception, integrity constraint violation: something about a row.
        "22" | "23" => Failure::RowRejected,
        "40" => Failure::Conflict,
        _ => Failure::Transient,
    }
}

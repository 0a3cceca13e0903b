//! Why a request body is malformed: refused with INVALID_ARGUMENT over gRPC and 400 over HTTP,
//! final (the client must not retry it), its message naming the place in the request.

use super::wire::WireError;

/// A malformed request body.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    /// OTLP/JSON that does not follow the schema, at a JSON path (`.`: the request itself).
    #[error("invalid OTLP/JSON{}: {error}", at(path))]
    Json {
        /// Where, as `serde_path_to_error` writes it.
        path: String,
        /// The parser's reason.
        error: serde_json::Error,
    },
    /// Something follows the request object.
    #[error("invalid OTLP/JSON: trailing data after the request object: {0}")]
    TrailingJson(serde_json::Error),
    /// The JSON is not an object.
    #[error("invalid OTLP/JSON: the request must be a JSON object")]
    NotAnObject,
    /// A protobuf trace request llmhub's decoder cannot read.
    #[error("malformed ExportTraceServiceRequest protobuf: {0}")]
    Traces(WireError),
    /// A protobuf metrics or logs request prost cannot read.
    #[error("malformed {message} protobuf: {error}")]
    Protobuf {
        /// The message type.
        message: &'static str,
        /// prost's reason.
        error: prost::DecodeError,
    },
}

fn at(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        format!(" at {path}")
    }
}

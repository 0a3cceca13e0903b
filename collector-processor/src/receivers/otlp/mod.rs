//! The OTLP receiver: gRPC on 4317 and HTTP (protobuf and JSON) on 4318, per the OTLP
//! specification.

pub mod answer;
pub mod grpc;
pub mod http;
pub mod json;
pub mod json_logs;
pub mod logs;
pub mod malformed;
pub mod wire;

//! A borrowed, transport-neutral view of one OTLP span with its resource and scope: the input of
//! normalization. Receivers build it from protobuf or JSON without copying strings.

/// An attribute value, borrowed from the decoded request.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A string.
    Str(&'a str),
    /// A 64-bit signed integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// An array of values.
    Array(Vec<Value<'a>>),
    /// Bytes, key-value lists and empty values: carried but never read by normalization.
    Other,
}

impl<'a> Value<'a> {
    /// The string, if the value is one.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One attribute: key and value.
pub type Attribute<'a> = (&'a str, Value<'a>);

/// OTLP span status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusCode {
    /// `STATUS_CODE_UNSET` (0).
    #[default]
    Unset,
    /// `STATUS_CODE_OK` (1).
    Ok,
    /// `STATUS_CODE_ERROR` (2).
    Error,
}

impl StatusCode {
    /// Maps the OTLP enum integer; unknown values read as unset.
    pub fn from_i32(code: i32) -> Self {
        match code {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }
}

/// A span event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventView<'a> {
    /// Event name.
    pub name: &'a str,
    /// Event time, nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// Event attributes.
    pub attributes: Vec<Attribute<'a>>,
}

/// One span, borrowed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanView<'a> {
    /// Trace id bytes as received (valid when 16 bytes, not all zero).
    pub trace_id: &'a [u8],
    /// Span id bytes as received (valid when 8 bytes, not all zero).
    pub span_id: &'a [u8],
    /// Parent span id bytes; empty for a root span.
    pub parent_span_id: &'a [u8],
    /// Span name.
    pub name: &'a str,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End time, nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
    /// Span attributes.
    pub attributes: Vec<Attribute<'a>>,
    /// Span events.
    pub events: Vec<EventView<'a>>,
    /// Status code.
    pub status_code: StatusCode,
    /// Status message.
    pub status_message: &'a str,
}

/// What normalization needs of the resource and instrumentation scope a span was reported under,
/// read once per resource (not once per span: a request may carry many spans under one resource
/// with many attributes).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContextView<'a> {
    /// The resource's `service.name`.
    pub service_name: Option<&'a str>,
    /// The resource's `deployment.environment.name` (or the older `deployment.environment`).
    pub environment: Option<&'a str>,
    /// The resource's value of each configured tenant key, in the keys' order.
    pub tenants: Vec<Option<&'a str>>,
    /// Instrumentation scope name.
    pub scope_name: &'a str,
}

impl<'a> ContextView<'a> {
    /// Reads the resource attributes once.
    pub fn new(resource: &[Attribute<'a>], scope_name: &'a str, tenant_keys: &[String]) -> Self {
        let s = |k: &str| find(resource, k).and_then(Value::as_str);
        ContextView {
            service_name: s("service.name"),
            environment: s("deployment.environment.name").or_else(|| s("deployment.environment")),
            tenants: tenant_keys.iter().map(|k| s(k)).collect(),
            scope_name,
        }
    }
}

/// Finds an attribute by key (last one wins, as the OTLP data model says keys are unique and
/// receivers keep the last occurrence).
pub fn find<'v, 'a>(attrs: &'v [Attribute<'a>], key: &str) -> Option<&'v Value<'a>> {
    attrs.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v)
}

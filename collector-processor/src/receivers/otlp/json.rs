//! OTLP/JSON decoding, as the OTLP specification maps protobuf to JSON: lowerCamelCase keys (the
//! original snake_case names are accepted too), trace and span ids as hex strings, 64-bit integers
//! as strings or numbers, enums as integers (or their names), unknown fields ignored, `null` read as
//! the default value.
//!
//! Structural errors (a field of the wrong type) refuse the whole request with the JSON path of the
//! problem. An id that is not valid hex decodes to an empty id, so normalization rejects only that
//! span and its neighbours still count.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

use super::malformed::Malformed;

/// Decodes an OTLP/JSON trace export request.
pub fn decode_traces(body: &[u8]) -> Result<ExportTraceServiceRequest, Malformed> {
    decode::<JExport>(body).map(Into::into)
}

/// Reads `body` as one JSON value of `T`, naming the path of a structural error.
pub(super) fn decode<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, Malformed> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| Malformed::Json {
        path: e.path().to_string(),
        error: e.into_inner(),
    })?;
    de.end().map_err(Malformed::TrailingJson)?;
    Ok(value)
}

pub(super) fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// An integer given as a JSON number (integral) or a decimal string, read wide enough for both
/// the signed and the unsigned 64-bit fields; [`U64`] and [`I64`] narrow it.
struct Wide(i128);

impl<'de> Deserialize<'de> for Wide {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Wide;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a 64-bit integer as a number or a decimal string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Wide, E> {
                Ok(Wide(i128::from(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Wide, E> {
                Ok(Wide(i128::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Wide, E> {
                if v.fract() == 0.0 && (-9.3e18..1.9e19).contains(&v) {
                    Ok(Wide(v as i128))
                } else {
                    Err(E::custom(format!("{v} is not a 64-bit integer")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Wide, E> {
                v.trim()
                    .parse()
                    .map(Wide)
                    .map_err(|_| E::custom(format!("{v:?} is not an integer")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A 64-bit unsigned integer as a JSON number or decimal string.
#[derive(Default)]
pub(super) struct U64(pub(super) u64);

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Wide(v) = Wide::deserialize(d)?;
        u64::try_from(v)
            .map(U64)
            .map_err(|_| de::Error::custom(format!("{v} is not an unsigned 64-bit integer")))
    }
}

/// A 64-bit signed integer as a JSON number or decimal string.
struct I64(i64);

impl<'de> Deserialize<'de> for I64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Wide(v) = Wide::deserialize(d)?;
        i64::try_from(v)
            .map(I64)
            .map_err(|_| de::Error::custom(format!("{v} does not fit a signed 64-bit integer")))
    }
}

/// A double as a JSON number or one of the strings "NaN", "Infinity", "-Infinity" (or a decimal).
struct F64(f64);

impl<'de> Deserialize<'de> for F64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = F64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, or \"NaN\", \"Infinity\", \"-Infinity\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<F64, E> {
                Ok(F64(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<F64, E> {
                Ok(F64(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<F64, E> {
                Ok(F64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<F64, E> {
                match v {
                    "NaN" => Ok(F64(f64::NAN)),
                    "Infinity" => Ok(F64(f64::INFINITY)),
                    "-Infinity" => Ok(F64(f64::NEG_INFINITY)),
                    s => s
                        .trim()
                        .parse()
                        .map(F64)
                        .map_err(|_| E::custom(format!("{s:?} is not a number"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// An enum as its integer or its proto name.
#[derive(Default)]
pub(super) struct Enum(pub(super) i32);

const ENUM_NAMES: &[(&str, i32)] = &[
    ("SPAN_KIND_UNSPECIFIED", 0),
    ("SPAN_KIND_INTERNAL", 1),
    ("SPAN_KIND_SERVER", 2),
    ("SPAN_KIND_CLIENT", 3),
    ("SPAN_KIND_PRODUCER", 4),
    ("SPAN_KIND_CONSUMER", 5),
    ("STATUS_CODE_UNSET", 0),
    ("STATUS_CODE_OK", 1),
    ("STATUS_CODE_ERROR", 2),
];

impl<'de> Deserialize<'de> for Enum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Enum;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an enum value as an integer or its name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Enum, E> {
                i32::try_from(v)
                    .map(Enum)
                    .map_err(|_| E::custom(format!("enum value {v} out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Enum, E> {
                i32::try_from(v)
                    .map(Enum)
                    .map_err(|_| E::custom(format!("enum value {v} out of range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Enum, E> {
                ENUM_NAMES
                    .iter()
                    .find(|(n, _)| *n == v)
                    .map(|(_, i)| Enum(*i))
                    .ok_or_else(|| E::custom(format!("unknown enum name {v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

pub(super) fn hex_id(s: &str) -> Vec<u8> {
    hex::decode(s.trim()).unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JExport {
    #[serde(default, deserialize_with = "nullable", alias = "resource_spans")]
    resource_spans: Vec<JResourceSpans>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JResourceSpans {
    #[serde(default)]
    resource: Option<JResource>,
    #[serde(default, deserialize_with = "nullable", alias = "scope_spans")]
    scope_spans: Vec<JScopeSpans>,
    #[serde(default, deserialize_with = "nullable", alias = "schema_url")]
    schema_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JResource {
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JKeyValue>,
    #[serde(default, deserialize_with = "nullable", alias = "dropped_attributes_count")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JScopeSpans {
    #[serde(default)]
    scope: Option<JScope>,
    #[serde(default, deserialize_with = "nullable")]
    spans: Vec<JSpan>,
    #[serde(default, deserialize_with = "nullable", alias = "schema_url")]
    schema_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JScope {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    version: String,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JKeyValue>,
    #[serde(default, deserialize_with = "nullable", alias = "dropped_attributes_count")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JSpan {
    #[serde(default, deserialize_with = "nullable", alias = "trace_id")]
    trace_id: String,
    #[serde(default, deserialize_with = "nullable", alias = "span_id")]
    span_id: String,
    #[serde(default, deserialize_with = "nullable", alias = "trace_state")]
    trace_state: String,
    #[serde(default, deserialize_with = "nullable", alias = "parent_span_id")]
    parent_span_id: String,
    #[serde(default, deserialize_with = "nullable")]
    flags: u32,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    kind: Enum,
    #[serde(default, deserialize_with = "nullable", alias = "start_time_unix_nano")]
    start_time_unix_nano: U64,
    #[serde(default, deserialize_with = "nullable", alias = "end_time_unix_nano")]
    end_time_unix_nano: U64,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JKeyValue>,
    #[serde(default, deserialize_with = "nullable", alias = "dropped_attributes_count")]
    dropped_attributes_count: u32,
    #[serde(default, deserialize_with = "nullable")]
    events: Vec<JEvent>,
    #[serde(default, deserialize_with = "nullable", alias = "dropped_events_count")]
    dropped_events_count: u32,
    #[serde(default, deserialize_with = "nullable")]
    links: Vec<JLink>,
    #[serde(default, deserialize_with = "nullable", alias = "dropped_links_count")]
    dropped_links_count: u32,
    #[serde(default)]
    status: Option<JStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JEvent {
    #[serde(default, deserialize_with = "nullable", alias = "time_unix_nano")]
    time_unix_nano: U64,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JKeyValue>,
    #[serde(default, deserialize_with = "nullable", alias = "dropped_attributes_count")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JLink {
    #[serde(default, deserialize_with = "nullable", alias = "trace_id")]
    trace_id: String,
    #[serde(default, deserialize_with = "nullable", alias = "span_id")]
    span_id: String,
    #[serde(default, deserialize_with = "nullable", alias = "trace_state")]
    trace_state: String,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<JKeyValue>,
    #[serde(default, deserialize_with = "nullable", alias = "dropped_attributes_count")]
    dropped_attributes_count: u32,
    #[serde(default, deserialize_with = "nullable")]
    flags: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JStatus {
    #[serde(default, deserialize_with = "nullable")]
    message: String,
    #[serde(default, deserialize_with = "nullable")]
    code: Enum,
}

#[derive(Deserialize)]
pub(super) struct JKeyValue {
    #[serde(default, deserialize_with = "nullable")]
    key: String,
    #[serde(default)]
    value: Option<JAnyValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JAnyValue {
    #[serde(default, alias = "string_value")]
    string_value: Option<String>,
    #[serde(default, alias = "bool_value")]
    bool_value: Option<bool>,
    #[serde(default, alias = "int_value")]
    int_value: Option<I64>,
    #[serde(default, alias = "double_value")]
    double_value: Option<F64>,
    #[serde(default, alias = "array_value")]
    array_value: Option<JArray>,
    #[serde(default, alias = "kvlist_value")]
    kvlist_value: Option<JKvList>,
    #[serde(default, alias = "bytes_value")]
    bytes_value: Option<String>,
}

#[derive(Deserialize)]
struct JArray {
    #[serde(default, deserialize_with = "nullable")]
    values: Vec<JAnyValue>,
}

#[derive(Deserialize)]
struct JKvList {
    #[serde(default, deserialize_with = "nullable")]
    values: Vec<JKeyValue>,
}

impl From<JResource> for Resource {
    fn from(r: JResource) -> Self {
        Resource {
            attributes: kvs(r.attributes),
            dropped_attributes_count: r.dropped_attributes_count,
            entity_refs: Vec::new(),
        }
    }
}

impl From<JScope> for InstrumentationScope {
    fn from(s: JScope) -> Self {
        InstrumentationScope {
            name: s.name,
            version: s.version,
            attributes: kvs(s.attributes),
            dropped_attributes_count: s.dropped_attributes_count,
        }
    }
}

impl From<JExport> for ExportTraceServiceRequest {
    fn from(j: JExport) -> Self {
        ExportTraceServiceRequest {
            resource_spans: j.resource_spans.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<JResourceSpans> for ResourceSpans {
    fn from(j: JResourceSpans) -> Self {
        ResourceSpans {
            resource: j.resource.map(Into::into),
            scope_spans: j.scope_spans.into_iter().map(Into::into).collect(),
            schema_url: j.schema_url,
        }
    }
}

impl From<JScopeSpans> for ScopeSpans {
    fn from(j: JScopeSpans) -> Self {
        ScopeSpans {
            scope: j.scope.map(Into::into),
            spans: j.spans.into_iter().map(Into::into).collect(),
            schema_url: j.schema_url,
        }
    }
}

impl From<JSpan> for Span {
    fn from(j: JSpan) -> Self {
        Span {
            trace_id: hex_id(&j.trace_id),
            span_id: hex_id(&j.span_id),
            trace_state: j.trace_state,
            parent_span_id: hex_id(&j.parent_span_id),
            flags: j.flags,
            name: j.name,
            kind: j.kind.0,
            start_time_unix_nano: j.start_time_unix_nano.0,
            end_time_unix_nano: j.end_time_unix_nano.0,
            attributes: kvs(j.attributes),
            dropped_attributes_count: j.dropped_attributes_count,
            events: j
                .events
                .into_iter()
                .map(|e| span::Event {
                    time_unix_nano: e.time_unix_nano.0,
                    name: e.name,
                    attributes: kvs(e.attributes),
                    dropped_attributes_count: e.dropped_attributes_count,
                })
                .collect(),
            dropped_events_count: j.dropped_events_count,
            links: j
                .links
                .into_iter()
                .map(|l| span::Link {
                    trace_id: hex_id(&l.trace_id),
                    span_id: hex_id(&l.span_id),
                    trace_state: l.trace_state,
                    attributes: kvs(l.attributes),
                    dropped_attributes_count: l.dropped_attributes_count,
                    flags: l.flags,
                })
                .collect(),
            dropped_links_count: j.dropped_links_count,
            status: j.status.map(|s| Status {
                message: s.message,
                code: s.code.0,
            }),
        }
    }
}

pub(super) fn kvs(list: Vec<JKeyValue>) -> Vec<KeyValue> {
    list.into_iter()
        .map(|kv| KeyValue {
            key: kv.key,
            value: kv.value.map(any),
            ..Default::default()
        })
        .collect()
}

pub(super) fn any(v: JAnyValue) -> AnyValue {
    let value = if let Some(s) = v.string_value {
        Some(any_value::Value::StringValue(s))
    } else if let Some(b) = v.bool_value {
        Some(any_value::Value::BoolValue(b))
    } else if let Some(i) = v.int_value {
        Some(any_value::Value::IntValue(i.0))
    } else if let Some(d) = v.double_value {
        Some(any_value::Value::DoubleValue(d.0))
    } else if let Some(a) = v.array_value {
        Some(any_value::Value::ArrayValue(ArrayValue {
            values: a.values.into_iter().map(any).collect(),
        }))
    } else if let Some(kv) = v.kvlist_value {
        Some(any_value::Value::KvlistValue(KeyValueList { values: kvs(kv.values) }))
    } else {
        // Bytes are never read by normalization; their content is not kept.
        v.bytes_value.map(|_| any_value::Value::BytesValue(Vec::new()))
    };
    AnyValue { value }
}

/// Counts the data points of an OTLP/JSON metrics request after checking it is a JSON object.
/// Used to answer `/v1/metrics`.
pub fn count_data_points(body: &[u8]) -> Result<i64, Malformed> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|error| Malformed::Json {
        path: ".".to_owned(),
        error,
    })?;
    if !v.is_object() {
        return Err(Malformed::NotAnObject);
    }
    let arr = |v: &serde_json::Value, k: &str, alt: &str| -> Vec<serde_json::Value> {
        v.get(k)
            .or_else(|| v.get(alt))
            .and_then(|x| x.as_array())
            .cloned()
            .unwrap_or_default()
    };
    let mut n = 0i64;
    for rm in arr(&v, "resourceMetrics", "resource_metrics") {
        for sm in arr(&rm, "scopeMetrics", "scope_metrics") {
            for m in arr(&sm, "metrics", "metrics") {
                for kind in ["gauge", "sum", "histogram", "exponentialHistogram", "summary"] {
                    if let Some(data) = m.get(kind) {
                        n += arr(data, "dataPoints", "data_points").len() as i64;
                    }
                }
            }
        }
    }
    Ok(n)
}

//! A borrowing decoder for `ExportTraceServiceRequest` protobuf: the request bytes are read
//! straight into the views normalization consumes, with every string borrowed from the buffer.
//! The owned prost decode spends most of its time allocating the strings of attributes llmhub never
//! reads; this decoder allocates only the attribute and span lists.
//!
//! For the fields llmhub reads it decodes as the generated decoder does (unknown fields skipped, the
//! last value wins for singular fields, repeated fields accumulate, strings must be UTF-8); the
//! contents of fields it does not read (links, trace state, scope version and attributes, key-value
//! lists, bytes) are skipped by length without being checked. Malformed framing is refused with a
//! message, never a panic. A test compares it with prost on every fixture and on random input.

use crate::processors::view::{ResourceView, ScopeView};
use llmhub_core::span::{Attribute, EventView, SpanView, StatusCode, Value};

/// Deepest `AnyValue` nesting read; deeper values are skipped and read as [`Value::Other`].
const MAX_DEPTH: usize = 8;

type Result<T> = std::result::Result<T, WireError>;

/// Why a protobuf request could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Its framing is broken: a varint, a length, a field number, a group.
    #[error("{0}")]
    Framing(&'static str),
    /// A field of a wire type protobuf does not have.
    #[error("unsupported wire type {wire} for field {field}")]
    WireType {
        /// The wire type.
        wire: u64,
        /// The field number.
        field: u32,
    },
    /// A field inside a skipped group of a wire type protobuf does not have.
    #[error("unsupported wire type {0}")]
    GroupWireType(u64),
    /// A string field that is not UTF-8.
    #[error("{0}: invalid UTF-8")]
    Utf8(&'static str),
    /// A known field of another wire type than its schema's.
    #[error("{0}: wrong wire type")]
    WrongType(&'static str),
}

impl From<&'static str> for WireError {
    fn from(what: &'static str) -> Self {
        WireError::Framing(what)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

#[derive(Clone, Copy)]
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
    /// A (deprecated) group: skipped, as the generated decoder skips unknown groups.
    Group,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(WireError::Framing("truncated varint"));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError::Framing("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or("length beyond the end of the message")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field, or `None` at the end.
    fn next(&mut self) -> Result<Option<(u32, Field<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| WireError::Framing("field number out of range"))?;
        if number == 0 {
            return Err(WireError::Framing("field number 0"));
        }
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Field::Fixed64(u64::from_le_bytes(b.try_into().map_err(|_| "short fixed64")?))
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| WireError::Framing("length out of range"))?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed32
            }
            3 => {
                self.skip_group(number, 0)?;
                Field::Group
            }
            w => return Err(WireError::WireType { wire: w, field: number }),
        };
        Ok(Some((number, field)))
    }

    /// Skips a group's fields up to its end marker.
    fn skip_group(&mut self, number: u32, depth: usize) -> Result<()> {
        if depth > 100 {
            return Err(WireError::Framing("recursion limit reached"));
        }
        loop {
            if self.pos >= self.buf.len() {
                return Err(WireError::Framing("unterminated group"));
            }
            let key = self.varint()?;
            let inner = u32::try_from(key >> 3).map_err(|_| WireError::Framing("field number out of range"))?;
            if inner == 0 {
                return Err(WireError::Framing("field number 0"));
            }
            match key & 7 {
                0 => {
                    self.varint()?;
                }
                1 => {
                    self.take(8)?;
                }
                2 => {
                    let len = usize::try_from(self.varint()?).map_err(|_| WireError::Framing("length out of range"))?;
                    self.take(len)?;
                }
                5 => {
                    self.take(4)?;
                }
                3 => self.skip_group(inner, depth + 1)?,
                4 if inner == number => return Ok(()),
                4 => return Err(WireError::Framing("unexpected end group")),
                w => return Err(WireError::GroupWireType(w)),
            }
        }
    }
}

fn string<'a>(f: Field<'a>, what: &'static str) -> Result<&'a str> {
    match f {
        Field::Bytes(b) => std::str::from_utf8(b).map_err(|_| WireError::Utf8(what)),
        _ => Err(WireError::WrongType(what)),
    }
}

fn bytes<'a>(f: Field<'a>, what: &'static str) -> Result<&'a [u8]> {
    match f {
        Field::Bytes(b) => Ok(b),
        _ => Err(WireError::WrongType(what)),
    }
}

fn fixed64(f: Field<'_>, what: &'static str) -> Result<u64> {
    match f {
        Field::Fixed64(v) => Ok(v),
        _ => Err(WireError::WrongType(what)),
    }
}

fn varint(f: Field<'_>, what: &'static str) -> Result<u64> {
    match f {
        Field::Varint(v) => Ok(v),
        _ => Err(WireError::WrongType(what)),
    }
}

/// Decodes a request into views borrowing from `buf`.
pub fn decode_request(buf: &[u8]) -> Result<Vec<ResourceView<'_>>> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while let Some((n, f)) = r.next()? {
        if n == 1 {
            out.push(resource_spans(bytes(f, "resource_spans")?)?);
        }
    }
    Ok(out)
}

fn resource_spans(buf: &[u8]) -> Result<ResourceView<'_>> {
    let mut r = Reader::new(buf);
    let mut view = ResourceView {
        attributes: Vec::new(),
        scopes: Vec::new(),
    };
    while let Some((n, f)) = r.next()? {
        match n {
            1 => {
                let mut rr = Reader::new(bytes(f, "resource")?);
                while let Some((m, g)) = rr.next()? {
                    if m == 1 {
                        view.attributes.push(key_value(bytes(g, "resource.attributes")?, 0)?);
                    }
                }
            }
            2 => view.scopes.push(scope_spans(bytes(f, "scope_spans")?)?),
            _ => {}
        }
    }
    Ok(view)
}

fn scope_spans(buf: &[u8]) -> Result<ScopeView<'_>> {
    let mut r = Reader::new(buf);
    // Each span's attributes are read into this list first and then moved into one allocation of
    // their exact number: growing each span's own list one push at a time cost four or five
    // reallocations per span.
    let mut scratch = Vec::new();
    let mut view = ScopeView {
        scope_name: "",
        spans: Vec::new(),
    };
    while let Some((n, f)) = r.next()? {
        match n {
            1 => {
                let mut rr = Reader::new(bytes(f, "scope")?);
                while let Some((m, g)) = rr.next()? {
                    if m == 1 {
                        view.scope_name = string(g, "scope.name")?;
                    }
                }
            }
            2 => view.spans.push(span(bytes(f, "span")?, &mut scratch)?),
            _ => {}
        }
    }
    Ok(view)
}

fn span<'a>(buf: &'a [u8], scratch: &mut Vec<Attribute<'a>>) -> Result<SpanView<'a>> {
    let mut r = Reader::new(buf);
    let mut s = SpanView::default();
    scratch.clear();
    while let Some((n, f)) = r.next()? {
        match n {
            1 => s.trace_id = bytes(f, "span.trace_id")?,
            2 => s.span_id = bytes(f, "span.span_id")?,
            4 => s.parent_span_id = bytes(f, "span.parent_span_id")?,
            5 => s.name = string(f, "span.name")?,
            7 => s.start_unix_nano = fixed64(f, "span.start_time_unix_nano")?,
            8 => s.end_unix_nano = fixed64(f, "span.end_time_unix_nano")?,
            9 => scratch.push(key_value(bytes(f, "span.attributes")?, 0)?),
            11 => s.events.push(event(bytes(f, "span.events")?)?),
            15 => {
                let mut rr = Reader::new(bytes(f, "span.status")?);
                while let Some((m, g)) = rr.next()? {
                    match m {
                        2 => s.status_message = string(g, "span.status.message")?,
                        3 => s.status_code = StatusCode::from_i32(varint(g, "span.status.code")? as i32),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    s.attributes = Vec::with_capacity(scratch.len());
    s.attributes.append(scratch);
    Ok(s)
}

fn event(buf: &[u8]) -> Result<EventView<'_>> {
    let mut r = Reader::new(buf);
    let mut e = EventView::default();
    while let Some((n, f)) = r.next()? {
        match n {
            1 => e.time_unix_nano = fixed64(f, "event.time_unix_nano")?,
            2 => e.name = string(f, "event.name")?,
            3 => e.attributes.push(key_value(bytes(f, "event.attributes")?, 0)?),
            _ => {}
        }
    }
    Ok(e)
}

fn key_value(buf: &[u8], depth: usize) -> Result<Attribute<'_>> {
    match key_value_common(buf) {
        Some(kv) => kv,
        None => key_value_general(buf, depth),
    }
}

fn key_value_general(buf: &[u8], depth: usize) -> Result<Attribute<'_>> {
    let mut r = Reader::new(buf);
    let (mut key, mut value) = ("", Value::Other);
    while let Some((n, f)) = r.next()? {
        match n {
            1 => key = string(f, "key")?,
            2 => value = any_value(bytes(f, "value")?, depth)?,
            _ => {}
        }
    }
    Ok((key, value))
}

/// The shape nearly every SDK writes an attribute in, read without the general field loop: the key
/// (field 1), then the value (field 2) ending the message, holding one string, bool, int or
/// double. `None` for any other shape (fields repeated, reordered or unknown, other values),
/// which the general decoder reads; either way the result is the same.
fn key_value_common(buf: &[u8]) -> Option<Result<Attribute<'_>>> {
    let (key, rest) = delimited(buf, 0x0a)?;
    let (v, rest) = delimited(rest, 0x12)?;
    if !rest.is_empty() {
        return None;
    }
    let key = match std::str::from_utf8(key) {
        Ok(k) => k,
        Err(_) => return Some(Err(WireError::Utf8("key"))),
    };
    let value = match v.first() {
        // An empty AnyValue.
        None => Value::Other,
        Some(0x0a) => {
            let (s, rest) = delimited(v, 0x0a)?;
            if !rest.is_empty() {
                return None;
            }
            match std::str::from_utf8(s) {
                Ok(s) => Value::Str(s),
                Err(_) => return Some(Err(WireError::Utf8("string_value"))),
            }
        }
        Some(&tag @ (0x10 | 0x18)) => {
            let mut vr = Reader { buf: v, pos: 1 };
            let x = vr.varint().ok()?;
            if vr.pos != v.len() {
                return None;
            }
            if tag == 0x10 {
                Value::Bool(x != 0)
            } else {
                Value::Int(x as i64)
            }
        }
        Some(0x21) if v.len() == 9 => Value::Double(f64::from_bits(u64::from_le_bytes(v[1..9].try_into().ok()?))),
        _ => return None,
    };
    Some(Ok((key, value)))
}

/// The length-delimited field at the front of `buf` when its one-byte tag is `tag`, and what
/// follows it; `None` otherwise or when it is cut short.
fn delimited(buf: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if buf.first() != Some(&tag) {
        return None;
    }
    let mut r = Reader { buf, pos: 1 };
    let len = usize::try_from(r.varint().ok()?).ok()?;
    let field = r.take(len).ok()?;
    Some((field, &buf[r.pos..]))
}

fn any_value(buf: &[u8], depth: usize) -> Result<Value<'_>> {
    let mut r = Reader::new(buf);
    let mut value = Value::Other;
    while let Some((n, f)) = r.next()? {
        value = match n {
            1 => Value::Str(string(f, "string_value")?),
            2 => Value::Bool(varint(f, "bool_value")? != 0),
            3 => Value::Int(varint(f, "int_value")? as i64),
            4 => Value::Double(f64::from_bits(fixed64(f, "double_value")?)),
            5 => {
                let inner = bytes(f, "array_value")?;
                if depth >= MAX_DEPTH {
                    Value::Other
                } else {
                    let mut items = Vec::new();
                    let mut rr = Reader::new(inner);
                    while let Some((m, g)) = rr.next()? {
                        if m == 1 {
                            items.push(any_value(bytes(g, "array_value.values")?, depth + 1)?);
                        }
                    }
                    Value::Array(items)
                }
            }
            6 => {
                bytes(f, "kvlist_value")?;
                Value::Other
            }
            7 => {
                bytes(f, "bytes_value")?;
                Value::Other
            }
            _ => value,
        };
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processors::view;
    use crate::receivers::otlp::json;
    use llmhub_testkit::{realistic_request, Restamp};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::Span;
    use proptest::prelude::*;
    use prost::Message;

    /// Debug text compares NaN doubles as equal.
    fn same(a: &[ResourceView<'_>], b: &[ResourceView<'_>]) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    fn check(bytes: &[u8]) {
        let ours = decode_request(bytes);
        if let Ok(req) = ExportTraceServiceRequest::decode(bytes) {
            let ours = ours.unwrap_or_else(|e| panic!("prost decodes but wire fails: {e}"));
            assert!(same(&ours, &view::request(&req)), "views differ");
        }
    }

    #[test]
    fn matches_prost_on_every_dialect_fixture_and_realistic_batches() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/dialects");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let req = json::decode_traces(&std::fs::read(&path).unwrap()).unwrap();
                let bytes = req.encode_to_vec();
                assert!(
                    same(&decode_request(&bytes).unwrap(), &view::request(&req)),
                    "{}",
                    path.display()
                );
                n += 1;
            }
        }
        assert!(n >= 10);
        for seed in 0..8 {
            let req = llmhub_testkit::realistic_request(512, seed);
            let bytes = req.encode_to_vec();
            assert!(same(&decode_request(&bytes).unwrap(), &view::request(&req)));
        }
    }

    #[test]
    fn malformed_input_is_refused_with_what_is_wrong() {
        for (bad, want) in [
            (&[0xff, 0xff, 0xff][..], WireError::Framing("truncated varint")),
            (
                &[0x0a, 0x05, 0x01][..],
                WireError::Framing("length beyond the end of the message"),
            ),
            (&[0x0b][..], WireError::Framing("unterminated group")),
            (&[0x00, 0x01][..], WireError::Framing("field number 0")),
            (&[0x0e][..], WireError::WireType { wire: 6, field: 1 }),
            (&[0x08, 0x01][..], WireError::WrongType("resource_spans")),
        ] {
            assert_eq!(decode_request(bad).unwrap_err(), want, "{bad:x?}");
        }
    }

    /// The common-shape reader agrees with the general one wherever it answers.
    fn same_attribute(bytes: &[u8]) -> bool {
        match key_value_common(bytes) {
            None => true,
            Some(fast) => format!("{fast:?}") == format!("{:?}", key_value_general(bytes, 0)),
        }
    }

    fn any_value_strategy() -> impl Strategy<Value = Option<any_value::Value>> {
        prop_oneof![
            Just(None),
            ".{0,200}".prop_map(|s| Some(any_value::Value::StringValue(s))),
            any::<bool>().prop_map(|b| Some(any_value::Value::BoolValue(b))),
            any::<i64>().prop_map(|i| Some(any_value::Value::IntValue(i))),
            any::<f64>().prop_map(|d| Some(any_value::Value::DoubleValue(d))),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| Some(any_value::Value::BytesValue(b))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Attributes as prost writes them (the common shape), with trailing or leading fields
        /// and bytes flipped: the common-shape reader answers as the general one or not at all.
        #[test]
        fn common_attribute_shape(
            key in ".{0,150}",
            value in any_value_strategy(),
            prefix in proptest::collection::vec(any::<u8>(), 0..3),
            suffix in proptest::collection::vec(any::<u8>(), 0..3),
            flip in proptest::option::of((any::<usize>(), any::<u8>())),
        ) {
            let kv = KeyValue { key, value: Some(AnyValue { value }), ..Default::default() };
            let mut bytes = kv.encode_to_vec();
            // (prost leaves an empty key out, and bytes values take the general path.)
            let bytes_value = matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()), Some(any_value::Value::BytesValue(_)));
            if !kv.key.is_empty() && !bytes_value {
                prop_assert!(key_value_common(&bytes).is_some_and(|r| r.is_ok()), "the common shape is read directly");
            }
            prop_assert!(same_attribute(&bytes));
            if let Some((at, x)) = flip {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] ^= x;
                }
            }
            prop_assert!(same_attribute(&bytes));
            let mut framed = prefix.clone();
            framed.extend_from_slice(&bytes);
            framed.extend_from_slice(&suffix);
            prop_assert!(same_attribute(&framed));
        }

        /// Random bytes never panic, and whatever prost accepts decodes to the same views.
        #[test]
        fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            check(&bytes);
        }

        /// Corrupted real requests: truncated or with bytes flipped.
        #[test]
        fn corrupted_requests(seed in 0u64..4, cut in 0usize..4000, flips in proptest::collection::vec((0usize..4000, any::<u8>()), 0..4)) {
            let mut bytes = llmhub_testkit::realistic_request(4, seed).encode_to_vec();
            for (at, v) in flips {
                let i = at % bytes.len();
                bytes[i] ^= v;
            }
            bytes.truncate(cut.min(bytes.len()));
            check(&bytes);
        }
    }

    fn processor() -> crate::processors::genai::GenAiProcessor {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new(&mut registry, 10_000, 1_000));
        let matcher = crate::processors::pricing::matcher(&Default::default()).expect("built-in catalog");
        crate::processors::genai::GenAiProcessor::new(&Default::default(), matcher, metrics).collecting()
    }

    #[test]
    fn restamped_rounds_are_new_spans_of_the_same_shape() {
        let bytes = realistic_request(64, 3).encode_to_vec();
        let r = Restamp::new(&bytes);
        assert_eq!(r.spans(), 64);
        assert_eq!(r.round(0), bytes);
        let (a, b) = (
            ExportTraceServiceRequest::decode(&bytes[..]).unwrap(),
            ExportTraceServiceRequest::decode(&r.round(5)[..]).unwrap(),
        );
        assert_eq!(r.round(5).len(), bytes.len());
        let spans = |q: &ExportTraceServiceRequest| {
            q.resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| s.spans.clone())
                .collect::<Vec<_>>()
        };
        for (x, y) in spans(&a).iter().zip(spans(&b).iter()) {
            assert_ne!(x.trace_id, y.trace_id);
            assert_eq!(x.trace_id[..8], y.trace_id[..8]);
            assert_eq!(y.start_time_unix_nano, x.start_time_unix_nano + 5 * 3_600_000_000_000);
            assert_eq!(y.end_time_unix_nano, x.end_time_unix_nano + 5 * 3_600_000_000_000);
            for (e, f) in x.events.iter().zip(&y.events) {
                assert_eq!(f.time_unix_nano, e.time_unix_nano + 5 * 3_600_000_000_000);
            }
            assert_eq!(x.attributes, y.attributes);
        }

        // The OTLP/JSON form of the request, restamped, reads as the restamped protobuf does.
        let j = Restamp::json(&serde_json::to_vec(&a).unwrap());
        assert_eq!(j.spans(), 64);
        assert_eq!(j.round(0), serde_json::to_vec(&a).unwrap());
        // (Compared field by field: the JSON decoder may read a double's last digit differently.)
        let from_json = json::decode_traces(&j.round(5)).unwrap();
        let (js, ps) = (spans(&from_json), spans(&b));
        assert_eq!(js.len(), ps.len());
        for (x, y) in js.iter().zip(&ps) {
            assert_eq!((&x.trace_id, &x.span_id), (&y.trace_id, &y.span_id));
            assert_eq!(
                (x.start_time_unix_nano, x.end_time_unix_nano),
                (y.start_time_unix_nano, y.end_time_unix_nano)
            );
            let times = |s: &Span| s.events.iter().map(|e| e.time_unix_nano).collect::<Vec<_>>();
            assert_eq!(times(x), times(y));
        }

        // Deduplication takes a resent round for a copy, and a new round for new calls.
        let p = processor();
        let run = |buf: &[u8]| {
            let views = decode_request(buf).unwrap();
            p.process_views(&views, crate::metrics::Transport::Grpc).records.len()
        };
        let first = run(&r.round(0));
        assert!(first > 32, "{first} calls recorded");
        assert_eq!(run(&r.round(0)), 0, "the same round again is all duplicates");
        assert_eq!(run(&r.round(1)), first);
        assert_eq!(run(&r.round(2)), first);
    }
}

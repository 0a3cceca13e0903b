//! One record → one tuple of PostgreSQL's binary COPY format, in [`COLUMNS`] order.
//!
//! Rows are encoded once, when they are queued; the queue (memory or disk) holds tuples, and a
//! writer sends a batch as the COPY header, the tuples and the trailer. Field encodings are those
//! of `postgres-types` (the same code tokio-postgres uses for parameters).

use super::schema::COLUMNS;
use bytes::{BufMut, BytesMut};
use llmhub_core::LlmCall;
use postgres_types::{IsNull, ToSql, Type};
use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The COPY binary header (signature, flags, extension length).
pub const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The COPY binary trailer.
pub const COPY_TRAILER: &[u8] = &[0xff, 0xff];

/// A value that could not be encoded (it names the column).
#[derive(Debug, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct EncodeError {
    /// The column.
    pub column: &'static str,
    /// What was wrong.
    pub message: String,
}

struct Tuple<'a> {
    out: &'a mut BytesMut,
    index: usize,
}

impl Tuple<'_> {
    fn put<T: ToSql>(&mut self, value: &T, ty: &Type) -> Result<(), EncodeError> {
        let column = COLUMNS.get(self.index).map_or("?", |c| c.name);
        self.index += 1;
        let at = self.out.len();
        self.out.put_i32(0);
        match value.to_sql(ty, self.out) {
            Ok(IsNull::Yes) => {
                self.out.truncate(at);
                self.out.put_i32(-1);
            }
            Ok(IsNull::No) => {
                let len = self.out.len() - at - 4;
                let len = i32::try_from(len).map_err(|_| EncodeError {
                    column,
                    message: format!("{len} bytes is too long for one field"),
                })?;
                self.out[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
            Err(e) => {
                self.out.truncate(at);
                return Err(EncodeError {
                    column,
                    message: e.to_string(),
                });
            }
        }
        Ok(())
    }

    fn text(&mut self, v: Option<&str>) -> Result<(), EncodeError> {
        self.put(&v.map(clean), &Type::TEXT)
    }
}

/// PostgreSQL text cannot hold NUL: it becomes U+FFFD rather than losing the row.
fn clean(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn time(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

fn tokens(v: u64) -> i64 {
    // Token counts are capped far below i64::MAX by normalization (MAX_TOKENS).
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Appends `call` as one binary COPY tuple.
pub fn encode(call: &LlmCall, out: &mut BytesMut) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_i16(COLUMNS.len() as i16);
    let mut t = Tuple { out, index: 0 };
    let r = encode_fields(call, &mut t);
    let written = t.index;
    if r.is_err() {
        out.truncate(start);
        return r;
    }
    debug_assert_eq!(written, COLUMNS.len());
    Ok(())
}

fn encode_fields(c: &LlmCall, t: &mut Tuple<'_>) -> Result<(), EncodeError> {
    let u = c.usage;
    let tm = &c.timings;
    let cost = c.cost.as_ref();
    t.put(&time(c.start_unix_nano), &Type::TIMESTAMPTZ)?;
    t.put(&time(c.end_unix_nano), &Type::TIMESTAMPTZ)?;
    t.put(&&c.trace_id[..], &Type::BYTEA)?;
    t.put(&&c.span_id[..], &Type::BYTEA)?;
    t.put(&c.parent_span_id.as_ref().map(|p| &p[..]), &Type::BYTEA)?;
    t.text(c.tenant.as_deref())?;
    t.text(Some(&c.service_name))?;
    t.text(c.environment.as_deref())?;
    t.text(Some(c.dialect.as_str()))?;
    t.text(Some(&c.scope_name))?;
    t.text(Some(c.role.as_str()))?;
    t.text(Some(&c.operation))?;
    t.text(c.provider.as_deref())?;
    t.text(c.request_model.as_deref())?;
    t.text(c.response_model.as_deref())?;
    t.text(c.normalized_model.as_deref())?;
    t.text(c.response_id.as_deref())?;
    t.put(&c.streaming, &Type::BOOL)?;
    let reasons: Vec<Cow<'_, str>> = c.finish_reasons.iter().map(|r| clean(r)).collect();
    t.put(&reasons, &Type::TEXT_ARRAY)?;
    t.text(Some(c.status.as_str()))?;
    t.text(c.error_class.map(|e| e.as_str()))?;
    t.text(c.error_type.as_deref())?;
    t.text(c.server_address.as_deref())?;
    t.put(&c.server_port.map(i32::from), &Type::INT4)?;
    t.put(&u.is_some(), &Type::BOOL)?;
    t.put(&c.counts_usage, &Type::BOOL)?;
    t.put(&u.map(|u| tokens(u.input_uncached)), &Type::INT8)?;
    t.put(&u.map(|u| tokens(u.cache_read)), &Type::INT8)?;
    t.put(&u.map(|u| tokens(u.cache_write)), &Type::INT8)?;
    t.put(&u.map(|u| tokens(u.cache_write_1h)), &Type::INT8)?;
    t.put(&u.map(|u| tokens(u.output)), &Type::INT8)?;
    t.put(&u.map(|u| tokens(u.reasoning)), &Type::INT8)?;
    t.put(&tm.duration_s, &Type::FLOAT8)?;
    t.put(&tm.ttft_s, &Type::FLOAT8)?;
    t.put(&tm.tpot_s, &Type::FLOAT8)?;
    t.put(&tm.output_tokens_per_s, &Type::FLOAT8)?;
    t.put(&tm.ttft_from_server, &Type::BOOL)?;
    t.put(&tm.tpot_from_server, &Type::BOOL)?;
    t.put(&c.sdk_reported_cost_usd, &Type::FLOAT8)?;
    t.text(c.service_tier.as_deref())?;
    t.text(Some(c.price_status.as_str()))?;
    t.put(&cost.map(|c| c.total), &Type::NUMERIC)?;
    t.put(&cost.map(|c| c.input_uncached), &Type::NUMERIC)?;
    t.put(&cost.map(|c| c.cache_read), &Type::NUMERIC)?;
    t.put(&cost.map(|c| c.cache_write), &Type::NUMERIC)?;
    t.put(&cost.map(|c| c.cache_write_1h), &Type::NUMERIC)?;
    t.put(&cost.map(|c| c.output), &Type::NUMERIC)?;
    t.put(&cost.map(|c| c.reasoning), &Type::NUMERIC)?;
    t.put(&cost.map(|c| c.request), &Type::NUMERIC)?;
    t.text(cost.map(|c| c.catalog_version.as_str()))?;
    t.text(cost.map(|c| c.rule.as_str()))?;
    let a = &c.agent;
    t.text(a.agent_id.as_deref())?;
    t.text(a.agent_name.as_deref())?;
    t.text(a.workflow_name.as_deref())?;
    t.text(a.conversation_id.as_deref())?;
    t.text(a.tool_name.as_deref())?;
    t.text(a.tool_call_id.as_deref())?;
    Ok(())
}

/// What a writer needs to know of an encoded tuple without decoding it: its start time (µs since
/// the Unix epoch) and ids, read from the first four fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TupleKey {
    /// Start time, microseconds since the Unix epoch.
    pub time_us: i64,
    /// Trace id.
    pub trace_id: Vec<u8>,
    /// Span id.
    pub span_id: Vec<u8>,
}

/// Microseconds from the Unix epoch to PostgreSQL's epoch (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// The `time` column (span start, µs since the Unix epoch) of a tuple made by [`encode`], read
/// without the rest; `None` if it is not one.
pub fn time_us(tuple: &[u8]) -> Option<i64> {
    let len = i32::from_be_bytes(tuple.get(2..6)?.try_into().ok()?);
    if len != 8 {
        return None;
    }
    Some(i64::from_be_bytes(tuple.get(6..14)?.try_into().ok()?) + PG_EPOCH_US)
}

/// Reads the key fields of a tuple made by [`encode`]; `None` if it is not one.
pub fn key(tuple: &[u8]) -> Option<TupleKey> {
    let mut fields = tuple.get(2..)?;
    let mut next = || -> Option<&[u8]> {
        let len = i32::from_be_bytes(fields.get(..4)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        let v = fields.get(4..4 + len)?;
        fields = &fields[4 + len..];
        Some(v)
    };
    let start = i64::from_be_bytes(next()?.try_into().ok()?);
    debug_assert_eq!(time_us(tuple), Some(start + PG_EPOCH_US));
    let _end = next()?;
    let trace_id = next()?.to_vec();
    let span_id = next()?.to_vec();
    Some(TupleKey {
        time_us: start + PG_EPOCH_US,
        trace_id,
        span_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmhub_core::{CallCost, Decimal, Usage};

    #[test]
    fn a_tuple_has_every_column_and_its_key_reads_back() {
        let mut c = LlmCall {
            trace_id: [1; 16],
            span_id: [2; 8],
            start_unix_nano: 1_795_193_100_123_456_789,
            end_unix_nano: 1_795_193_101_000_000_000,
            service_name: "svc\0x".into(),
            finish_reasons: vec!["stop".into()],
            usage: Some(Usage {
                input_uncached: 10,
                ..Usage::default()
            }),
            cost: Some(CallCost {
                total: Decimal::new(12345, 9),
                input_uncached: Decimal::new(12345, 9),
                cache_read: Decimal::ZERO,
                cache_write: Decimal::ZERO,
                cache_write_1h: Decimal::ZERO,
                output: Decimal::ZERO,
                reasoning: Decimal::ZERO,
                request: Decimal::ZERO,
                catalog_version: "v".into(),
                rule: "exact x".into(),
            }),
            ..LlmCall::default()
        };
        let mut out = BytesMut::new();
        encode(&c, &mut out).unwrap();
        assert_eq!(i16::from_be_bytes([out[0], out[1]]) as usize, COLUMNS.len());
        // Walk every field: the lengths add up to the tuple exactly.
        let mut rest = &out[2..];
        let mut n = 0;
        while !rest.is_empty() {
            let len = i32::from_be_bytes(rest[..4].try_into().unwrap());
            rest = &rest[4 + len.max(0) as usize..];
            n += 1;
        }
        assert_eq!(n, COLUMNS.len());
        let k = key(&out).unwrap();
        assert_eq!(k.time_us, 1_795_193_100_123_456);
        assert_eq!(time_us(&out), Some(1_795_193_100_123_456));
        assert_eq!(time_us(&out[..10]), None);
        assert_eq!(k.trace_id, vec![1; 16]);
        assert_eq!(k.span_id, vec![2; 8]);
        // NUL is replaced, not fatal.
        assert!(!out.windows(5).any(|w| w == b"svc\0x"));
        c.usage = None;
        let mut again = BytesMut::new();
        encode(&c, &mut again).unwrap();
        assert!(again.len() < out.len(), "NULL token columns are shorter");
    }
}

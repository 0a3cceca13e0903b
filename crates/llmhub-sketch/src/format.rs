//! The stable on-disk format of a summary (what the SQL type stores), little-endian. Version 2 holds
//! binary buckets, version 1 logarithmic ones ([`crate::Mapping`]); the layout is the same:
//!
//! ```text
//! magic "LHQS" | version u8 (1 or 2) | collapses u8 | reserved u16 = 0
//! alpha f64 | max_buckets u32 | count u64 | zero_count u64 | sum f64 | min f64 | max f64
//! bucket_count u32 | per bucket: index delta (zigzag varint; the first is the index itself), count (varint)
//! ```
//!
//! `alpha` is the accuracy asked for; a binary summary's mantissa bits follow from it. Empty buckets
//! are not stored, so the size follows the data, not `max_buckets`. A summary is written in the
//! version of its mapping, so a version-1 summary read and written again stays version 1. The
//! decoder refuses versions it does not know by name, checks every field and never panics,
//! whatever the bytes.

use crate::{Mapping, MergeError, QuantileSketch, MAX_SHIFT};

/// First four bytes of every encoded summary.
pub const MAGIC: &[u8; 4] = b"LHQS";
/// The version [`QuantileSketch::to_bytes`] writes for new summaries (binary buckets).
pub const FORMAT_VERSION: u8 = 2;

/// Why bytes are not a summary.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    /// Wrong magic number.
    #[error("not an llmhub quantile summary (bad magic)")]
    Magic,
    /// A version this code does not read.
    #[error("unsupported summary format version {0} (this build reads versions 1 and 2)")]
    Version(u8),
    /// Ended early.
    #[error("truncated summary: {0}")]
    Truncated(&'static str),
    /// A field out of range or inconsistent with the others.
    #[error("invalid summary: {0}")]
    Invalid(String),
}

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FormatError> {
        let (head, rest) = self.b.split_at_checked(N).ok_or(FormatError::Truncated(what))?;
        self.b = rest;
        head.try_into().map_err(|_| FormatError::Truncated(what))
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, FormatError> {
        // Straight over the slice (this runs twice per bucket of every summary `rollup` merges).
        let b = self.b;
        let mut v = 0u64;
        for (k, &byte) in b.iter().take(10).enumerate() {
            v |= u64::from(byte & 0x7f) << (7 * k);
            if byte & 0x80 == 0 {
                self.b = &b[k + 1..];
                return Ok(v);
            }
        }
        if b.len() < 10 {
            Err(FormatError::Truncated(what))
        } else {
            Err(FormatError::Invalid(format!("{what}: varint longer than 10 bytes")))
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl QuantileSketch {
    /// Encodes the summary in its mapping's format version (2 for binary buckets, 1 for
    /// logarithmic ones).
    pub fn to_bytes(&self) -> Vec<u8> {
        let buckets: Vec<(i32, u64)> = self.buckets().collect();
        let mut out = Vec::with_capacity(64 + buckets.len() * 3);
        out.extend_from_slice(MAGIC);
        out.push(match self.mapping {
            Mapping::Logarithmic => 1,
            Mapping::Binary => 2,
        });
        out.push(self.collapses);
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.alpha.to_le_bytes());
        out.extend_from_slice(&self.max_buckets.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.zero_count.to_le_bytes());
        out.extend_from_slice(&self.sum.to_le_bytes());
        let (min, max) = if self.count == 0 {
            (0.0, 0.0)
        } else {
            (self.min, self.max)
        };
        out.extend_from_slice(&min.to_le_bytes());
        out.extend_from_slice(&max.to_le_bytes());
        out.extend_from_slice(&(buckets.len() as u32).to_le_bytes());
        let mut prev = 0i64;
        for (k, (i, c)) in buckets.iter().enumerate() {
            let i = i64::from(*i);
            put_varint(&mut out, zigzag(if k == 0 { i } else { i - prev }));
            put_varint(&mut out, *c);
            prev = i;
        }
        out
    }

    /// Decodes a summary, checking every field.
    pub fn from_bytes(bytes: &[u8]) -> Result<QuantileSketch, FormatError> {
        let mut buckets = Vec::new();
        let h = decode(bytes, &mut buckets)?;
        h.build(&buckets)
    }

    /// Merges an encoded summary into this one, as `merge(&from_bytes(bytes)?)` does, without
    /// building it when both are at the same collapse level and their buckets fit one range (the
    /// common case of `rollup`). `scratch` is reused between calls to avoid allocating.
    pub fn merge_bytes(&mut self, bytes: &[u8], scratch: &mut Vec<(i32, u64)>) -> Result<(), MergeBytesError> {
        let h = decode(bytes, scratch)?;
        if h.mapping != self.mapping {
            return Err(MergeError::Mapping(self.mapping, h.mapping).into());
        }
        if h.alpha != self.alpha || h.max_buckets != self.max_buckets {
            return Err(MergeError::Parameters(self.alpha, h.alpha, self.max_buckets, h.max_buckets).into());
        }
        if h.count == 0 {
            return Ok(());
        }
        let fits = |s: &QuantileSketch| match (scratch.first(), scratch.last()) {
            (Some(&(first, _)), Some(&(last, _))) if !s.counts.is_empty() => {
                let lo = i64::from(s.offset.min(first));
                let hi = (i64::from(s.offset) + s.counts.len() as i64 - 1).max(i64::from(last));
                hi - lo < i64::from(s.max_buckets)
            }
            _ => true,
        };
        if h.collapses != self.collapses || !fits(self) {
            let other = h.build(scratch)?;
            return Ok(self.merge(&other)?);
        }
        self.count = self.count.saturating_add(h.count);
        self.zero_count = self.zero_count.saturating_add(h.zero_count);
        self.sum += h.sum;
        self.min = self.min.min(h.min);
        self.max = self.max.max(h.max);
        if let (Some(&(first, _)), Some(&(last, _))) = (scratch.first(), scratch.last()) {
            if self.counts.is_empty() {
                self.offset = first;
                self.counts = vec![0; (last - first + 1) as usize];
            } else {
                if first < self.offset {
                    let grow = (self.offset - first) as usize;
                    self.counts.splice(0..0, std::iter::repeat_n(0, grow));
                    self.offset = first;
                }
                let end = self.offset + self.counts.len() as i32 - 1;
                if last > end {
                    self.counts.resize((last - self.offset + 1) as usize, 0);
                }
            }
            for &(i, c) in scratch.iter() {
                let k = (i - self.offset) as usize;
                self.counts[k] = self.counts[k].saturating_add(c);
            }
        }
        Ok(())
    }
}

/// Why an encoded summary could not be merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MergeBytesError {
    /// The bytes are not a summary.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A summary with other parameters.
    #[error(transparent)]
    Merge(#[from] MergeError),
}

/// The fixed fields of an encoded summary.
struct Header {
    mapping: Mapping,
    collapses: u8,
    alpha: f64,
    max_buckets: u32,
    count: u64,
    zero_count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Header {
    /// The summary of this header and its (validated) buckets.
    fn build(&self, buckets: &[(i32, u64)]) -> Result<QuantileSketch, FormatError> {
        let mut s = QuantileSketch::with_mapping(self.mapping, self.alpha, self.max_buckets)
            .map_err(|e| FormatError::Invalid(e.to_string()))?;
        for _ in 0..self.collapses {
            s.collapse();
        }
        if let (Some(&(first, _)), Some(&(last, _))) = (buckets.first(), buckets.last()) {
            s.offset = first;
            s.counts = vec![0; (last - first + 1) as usize];
            for &(i, c) in buckets {
                s.counts[(i - first) as usize] = c;
            }
        }
        s.count = self.count;
        s.zero_count = self.zero_count;
        s.sum = self.sum;
        if self.count > 0 {
            s.min = self.min;
            s.max = self.max;
        }
        Ok(s)
    }
}

/// Reads and checks every field; the buckets go into `buckets` (cleared first), in increasing
/// index order, within one range of at most `max_buckets`.
fn decode(bytes: &[u8], buckets: &mut Vec<(i32, u64)>) -> Result<Header, FormatError> {
    buckets.clear();
    let mut r = Reader { b: bytes };
    if &r.take::<4>("magic")? != MAGIC {
        return Err(FormatError::Magic);
    }
    let [version] = r.take::<1>("version")?;
    let mapping = match version {
        1 => Mapping::Logarithmic,
        2 => Mapping::Binary,
        v => return Err(FormatError::Version(v)),
    };
    let [collapses] = r.take::<1>("collapses")?;
    let reserved = u16::from_le_bytes(r.take::<2>("reserved")?);
    let alpha = f64::from_le_bytes(r.take::<8>("alpha")?);
    let max_buckets = u32::from_le_bytes(r.take::<4>("max_buckets")?);
    let count = u64::from_le_bytes(r.take::<8>("count")?);
    let zero_count = u64::from_le_bytes(r.take::<8>("zero_count")?);
    let sum = f64::from_le_bytes(r.take::<8>("sum")?);
    let min = f64::from_le_bytes(r.take::<8>("min")?);
    let max = f64::from_le_bytes(r.take::<8>("max")?);
    let n = u32::from_le_bytes(r.take::<4>("bucket count")?);
    let bad = |m: String| Err(FormatError::Invalid(m));
    if reserved != 0 {
        return bad(format!("reserved field is {reserved}, expected 0"));
    }
    if collapses > 40 {
        return bad(format!("{collapses} collapses"));
    }
    // Validates alpha and max_buckets.
    let empty =
        QuantileSketch::with_mapping(mapping, alpha, max_buckets).map_err(|e| FormatError::Invalid(e.to_string()))?;
    // Binary: the shift after the collapses, and so the largest index a finite value can have.
    let shift = empty.shift + u32::from(collapses);
    let top_index = if mapping == Mapping::Binary {
        if shift > MAX_SHIFT {
            return bad(format!("{collapses} collapses of {} mantissa bits", empty.bits));
        }
        i64::try_from(f64::MAX.to_bits() >> shift).unwrap_or(i64::MAX)
    } else {
        i64::MAX
    };
    if !sum.is_finite() || sum < 0.0 {
        return bad(format!("sum {sum}"));
    }
    if count > 0 && !(min.is_finite() && max.is_finite() && 0.0 <= min && min <= max) {
        return bad(format!("min {min} and max {max}"));
    }
    if n > max_buckets {
        return bad(format!("{n} buckets for max_buckets {max_buckets}"));
    }
    let mut total = zero_count;
    let mut prev: Option<i64> = None;
    buckets.reserve(n as usize);
    for _ in 0..n {
        let d = unzigzag(r.varint("bucket index")?);
        let c = r.varint("bucket count")?;
        let i = match prev {
            None => d,
            Some(p) if d > 0 => p
                .checked_add(d)
                .ok_or(FormatError::Invalid("bucket index overflow".into()))?,
            Some(_) => return bad("bucket indexes not increasing".into()),
        };
        if mapping == Mapping::Binary && !(0..=top_index).contains(&i) {
            return bad(format!("bucket index {i} outside 0..={top_index}"));
        }
        let i32_index = i32::try_from(i).map_err(|_| FormatError::Invalid(format!("bucket index {i}")))?;
        if c == 0 {
            return bad("empty bucket stored".into());
        }
        total = total
            .checked_add(c)
            .ok_or(FormatError::Invalid("counts overflow".into()))?;
        buckets.push((i32_index, c));
        prev = Some(i);
    }
    if !r.b.is_empty() {
        return bad(format!("{} bytes after the buckets", r.b.len()));
    }
    if total != count {
        return bad(format!("count {count} but buckets hold {total}"));
    }
    if let (Some(&(first, _)), Some(&(last, _))) = (buckets.first(), buckets.last()) {
        if i64::from(last) - i64::from(first) >= i64::from(max_buckets) {
            return bad(format!(
                "bucket range {first}..={last} wider than max_buckets {max_buckets}"
            ));
        }
    }
    Ok(Header {
        mapping,
        collapses,
        alpha,
        max_buckets,
        count,
        zero_count,
        sum,
        min,
        max,
    })
}

//! The candidate values of one span's fields, and how a raw attribute value becomes a count,
//! a number, a flag or a duration.

use super::*;

/// A candidate value for one field.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub(super) struct Candidate<'a> {
    pub(super) rank: u8,
    pub(super) key: &'a str,
    pub(super) value: Scalar<'a>,
}

pub(super) struct Fields<'a> {
    pub(super) best: [Option<Candidate<'a>>; FIELD_COUNT],
    pub(super) conflicts: Vec<Field>,
}

impl<'a> Fields<'a> {
    pub(super) fn new() -> Self {
        Fields {
            best: std::array::from_fn(|_| None),
            conflicts: Vec::new(),
        }
    }

    pub(super) fn offer(&mut self, field: Field, rank: u8, key: &'a str, value: Scalar<'a>) {
        let cand = Candidate { rank, key, value };
        let slot = &mut self.best[field.index()];
        match slot {
            None => *slot = Some(cand),
            Some(cur) => {
                if !same_value(&cur.value, &cand.value) && !self.conflicts.contains(&field) {
                    self.conflicts.push(field);
                }
                if cand.rank < cur.rank {
                    *slot = Some(cand);
                }
            }
        }
    }

    pub(super) fn get(&self, field: Field) -> Option<&Candidate<'a>> {
        self.best[field.index()].as_ref()
    }

    pub(super) fn str(&self, field: Field) -> Option<&'a str> {
        match self.get(field)?.value {
            Scalar::Str(s) if !trimmed(s).is_empty() => Some(s),
            _ => None,
        }
    }
}

pub(super) fn same_value(a: &Scalar<'_>, b: &Scalar<'_>) -> bool {
    match (a, b) {
        (Scalar::Num(x), Scalar::Num(y)) => (x - y).abs() < 1e-9 || x == y,
        (Scalar::Str(x), Scalar::Str(y)) => x == y,
        (Scalar::Str(x), Scalar::List(l)) | (Scalar::List(l), Scalar::Str(x)) => l.len() == 1 && l[0] == *x,
        _ => a == b,
    }
}

pub(super) fn to_scalar<'a>(v: &Value<'a>, unit: Unit) -> Option<Scalar<'a>> {
    let scale = |x: f64| if unit == Unit::Millis { x / 1000.0 } else { x };
    match v {
        Value::Str(s) => {
            if unit == Unit::Millis {
                trimmed(s).parse::<f64>().ok().map(|x| Scalar::Num(scale(x)))
            } else {
                Some(Scalar::Str(s))
            }
        }
        Value::Int(i) => Some(Scalar::Num(scale(*i as f64))),
        Value::Double(d) => Some(Scalar::Num(scale(*d))),
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        Value::Array(items) => Some(Scalar::List(
            items.iter().filter_map(|i| i.as_str()).map(str::to_owned).collect(),
        )),
        Value::Other => None,
    }
}

/// Reads a count: a non-negative integral number up to [`MAX_TOKENS`], given as a number or a
/// numeric string.
pub(super) fn token_count(c: &Candidate<'_>) -> Result<u64, String> {
    let x = match &c.value {
        Scalar::Num(x) => *x,
        Scalar::Str(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("{} = {:?} is not a number", c.key, short(s)))?,
        other => {
            let shown = format!("{other:?}");
            return Err(format!("{} = {} is not a number", c.key, short(&shown)));
        }
    };
    if !x.is_finite() || x < 0.0 || x.fract() != 0.0 || x > MAX_TOKENS as f64 {
        return Err(format!(
            "{} = {} is not a token count (a whole number from 0 to {})",
            c.key, x, MAX_TOKENS
        ));
    }
    Ok(x as u64)
}

pub(super) fn number(c: &Candidate<'_>) -> Option<f64> {
    match &c.value {
        Scalar::Num(x) => Some(*x),
        Scalar::Str(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

pub(super) fn boolean(c: &Candidate<'_>) -> Option<bool> {
    match &c.value {
        Scalar::Bool(b) => Some(*b),
        Scalar::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        Scalar::Num(x) => Some(*x != 0.0),
        Scalar::List(_) => None,
    }
}

/// Longest accepted duration (time to first token, time per token): one day.
pub(super) const MAX_SECONDS: f64 = 86_400.0;

pub(super) fn seconds(c: &Candidate<'_>, warnings: &mut Vec<String>) -> Option<f64> {
    let x = number(c)?;
    if x.is_finite() && (0.0..=MAX_SECONDS).contains(&x) {
        Some(x)
    } else {
        warnings.push(format!(
            "{} = {} is not a duration from 0 to {} s; ignored",
            c.key, x, MAX_SECONDS
        ));
        None
    }
}

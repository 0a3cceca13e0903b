//! Numbers as coding agents send them: integers, integral doubles, or decimal strings (Codex CLI
//! sends some counts as strings, Claude Code and Gemini CLI as JSON numbers).

use crate::log::LogView;
use crate::span::Value;

/// A count given as an integer, an integral double or a decimal string.
pub(super) fn count(v: &Value<'_>) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e15 => Some(*d as i64),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A number given as an integer, a double or a decimal string.
pub(super) fn number(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Double(d) => Some(*d),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The count at `key`.
pub(super) fn count_at(log: &LogView<'_>, key: &str) -> Option<i64> {
    log.get(key).and_then(count)
}

/// A duration in milliseconds at `key`, as nanoseconds (a negative or non-finite one is absent).
pub(super) fn millis_at(log: &LogView<'_>, key: &str) -> Option<u64> {
    log.get(key)
        .and_then(number)
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| (ms * 1e6) as u64)
}

//! Calendar days (UTC), enough for effective dates: parse `YYYY-MM-DD`, and the day of a Unix
//! timestamp.

use llmhub_core::timefmt::{civil_from_days, days_from_civil};
use std::fmt;

/// A day, as days since 1970-01-01 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i64);

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

impl Date {
    /// Parses `YYYY-MM-DD`; `None` for anything else or an impossible date.
    pub fn parse(s: &str) -> Option<Date> {
        let s = s.trim();
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let n = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
        };
        let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
        if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
            return None;
        }
        Some(Date(days_from_civil(y, m, d)))
    }

    /// The UTC day containing a Unix time in nanoseconds.
    pub fn from_unix_nanos(nanos: u64) -> Date {
        Date((nanos / 86_400_000_000_000) as i64)
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.0);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_validates() {
        for s in ["1970-01-01", "2000-02-29", "2024-08-06", "2026-11-24"] {
            assert_eq!(Date::parse(s).unwrap().to_string(), s);
        }
        for s in ["2023-02-29", "2024-13-01", "2024-1-01", "24-01-01", "2024-01-32", ""] {
            assert_eq!(Date::parse(s), None, "{s}");
        }
        assert_eq!(
            Date::from_unix_nanos(1_763_600_000_000_000_000).to_string(),
            "2025-11-20"
        );
        assert_eq!(Date::parse("2025-11-20").unwrap().days() * 86_400, 1_763_596_800);
    }
}

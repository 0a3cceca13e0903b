//! What a running load generator has sent, shared with whoever shows it (the `loadgen` command
//! prints a line every few seconds and one at the end).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters shared with a caller that shows progress.
#[derive(Debug, Default)]
pub struct Progress {
    /// Traces emitted.
    pub traces: AtomicU64,
    /// Spans emitted.
    pub spans: AtomicU64,
    /// Simulated start of the last trace emitted, Unix nanoseconds (0 before the first); the
    /// window's end once a backfill has emitted all of it.
    pub reached: AtomicU64,
}

impl Progress {
    /// One line for a person watching: counts, the rate since the start, and for a backfill
    /// (`window`, Unix nanoseconds) the simulated time reached and the share of the window done.
    pub fn line(&self, window: Option<(u64, u64)>, elapsed: Duration) -> String {
        let (traces, spans) = (self.traces.load(Ordering::Relaxed), self.spans.load(Ordering::Relaxed));
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 { spans as f64 / secs } else { 0.0 };
        let mut line = format!("loadgen: {traces} traces, {spans} spans, {rate:.0} spans/s");
        if let Some((start, end)) = window {
            let reached = self.reached.load(Ordering::Relaxed).clamp(start, end);
            let done = if end > start {
                (reached - start) as f64 / (end - start) as f64
            } else {
                1.0
            };
            line.push_str(&format!(
                "; simulated time {}, {:.0}% of the backfill",
                super::scenario::rfc3339(reached),
                (done * 100.0).floor()
            ));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backfill_line_says_how_far_it_got() {
        let p = Progress::default();
        p.traces.store(1_200, Ordering::Relaxed);
        p.spans.store(4_000, Ordering::Relaxed);
        // 2026-11-20T00:00Z .. +10 h, reached 02:30: a quarter.
        let start = 1_795_132_800_000_000_000u64;
        let hour = 3_600_000_000_000u64;
        p.reached.store(start + 5 * hour / 2, Ordering::Relaxed);
        assert_eq!(
            p.line(Some((start, start + 10 * hour)), Duration::from_secs(8)),
            "loadgen: 1200 traces, 4000 spans, 500 spans/s; simulated time 2026-11-20T02:30:00.000Z, 25% of the backfill"
        );
        // Before the first trace: the window's start, 0%; live runs have no window.
        let fresh = Progress::default();
        assert!(fresh
            .line(Some((start, start + hour)), Duration::ZERO)
            .ends_with("simulated time 2026-11-20T00:00:00.000Z, 0% of the backfill"));
        assert_eq!(
            fresh.line(None, Duration::ZERO),
            "loadgen: 0 traces, 0 spans, 0 spans/s"
        );
    }
}

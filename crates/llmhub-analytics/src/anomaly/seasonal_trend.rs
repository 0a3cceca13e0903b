//! A baseline for hourly series with a daily cycle, a weekly cycle and a trend (spend, calls,
//! tokens, latency): each point is compared with `level × hourly shape × weekday factor`, all
//! three estimated from the points before it.

use super::Scored;
use crate::error::check;
use crate::stats::{median_in_place, RobustBaseline};
use crate::{AnalyticsError, SEASONAL_PRIOR_WEIGHT};

const DAY: usize = 24;
const WEEK: usize = 7 * DAY;

/// Hours of history after which every point is scored (when the values are there): two weeks, so
/// that every day of week has a factor (see [`seasonal_trend`]).
pub const SEASONAL_TREND_WARMUP: usize = 2 * WEEK;

/// Hours of history before the shape can be known: every hour of the day seen twice, each with
/// the 12 hours around it.
const SHAPE_WARMUP: usize = 2 * DAY + 12;

/// How far back (hours) the hourly shape and the weekday factors look: eight weeks, so both
/// follow a change of pattern within weeks.
const PROFILE_HISTORY: usize = 8 * WEEK;

/// How far back (hours) the spread of the errors looks: four weeks.
const SPREAD_HISTORY: usize = 4 * WEEK;

/// The default threshold: with it, spikes, outages and level shifts are each found with precision
/// and recall of at least 0.9 on the series of `tests/detectors.rs` (see BENCHMARKS.md).
pub const SEASONAL_TREND_THRESHOLD: f64 = 5.0;

/// Consecutive hours beyond half the threshold on the same side that flag a sustained change.
pub const SUSTAINED_HOURS: usize = 3;

/// Scores each point of an hourly series against a baseline with a daily cycle, a weekly cycle
/// and a trend, learnt from the points before it.
///
/// `values[i]` is the value of hour `i`; `first_hour_of_week` is the hour of week of `values[0]`
/// (`24 · day_of_week + hour_of_day`, the day of week 0 on Sunday, as PostgreSQL's `dow`; any
/// value is taken modulo 168). The series must be on its hourly grid: a missing hour is NaN.
///
/// The model is multiplicative, `value ≈ level × shape(hour of day) × factor(day of week)`:
///
/// - **shape**: for every earlier hour with the 12 hours on each side known, its value over the
///   mean of those 24 hours; the shape of an hour of day is the median of these ratios over the
///   last eight weeks;
/// - **weekday factor**: for every earlier whole day (UTC) with the three days before and after
///   it known, the mean of its shape-adjusted values over the mean of the seven days around it;
///   the factor of a day of week is the median over the last eight weeks;
/// - **level**: the median of the last 24 values divided by their `shape × factor`, leaving out
///   the hours flagged on their own unless they are half of them (so spikes and outages do not
///   move it, and a level shift does after 12 hours). The level follows a trend with a lag of
///   12 hours: under 1% for a trend of 2% a day. Extrapolating a Theil–Sen slope over the last
///   seven days did no better on spikes and outages and worse on level shifts (BENCHMARKS.md), so
///   there is none;
/// - `expected = level × shape × factor`;
/// - **spread**: the relative errors `(value − expected) / expected` of the earlier scored
///   points, over the last four weeks: their robust scale for the hour of day (`MAD / 0.6745`),
///   blended with the one of all hours as [`seasonal`](crate::seasonal) does
///   (`σ = √((h·σₕ² + w·σ²) / (h + w))`, `w` = [`SEASONAL_PRIOR_WEIGHT`]), since a night hour is
///   relatively noisier than a busy one;
/// - `score = (value − expected) / (σ · expected)`, band `expected · (1 ± threshold · σ)`;
/// - **anomaly**: the value is outside the band (`|score| > threshold`), or it is the
///   [`SUSTAINED_HOURS`]th or later hour in a row whose scores are all beyond `threshold / 2` on
///   the same side: a change too small to flag in one hour but held for hours (for normal
///   errors and the default threshold of 5, an hour ends such a run by chance about once in two
///   million: `2 · P(z > 2.5)³`).
///
/// So spikes, outages (values near zero for hours) and level shifts are flagged: a shift for
/// about its first 12 hours, until the level has moved to it. Scores do not change when the
/// series is scaled by a positive factor. The model suits non-negative series that are not
/// sparse: an hour of day whose typical value is 0 gives an expected 0 and a collapsed band.
///
/// Warm-up: until every day of week has a factor, which takes between 10 and 14 days of history
/// ([`SEASONAL_TREND_WARMUP`]; the errors of the daily cycle alone start the spread meanwhile),
/// and any point whose baseline cannot be formed (fewer than 12 known values among the last 24
/// hours, an hour of day seen fewer than twice, a day of week never seen whole with the three
/// days on either side). Without the weekly cycle, every weekend would start with a run of false
/// alarms, so there is no shorter fallback: for a series of a few days,
/// [`seasonal`](crate::seasonal) with the hour of day is the detector to use. NaN and ±infinity
/// are missing points, as in the [module docs](crate::anomaly).
/// Cost: O(n · h) for n points and h = min(n, 1344) hours of history.
///
/// Errors: `threshold` not a positive finite number (names `threshold`).
pub fn seasonal_trend(values: &[f64], first_hour_of_week: u32, threshold: f64) -> Result<Vec<Scored>, AnalyticsError> {
    let threshold = check::positive_finite("threshold", threshold)?;
    let first = first_hour_of_week as usize % WEEK;
    let how = |i: usize| (first + i) % WEEK;
    // Prefix sums of the known values and of their count: the mean of any window in O(1).
    let mut sum = vec![0.0; values.len() + 1];
    let mut known = vec![0usize; values.len() + 1];
    for (i, v) in values.iter().enumerate() {
        let finite = v.is_finite();
        sum[i + 1] = sum[i] + if finite { *v } else { 0.0 };
        known[i + 1] = known[i] + usize::from(finite);
    }
    let mean = |from: usize, to: usize| {
        let n = known[to] - known[from];
        // At least three quarters of the window known.
        (4 * n >= 3 * (to - from)).then(|| (sum[to] - sum[from]) / n as f64)
    };
    // Each hour against the 24 around it (NaN where unknown), the stuff of the hourly shape.
    let ratio: Vec<f64> = (0..values.len())
        .map(|i| {
            let m = (i >= DAY / 2 && i + DAY / 2 <= values.len())
                .then(|| mean(i - DAY / 2, i + DAY / 2))
                .flatten();
            match m {
                Some(m) if m > 0.0 => values[i] / m,
                _ => f64::NAN,
            }
        })
        .collect();

    let mut errors: Vec<(usize, f64)> = Vec::new();
    let mut flagged: Vec<bool> = Vec::with_capacity(values.len());
    let mut work = Work::default();
    let mut out = Vec::with_capacity(values.len());
    // The current run of hours beyond half the threshold on one side: its side and length.
    let mut run = (0.0, 0usize);
    for t in 0..values.len() {
        let baseline = (t >= SHAPE_WARMUP)
            .then(|| expected(values, &ratio, &flagged, t, &how, &mut work))
            .flatten();
        let spread = baseline.and_then(|_| spread(&errors, t, &how, &mut work));
        let mut scored = match (baseline, spread) {
            (Some((e, true)), Some(sigma)) => Scored::against(values[t], e, sigma * e, threshold),
            _ => Scored::warm_up(values[t]),
        };
        let side = if scored.score.abs() > threshold / 2.0 {
            scored.score.signum()
        } else {
            0.0
        };
        run = if side != 0.0 && side == run.0 {
            (side, run.1 + 1)
        } else {
            (side, usize::from(side != 0.0))
        };
        scored.anomaly |= run.1 >= SUSTAINED_HOURS;
        flagged.push(scored.score.abs() > threshold);
        // The daily-cycle-only baseline of the first days is not scored, but its errors start the
        // spread: without them the first scored days would rest on a few hours of errors.
        if let Some((e, _)) = baseline.filter(|(e, _)| *e > 0.0 && values[t].is_finite()) {
            errors.push((t, (values[t] - e) / e));
        }
        out.push(scored);
    }
    Ok(out)
}

/// Scratch buffers reused from point to point.
#[derive(Default)]
struct Work {
    by_hour: Vec<Vec<f64>>,
    by_weekday: Vec<Vec<f64>>,
    day_means: Vec<Option<f64>>,
    all: Vec<f64>,
    scratch: Vec<f64>,
}

impl Work {
    fn reset(lists: &mut Vec<Vec<f64>>, n: usize) {
        lists.resize_with(n, Vec::new);
        lists.iter_mut().for_each(Vec::clear);
    }
}

/// The expected value of hour `t` from the hours before it, and whether every day of week has its
/// factor (else the missing ones are 1); `None` while it cannot be formed.
fn expected(
    values: &[f64],
    ratio: &[f64],
    flagged: &[bool],
    t: usize,
    how: &impl Fn(usize) -> usize,
    w: &mut Work,
) -> Option<(f64, bool)> {
    let from = t.saturating_sub(PROFILE_HISTORY);
    // Hourly shape: the median ratio of each hour of day to the 24 hours around it.
    Work::reset(&mut w.by_hour, DAY);
    let known = ratio.get(from..=t.saturating_sub(DAY / 2)).unwrap_or_default();
    for (i, r) in (from..).zip(known) {
        if r.is_finite() {
            w.by_hour[how(i) % DAY].push(*r);
        }
    }
    if w.by_hour.iter().any(|r| r.len() < 2) {
        return None;
    }
    let shape: Vec<f64> = w.by_hour.iter_mut().map(|r| median_in_place(r)).collect();
    // Weekday factors: each whole day's shape-adjusted mean against the seven days around it.
    // The means of the whole days from three days before the history on, the first at `lo`.
    let first_midnight = from + (DAY - how(from) % DAY) % DAY;
    let midnight_zero = (DAY - how(0) % DAY) % DAY;
    let lo = if first_midnight >= midnight_zero + 3 * DAY {
        first_midnight - 3 * DAY
    } else {
        midnight_zero
    };
    w.day_means.clear();
    for start in (lo..).step_by(DAY).take_while(|s| s + DAY <= t) {
        let (mut total, mut n) = (0.0, 0);
        for i in start..start + DAY {
            let adjusted = values[i] / shape[how(i) % DAY];
            if adjusted.is_finite() {
                total += adjusted;
                n += 1;
            }
        }
        w.day_means.push((4 * n >= 3 * DAY).then(|| total / n as f64));
    }
    Work::reset(&mut w.by_weekday, 7);
    for start in (first_midnight..).step_by(DAY).take_while(|s| s + 4 * DAY <= t) {
        if start < lo + 3 * DAY {
            continue;
        }
        let k = (start - lo) / DAY;
        let week: Option<Vec<f64>> = w.day_means[k - 3..=k + 3].iter().copied().collect();
        if let (Some(day), Some(week)) = (w.day_means[k], week) {
            let around = week.iter().sum::<f64>() / 7.0;
            if around > 0.0 {
                w.by_weekday[how(start) / DAY].push(day / around);
            }
        }
    }
    let weekly = w.by_weekday.iter().all(|r| !r.is_empty());
    let factor: Vec<f64> = w
        .by_weekday
        .iter_mut()
        .map(|r| if r.is_empty() { 1.0 } else { median_in_place(r) })
        .collect();
    let season = |i: usize| shape[how(i) % DAY] * factor[how(i) / DAY];
    // Level: the median of the last 24 hours, deseasonalised. It leaves out the hours flagged on
    // their own (an outage of a few hours would pull it down), unless they are half the day:
    // then they are the new level.
    let unflagged = (t - DAY..t).filter(|&i| !flagged[i]).count();
    let keep = |i: usize| 2 * unflagged <= DAY || !flagged[i];
    w.scratch.clear();
    w.scratch.extend(
        (t - DAY..t)
            .filter(|&i| keep(i))
            .map(|i| values[i] / season(i))
            .filter(|a| a.is_finite()),
    );
    if 2 * w.scratch.len() < DAY {
        return None;
    }
    let level = median_in_place(&mut w.scratch);
    Some((level * season(t), weekly))
}

/// The spread of the relative errors for hour `t`'s hour of day; `None` before a day of errors.
fn spread(errors: &[(usize, f64)], t: usize, how: &impl Fn(usize) -> usize, w: &mut Work) -> Option<f64> {
    let from = t.saturating_sub(SPREAD_HISTORY);
    let recent = &errors[errors.partition_point(|(i, _)| *i < from)..];
    if recent.len() < DAY {
        return None;
    }
    w.all.clear();
    w.all.extend(recent.iter().map(|(_, e)| *e));
    let typical = RobustBaseline::of(&mut w.all, &mut w.scratch)?.scale;
    w.all.clear();
    let hour = how(t) % DAY;
    w.all
        .extend(recent.iter().filter(|(i, _)| how(*i) % DAY == hour).map(|(_, e)| *e));
    let h = w.all.len() as f64;
    let own = RobustBaseline::of(&mut w.all, &mut w.scratch).map_or(typical, |b| b.scale);
    Some(((h * own * own + SEASONAL_PRIOR_WEIGHT * typical * typical) / (h + SEASONAL_PRIOR_WEIGHT)).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four weeks of a daily and weekly pattern with a trend of 1% a day, and the pattern with
    /// ±4% of deterministic noise.
    fn noisy(first: usize) -> (Vec<f64>, Vec<f64>) {
        let clean = pattern(first);
        let noisy = clean
            .iter()
            .enumerate()
            .map(|(i, v)| v * (1.0 + 0.08 * (((i * 7919 + 13) % 101) as f64 / 100.0 - 0.5)))
            .collect();
        (clean, noisy)
    }

    fn pattern(first: usize) -> Vec<f64> {
        (0..4 * WEEK)
            .map(|i| {
                let how = (first + i) % WEEK;
                let daily = [0.3, 0.3, 0.4, 0.6, 1.0, 1.4, 1.6, 1.5, 1.2, 0.8, 0.5, 0.4];
                let weekly = if how / DAY == 0 || how / DAY == 6 { 0.5 } else { 1.0 };
                100.0 * daily[(how % DAY) / 2] * weekly * (1.0 + 0.01 * i as f64 / DAY as f64)
            })
            .collect()
    }

    #[test]
    fn a_clean_pattern_is_expected_and_an_outage_in_it_is_flagged() {
        let (clean, mut values) = noisy(37);
        for v in &mut values[500..504] {
            *v = 0.0;
        }
        values[600] *= 3.0;
        let s = seasonal_trend(&values, 37, SEASONAL_TREND_THRESHOLD).unwrap();
        let scored_from = s.iter().position(|p| !p.score.is_nan()).unwrap();
        assert!(
            (10 * DAY..=SEASONAL_TREND_WARMUP + DAY).contains(&scored_from),
            "{scored_from}"
        );
        assert!(s[..scored_from].iter().all(|p| !p.anomaly));
        let flagged: Vec<usize> = (0..values.len()).filter(|&i| s[i].anomaly).collect();
        assert_eq!(flagged, [500, 501, 502, 503, 600]);
        // Once scored (the weekday factors known) the baseline is the noiseless pattern within
        // the trend's lag of half a day (0.5%) and what the noise leaves in the medians.
        for i in scored_from..4 * WEEK {
            let relative = (s[i].expected - clean[i]).abs() / clean[i];
            assert!(relative < 0.03, "hour {i}: expected {} for {}", s[i].expected, clean[i]);
        }
    }

    #[test]
    fn a_level_shift_is_flagged_until_the_level_has_moved() {
        let (_, mut values) = noisy(0);
        for v in &mut values[450..] {
            *v *= 1.3;
        }
        let s = seasonal_trend(&values, 0, SEASONAL_TREND_THRESHOLD).unwrap();
        let flagged: Vec<usize> = (0..values.len()).filter(|&i| s[i].anomaly).collect();
        assert_eq!(flagged.first(), Some(&450));
        assert!(flagged.iter().all(|i| (450..450 + DAY).contains(i)), "{flagged:?}");
    }

    #[test]
    fn scores_do_not_change_with_scale_and_the_threshold_is_checked() {
        let (_, values) = noisy(5);
        let scaled: Vec<f64> = values.iter().map(|v| v * 1000.0).collect();
        let (a, b) = (
            seasonal_trend(&values, 5, 5.0).unwrap(),
            seasonal_trend(&scaled, 5, 5.0).unwrap(),
        );
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.anomaly, y.anomaly);
            assert!(x.score.is_nan() && y.score.is_nan() || (x.score - y.score).abs() < 1e-9);
        }
        assert_eq!(seasonal_trend(&values, 5, 0.0).unwrap_err().argument(), "threshold");
        assert!(seasonal_trend(&[], 0, 5.0).unwrap().is_empty());
    }
}

//! Spend projection for a budget period (a month, a quarter...): where the period will end at the
//! current daily rate, and the day the budget runs out.

use crate::error::check;
use crate::quantile::t_upper_quantile;
use crate::AnalyticsError;

/// The projected end of a budget period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetProjection {
    /// Spend so far: the sum of `daily_spend`.
    pub spent: f64,
    /// Projected spend at the end of the period: `spent + remaining_days · daily_rate`.
    pub projected: f64,
    /// Lower end of the prediction interval for the period's final spend, never below `spent`;
    /// `None` when it cannot be estimated (one elapsed day and days still to come).
    pub lower: Option<f64>,
    /// Upper end of the prediction interval; `None` exactly when `lower` is.
    pub upper: Option<f64>,
    /// When cumulative spend reaches the budget, as a fractional day count from the period start:
    /// `t` in `(d − 1, d]` means during day `d` (1-based), so `25.0` is the end of day 25 and
    /// `24.5` the middle of day 25. Spend is taken to accrue evenly within a day. If the budget
    /// is already reached, the moment it was crossed; if it is projected to be reached by the end
    /// of the period, that moment at `daily_rate`; otherwise `None`.
    pub runout_day: Option<f64>,
    /// The mean daily spend over the elapsed days, used for the projection.
    pub daily_rate: f64,
}

/// Projects the spend of a period of `days_in_period` days from the spend of its elapsed days.
///
/// `daily_spend[i]` is the spend of day `i + 1` of the period (n ≤ `days_in_period` days). If
/// the last day is still in progress, the caller passes either its full-day equivalent (spend so
/// far scaled to 24 h) or only the completed days; a raw partial day would pull the rate down.
///
/// Method: the mean daily rate (not a trend: a few days of spend rarely support one, and a mean
/// is what a reader can check). `projected = spent + r · rate` with `r = days_in_period − n`
/// remaining days. The interval is the prediction interval for the period's final spend when
/// days are independent draws around an unknown mean: the remaining days' sum differs from
/// `r · rate` by their own variation (`r · σ²`) and by the error of the estimated rate
/// (`r² · σ² / n`), so `projected ± t · s · √(r + r² / n)`, `s` the sample standard deviation of
/// the daily spend and `t` the Student-t quantile of `(1 + level) / 2` with `n − 1` degrees of
/// freedom (exact for normal days; checked by simulation for skewed ones, see
/// `tests/budget_slo.rs`). The lower end is clamped at `spent`. With one elapsed day and days to
/// come the spread is unknown and `lower`/`upper` are `None`; with none to come both equal
/// `spent`. The interval covers day-to-day variation around a steady rate, not a change of rate.
///
/// Errors: `budget` not a positive finite number (names `budget`), `days_in_period` 0 (names
/// `days_in_period`), no days or more days than `days_in_period` (names `daily_spend`), a
/// negative, NaN or infinite day (names `daily_spend[i]`: missing days are refused, pass 0 for a
/// day without spend), `level` outside `(0, 1)` (names `level`).
///
/// ```
/// // 10 per day for 10 of 30 days, budget 250: 300 projected, budget gone at the end of day 25.
/// let p = llmhub_analytics::budget(&[10.0; 10], 30, 250.0, 0.95).unwrap();
/// assert_eq!((p.spent, p.projected, p.runout_day), (100.0, 300.0, Some(25.0)));
/// ```
pub fn budget(
    daily_spend: &[f64],
    days_in_period: usize,
    budget: f64,
    level: f64,
) -> Result<BudgetProjection, AnalyticsError> {
    let budget = check::positive_finite("budget", budget)?;
    let days_in_period = check::at_least("days_in_period", days_in_period, 1)?;
    let level = check::open_unit("level", level, "0.95")?;
    let days = daily_spend.len();
    if days == 0 {
        return Err(AnalyticsError::length_error("daily_spend", "at least 1 elapsed day", 0));
    }
    if days > days_in_period {
        return Err(AnalyticsError::length_error(
            "daily_spend",
            format!("at most days_in_period ({days_in_period}) days"),
            days,
        ));
    }
    if let Some(index) = daily_spend.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(AnalyticsError::Element {
            argument: "daily_spend",
            index,
            accepted: "a finite number >= 0",
            got: daily_spend[index],
        });
    }

    let n = days as f64;
    let spent: f64 = daily_spend.iter().sum();
    let rate = spent / n;
    let sd = if days > 1 {
        (daily_spend.iter().map(|v| (v - rate).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    let remaining = (days_in_period - days) as f64;
    let projected = spent + remaining * rate;
    let half_width = if remaining == 0.0 {
        Some(0.0)
    } else if days > 1 {
        let t = t_upper_quantile((1.0 - level) / 2.0, n - 1.0);
        Some(t * sd * (remaining + remaining * remaining / n).sqrt())
    } else {
        None
    };

    Ok(BudgetProjection {
        spent,
        projected,
        lower: half_width.map(|h| (projected - h).max(spent)),
        upper: half_width.map(|h| projected + h),
        runout_day: runout_day(daily_spend, days_in_period, budget, rate),
        daily_rate: rate,
    })
}

fn runout_day(daily_spend: &[f64], days_in_period: usize, budget: f64, rate: f64) -> Option<f64> {
    let mut cumulative = 0.0;
    for (day, &spend) in daily_spend.iter().enumerate() {
        if cumulative + spend >= budget {
            // cumulative < budget <= cumulative + spend, so spend > 0.
            return Some(day as f64 + (budget - cumulative) / spend);
        }
        cumulative += spend;
    }
    if rate > 0.0 {
        let day = daily_spend.len() as f64 + (budget - cumulative) / rate;
        if day <= days_in_period as f64 {
            return Some(day);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn already_exceeded_reports_the_crossing() {
        // Cumulative 40, 100, 130: budget 70 is crossed halfway through day 2.
        let p = budget(&[40.0, 60.0, 30.0], 30, 70.0, 0.9).unwrap();
        assert_eq!(p.runout_day, Some(1.5));
    }

    #[test]
    fn single_day_has_no_interval() {
        let p = budget(&[5.0], 10, 1000.0, 0.95).unwrap();
        assert_eq!((p.projected, p.lower, p.upper, p.runout_day), (50.0, None, None, None));
        // Nothing left to come: the final spend is known.
        let p = budget(&[5.0], 1, 1000.0, 0.95).unwrap();
        assert_eq!((p.projected, p.lower, p.upper), (5.0, Some(5.0), Some(5.0)));
    }

    #[test]
    fn errors_name_the_argument() {
        let e = budget(&[1.0, -2.0], 30, 100.0, 0.95).unwrap_err();
        assert_eq!(e.to_string(), "daily_spend[1] must be a finite number >= 0, got -2");
        let e = budget(&[1.0; 31], 30, 100.0, 0.95).unwrap_err();
        assert_eq!(
            e.to_string(),
            "daily_spend: need at most days_in_period (30) days, got 31"
        );
        assert_eq!(budget(&[1.0], 30, 0.0, 0.95).unwrap_err().argument(), "budget");
        assert_eq!(budget(&[1.0], 0, 10.0, 0.95).unwrap_err().argument(), "days_in_period");
        assert_eq!(budget(&[], 30, 10.0, 0.95).unwrap_err().argument(), "daily_spend");
    }
}

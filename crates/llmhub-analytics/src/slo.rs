//! SLO error-budget burn rates and the multiwindow, multi-burn-rate alert of the Google SRE
//! workbook (chapter "Alerting on SLOs").

use crate::error::check;
use crate::AnalyticsError;

/// The burn rates of a short and a long window and whether they alert together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnAlert {
    /// Burn rate over the short window.
    pub short: f64,
    /// Burn rate over the long window.
    pub long: f64,
    /// Both burn rates exceed the threshold.
    pub alert: bool,
}

/// How fast the error budget burns: the observed bad fraction over the allowed one,
/// `(bad / total) / (1 − objective)`. 1 spends the budget exactly over the SLO period; 10 spends
/// it in a tenth of it. No events (`total = 0`) burn nothing: 0.
///
/// Errors: `total` not a finite number >= 0 (names `total`), `bad` not a finite number in
/// `[0, total]` (names `bad`), `objective` outside `(0, 1)` (names `objective`).
///
/// ```
/// // 1% errors against a 99.9% objective burn the budget 10 times too fast.
/// let rate = llmhub_analytics::burn_rate(10.0, 1000.0, 0.999).unwrap();
/// assert!((rate - 10.0).abs() < 1e-9);
/// ```
pub fn burn_rate(bad: f64, total: f64, objective: f64) -> Result<f64, AnalyticsError> {
    burn_rate_named(bad, total, objective, "bad", "total")
}

/// Burn rates over a short and a long window (e.g. 5 minutes and 1 hour) and the alert of the
/// SRE workbook's multiwindow, multi-burn-rate policy: fire when **both** exceed `threshold`
/// (e.g. 14.4 for 2% of a 30-day budget spent in one hour). The long window makes the alert
/// significant, the short one lets it reset soon after the burn stops.
///
/// Errors as [`burn_rate`], naming `short_bad`, `short_total`, `long_bad`, `long_total` or
/// `objective`; `threshold` not a positive finite number (names `threshold`).
///
/// ```
/// let a = llmhub_analytics::multi_window_burn(30.0, 1000.0, 200.0, 10_000.0, 0.999, 14.4).unwrap();
/// assert!(a.alert); // burn rates 30 and 20
/// ```
pub fn multi_window_burn(
    short_bad: f64,
    short_total: f64,
    long_bad: f64,
    long_total: f64,
    objective: f64,
    threshold: f64,
) -> Result<BurnAlert, AnalyticsError> {
    let short = burn_rate_named(short_bad, short_total, objective, "short_bad", "short_total")?;
    let long = burn_rate_named(long_bad, long_total, objective, "long_bad", "long_total")?;
    let threshold = check::positive_finite("threshold", threshold)?;
    Ok(BurnAlert {
        short,
        long,
        alert: short > threshold && long > threshold,
    })
}

fn burn_rate_named(
    bad: f64,
    total: f64,
    objective: f64,
    bad_name: &'static str,
    total_name: &'static str,
) -> Result<f64, AnalyticsError> {
    let objective = check::open_unit("objective", objective, "0.999")?;
    if !(total.is_finite() && total >= 0.0) {
        return Err(AnalyticsError::argument_error(
            total_name,
            "a finite number >= 0",
            total,
        ));
    }
    if !(bad.is_finite() && bad >= 0.0 && bad <= total) {
        return Err(AnalyticsError::argument_error(
            bad_name,
            format!("a finite number between 0 and {total_name} ({total})"),
            bad,
        ));
    }
    if total == 0.0 {
        return Ok(0.0);
    }
    Ok(bad / total / (1.0 - objective))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples() {
        assert_eq!(burn_rate(0.0, 0.0, 0.99).unwrap(), 0.0);
        assert!((burn_rate(1.0, 100.0, 0.99).unwrap() - 1.0).abs() < 1e-12);
        let e = burn_rate(150.0, 100.0, 0.99).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad must be a finite number between 0 and total (100), got 150"
        );
        let e = burn_rate(1.0, 100.0, 1.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "objective must be between 0 and 1 (exclusive), e.g. 0.999, got 1"
        );
        let e = multi_window_burn(1.0, 10.0, 1.0, -1.0, 0.999, 14.4).unwrap_err();
        assert_eq!(e.argument(), "long_total");
    }

    #[test]
    fn both_windows_must_exceed() {
        // Short 20, long 5: a burst that has not yet spent enough budget to page.
        let a = multi_window_burn(20.0, 1000.0, 50.0, 10_000.0, 0.999, 14.4).unwrap();
        assert_eq!((a.alert, a.short.round(), a.long.round()), (false, 20.0, 5.0));
        // Exactly at the threshold does not exceed it.
        let a = multi_window_burn(1.0, 2.0, 2.0, 4.0, 0.5, 1.0).unwrap();
        assert_eq!((a.short, a.long, a.alert), (1.0, 1.0, false));
    }
}

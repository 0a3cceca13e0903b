//! Budget projections and SLO burn rates: worked examples with known answers, and the
//! monotonicity a reader expects (more spend never pushes the run-out day later, a larger budget
//! never brings it earlier, the interval brackets the projection).

use llmhub_analytics::{budget, burn_rate, multi_window_burn};
use proptest::prelude::*;

#[test]
fn constant_spend_projection() {
    // 10 per day for 10 of 30 days, budget 250: 100 spent, 300 projected, no day-to-day
    // variation so no interval; 250 is reached at the end of day 25.
    let p = budget(&[10.0; 10], 30, 250.0, 0.95).unwrap();
    assert_eq!(p.spent, 100.0);
    assert_eq!(p.projected, 300.0);
    assert_eq!((p.lower, p.upper), (300.0, 300.0));
    assert_eq!(p.daily_rate, 10.0);
    assert_eq!(p.runout_day, Some(25.0));
    // A budget of 245 runs out halfway through day 25; one of 400 outlasts the period.
    assert_eq!(budget(&[10.0; 10], 30, 245.0, 0.95).unwrap().runout_day, Some(24.5));
    assert_eq!(budget(&[10.0; 10], 30, 400.0, 0.95).unwrap().runout_day, None);
    // Exactly at the end of the period still counts.
    assert_eq!(budget(&[10.0; 10], 30, 300.0, 0.95).unwrap().runout_day, Some(30.0));
}

#[test]
fn interval_from_daily_variation() {
    // Spend 8 12 8 12 over 4 of 10 days: rate 10, sample sd = √(4·4/3) = 2.3094, 6 days left.
    // Projected 40 + 60 = 100 ± 1.959964 · 2.3094 · √6 = ± 11.0869.
    let p = budget(&[8.0, 12.0, 8.0, 12.0], 10, 1000.0, 0.95).unwrap();
    assert_eq!(p.projected, 100.0);
    let half = 1.959_963_984_540_054 * (16.0f64 / 3.0).sqrt() * 6.0f64.sqrt();
    assert!((p.upper - (100.0 + half)).abs() < 1e-9 && (p.lower - (100.0 - half)).abs() < 1e-9);
    // Last day of the period: nothing left to project.
    let p = budget(&[8.0, 12.0], 2, 1000.0, 0.95).unwrap();
    assert_eq!((p.projected, p.lower, p.upper), (20.0, 20.0, 20.0));
}

#[test]
fn burn_rate_examples() {
    // 1% errors at a 99.9% objective: 0.01 / 0.001 = 10.
    assert!((burn_rate(100.0, 10_000.0, 0.999).unwrap() - 10.0).abs() < 1e-9);
    // 0.1% errors at 99.9%: exactly the budget, burn rate 1.
    assert!((burn_rate(1.0, 1000.0, 0.999).unwrap() - 1.0).abs() < 1e-9);
    assert_eq!(burn_rate(0.0, 0.0, 0.999).unwrap(), 0.0);
    // SRE workbook page: 2% of a 30-day budget in 1 hour is a burn rate of 14.4.
    let a = multi_window_burn(16.0, 1000.0, 15.0, 1000.0, 0.999, 14.4).unwrap();
    assert!(a.alert);
    let a = multi_window_burn(16.0, 1000.0, 14.0, 1000.0, 0.999, 14.4).unwrap();
    assert!(!a.alert, "the long window has not burnt enough yet");
    let a = multi_window_burn(1.0, 1000.0, 15.0, 1000.0, 0.999, 14.4).unwrap();
    assert!(!a.alert, "the burn has stopped: the short window resets the alert");
}

fn spend() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0.0f64..100.0, 1..30)
}

proptest! {
    #[test]
    fn interval_brackets_the_projection(daily in spend(), extra_days in 0usize..30, budget_amount in 1.0f64..5000.0) {
        let days = daily.len() + extra_days;
        let p = budget(&daily, days, budget_amount, 0.9).unwrap();
        prop_assert!(p.spent <= p.lower && p.lower <= p.projected && p.projected <= p.upper);
        let wider = budget(&daily, days, budget_amount, 0.99).unwrap();
        prop_assert!(wider.lower <= p.lower && wider.upper >= p.upper);
        if let Some(day) = p.runout_day {
            prop_assert!(day > 0.0 && day <= days as f64);
        }
    }

    #[test]
    fn more_spend_never_delays_the_runout(
        daily in spend(),
        extra_days in 0usize..30,
        budget_amount in 1.0f64..5000.0,
        day_index in 0usize..30,
        added in 0.0f64..100.0,
    ) {
        let days = daily.len() + extra_days;
        let before = budget(&daily, days, budget_amount, 0.9).unwrap();
        let mut more = daily.clone();
        let i = day_index % more.len();
        more[i] += added;
        let after = budget(&more, days, budget_amount, 0.9).unwrap();
        prop_assert!(after.spent >= before.spent && after.projected >= before.projected - 1e-9);
        match (before.runout_day, after.runout_day) {
            (Some(b), Some(a)) => prop_assert!(a <= b + 1e-9, "{a} > {b}"),
            (Some(_), None) => prop_assert!(false, "more spend lost the run-out day"),
            _ => {}
        }
    }

    #[test]
    fn larger_budget_never_brings_the_runout_earlier(
        daily in spend(),
        extra_days in 0usize..30,
        budget_amount in 1.0f64..5000.0,
        added in 0.0f64..1000.0,
    ) {
        let days = daily.len() + extra_days;
        let small = budget(&daily, days, budget_amount, 0.9).unwrap().runout_day;
        let large = budget(&daily, days, budget_amount + added, 0.9).unwrap().runout_day;
        match (small, large) {
            (Some(s), Some(l)) => prop_assert!(l >= s - 1e-9),
            (None, Some(_)) => prop_assert!(false, "a larger budget ran out when a smaller did not"),
            _ => {}
        }
    }

    #[test]
    fn burn_rate_is_proportional_to_the_error_ratio(bad in 0.0f64..1000.0, more in 0.0f64..1000.0, objective in 0.5f64..0.9999) {
        let total = 2000.0;
        let rate = burn_rate(bad, total, objective).unwrap();
        prop_assert!(rate >= 0.0 && rate <= 1.0 / (1.0 - objective) * (1.0 + 1e-12));
        prop_assert!(burn_rate(bad + more, total, objective).unwrap() >= rate);
        let half = burn_rate(bad / 2.0, total, objective).unwrap();
        prop_assert!((2.0 * half - rate).abs() <= 1e-12 * rate.max(1.0));
        let same_ratio = burn_rate(3.0 * bad, 3.0 * total, objective).unwrap();
        prop_assert!((same_ratio - rate).abs() <= 1e-12 * rate.max(1.0));
    }
}

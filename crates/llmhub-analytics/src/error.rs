//! The one error type of the crate: every message names the argument at fault, the accepted form
//! and the value received, so the SQL layer can pass it to the user unchanged.

/// Why a function refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalyticsError {
    /// A scalar argument is outside its accepted range,
    /// e.g. "threshold must be a positive finite number, got -1".
    #[error("{argument} must be {accepted}, got {got}")]
    Argument {
        /// The parameter's name in the function signature.
        argument: &'static str,
        /// The accepted form, e.g. "at least 3".
        accepted: String,
        /// The value received, as text.
        got: String,
    },
    /// A series has the wrong number of (usable) points,
    /// e.g. "values: need at least 2 full seasons (48 points) for a seasonal model, got 30".
    #[error("{argument}: need {requirement}, got {got}")]
    Length {
        /// The parameter's name in the function signature.
        argument: &'static str,
        /// What is needed, e.g. "at least 3 finite points for a linear fit".
        requirement: String,
        /// The number of points received (or usable).
        got: usize,
    },
    /// One element of a series is not accepted,
    /// e.g. `daily_spend[3] must be a finite number >= 0, got -2`.
    #[error("{argument}[{index}] must be {accepted}, got {got}")]
    Element {
        /// The parameter's name in the function signature.
        argument: &'static str,
        /// 0-based position of the element.
        index: usize,
        /// The accepted form.
        accepted: &'static str,
        /// The value received.
        got: f64,
    },
    /// A series' times are not a regular grid (or steps are missing where a fit needs every step),
    /// e.g. `times[5]: 2 step(s) of 3600000000 without a point before it (...)`.
    #[error("{argument}[{index}]: {}", grid_problem(*.problem, argument, *.index))]
    Grid {
        /// The parameter's name in the function signature.
        argument: &'static str,
        /// 0-based position of the point at fault.
        index: usize,
        /// What is wrong there.
        problem: crate::forecast::GridProblem,
    },
}

fn grid_problem(problem: crate::forecast::GridProblem, argument: &str, index: usize) -> String {
    use crate::forecast::GridProblem as P;
    match problem {
        P::NotIncreasing => format!("not after {argument}[{}]", index.saturating_sub(1)),
        P::OffGrid { step } => format!("not a whole number of steps ({step}) after {argument}[0]"),
        P::Missing { step, missing } => format!(
            "{missing} step(s) of {step} without a point before it (fill missing steps, e.g. with 0 where that is their meaning)"
        ),
        P::TooLong { step, steps } => format!(
            "spans {steps} steps of {step} from {argument}[0], more than {}",
            crate::forecast::MAX_GRID_STEPS
        ),
    }
}

impl AnalyticsError {
    /// The name of the argument at fault, as spelled in the function signature.
    pub fn argument(&self) -> &'static str {
        match self {
            Self::Argument { argument, .. }
            | Self::Length { argument, .. }
            | Self::Element { argument, .. }
            | Self::Grid { argument, .. } => argument,
        }
    }

    pub(crate) fn argument_error(argument: &'static str, accepted: impl Into<String>, got: impl ToString) -> Self {
        Self::Argument {
            argument,
            accepted: accepted.into(),
            got: got.to_string(),
        }
    }

    pub(crate) fn length_error(argument: &'static str, requirement: impl Into<String>, got: usize) -> Self {
        Self::Length {
            argument,
            requirement: requirement.into(),
            got,
        }
    }
}

/// Checks shared by the public functions; each returns the error naming `argument`.
pub(crate) mod check {
    use super::AnalyticsError;

    /// `value` is finite and > 0.
    pub(crate) fn positive_finite(argument: &'static str, value: f64) -> Result<f64, AnalyticsError> {
        if value.is_finite() && value > 0.0 {
            Ok(value)
        } else {
            Err(AnalyticsError::argument_error(
                argument,
                "a positive finite number",
                value,
            ))
        }
    }

    /// `value` is a probability strictly between 0 and 1 (a confidence level, an objective...).
    pub(crate) fn open_unit(argument: &'static str, value: f64, example: &str) -> Result<f64, AnalyticsError> {
        if value > 0.0 && value < 1.0 {
            Ok(value)
        } else {
            Err(AnalyticsError::argument_error(
                argument,
                format!("between 0 and 1 (exclusive), e.g. {example}"),
                value,
            ))
        }
    }

    /// `value >= min`.
    pub(crate) fn at_least(argument: &'static str, value: usize, min: usize) -> Result<usize, AnalyticsError> {
        if value >= min {
            Ok(value)
        } else {
            Err(AnalyticsError::argument_error(
                argument,
                format!("at least {min}"),
                value,
            ))
        }
    }

    /// `1 <= horizon <= MAX_HORIZON`.
    pub(crate) fn horizon(horizon: usize) -> Result<usize, AnalyticsError> {
        let max = crate::forecast::MAX_HORIZON;
        if (1..=max).contains(&horizon) {
            Ok(horizon)
        } else {
            Err(AnalyticsError::argument_error(
                "horizon",
                format!("between 1 and {max} steps"),
                horizon,
            ))
        }
    }

    /// Every element of `values` is finite (no NaN, no ±infinity).
    pub(crate) fn all_finite(argument: &'static str, values: &[f64]) -> Result<(), AnalyticsError> {
        match values.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(index) => Err(AnalyticsError::Element {
                argument,
                index,
                accepted: "a finite number (this function does not skip missing points)",
                got: values[index],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_argument_and_the_value() {
        let e = check::positive_finite("threshold", -1.0).unwrap_err();
        assert_eq!(e.to_string(), "threshold must be a positive finite number, got -1");
        assert_eq!(e.argument(), "threshold");
        let e = check::at_least("period", 1, 2).unwrap_err();
        assert_eq!(e.to_string(), "period must be at least 2, got 1");
        let e = check::open_unit("level", f64::NAN, "0.95").unwrap_err();
        assert_eq!(
            e.to_string(),
            "level must be between 0 and 1 (exclusive), e.g. 0.95, got NaN"
        );
        let e = check::all_finite("values", &[1.0, f64::INFINITY]).unwrap_err();
        assert_eq!(e.argument(), "values");
        assert!(e.to_string().starts_with("values[1] must be a finite number"), "{e}");
    }
}

//! The time axis of a series: its points placed on a regular grid of steps, so a fit uses time
//! (not the position in the input) as x, and a missing step is seen instead of silently closing up.

use crate::AnalyticsError;

/// The most grid steps a series may span (bounds the memory a call can ask for).
pub const MAX_GRID_STEPS: usize = 1_000_000;

/// Why a series' times are not a regular grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GridProblem {
    /// `times[index]` is not after `times[index − 1]`.
    NotIncreasing,
    /// `times[index]` is not a whole number of steps after `times[0]`.
    OffGrid {
        /// The step: the smallest gap between consecutive times.
        step: i64,
    },
    /// Between `times[index − 1]` and `times[index]`, `missing` steps have no point.
    Missing {
        /// The step.
        step: i64,
        /// Steps without a point.
        missing: u64,
    },
    /// The series spans more than [`MAX_GRID_STEPS`] steps.
    TooLong {
        /// The step.
        step: i64,
        /// Steps spanned.
        steps: u64,
    },
}

/// Times (integers in any unit, e.g. microseconds) on a regular grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    /// The first time.
    pub start: i64,
    /// The grid step: the smallest gap between consecutive times.
    pub step: i64,
    /// Each input point's step index (`(time − start) / step`), increasing.
    pub positions: Vec<usize>,
}

impl Grid {
    /// Places strictly increasing `times` (at least 2) on the grid of their smallest gap.
    ///
    /// Errors (naming `times`, with the index of the offending point): fewer than 2 times, a time
    /// not after the one before, a time not a whole number of steps after the first, a span of
    /// more than [`MAX_GRID_STEPS`] steps.
    pub fn of(times: &[i64]) -> Result<Self, AnalyticsError> {
        let problem = |index, problem| AnalyticsError::Grid {
            argument: "times",
            index,
            problem,
        };
        if times.len() < 2 {
            return Err(AnalyticsError::length_error(
                "times",
                "at least 2 points to know the step",
                times.len(),
            ));
        }
        let mut step = i64::MAX;
        for (i, pair) in times.windows(2).enumerate() {
            match pair[1].checked_sub(pair[0]) {
                Some(d) if d > 0 => step = step.min(d),
                Some(_) => return Err(problem(i + 1, GridProblem::NotIncreasing)),
                // The gap overflows i64: wider than any step, so not the smallest.
                None if pair[1] > pair[0] => {}
                None => return Err(problem(i + 1, GridProblem::NotIncreasing)),
            }
        }
        let start = times[0];
        let mut positions = Vec::with_capacity(times.len());
        for (i, &t) in times.iter().enumerate() {
            let offset = i128::from(t) - i128::from(start);
            if offset % i128::from(step) != 0 {
                return Err(problem(i, GridProblem::OffGrid { step }));
            }
            let steps = offset / i128::from(step);
            if steps >= MAX_GRID_STEPS as i128 {
                return Err(problem(
                    i,
                    GridProblem::TooLong {
                        step,
                        steps: u64::try_from(steps).unwrap_or(u64::MAX),
                    },
                ));
            }
            positions.push(steps as usize);
        }
        Ok(Self { start, step, positions })
    }

    /// Grid steps from the first point to the last, both included.
    pub fn len(&self) -> usize {
        self.positions.last().map_or(0, |p| p + 1)
    }

    /// Never true: a grid holds at least 2 points.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The first place where steps are missing: `times[index]` and the number of steps without a
    /// point before it.
    pub fn first_gap(&self) -> Option<(usize, u64)> {
        self.positions
            .windows(2)
            .position(|w| w[1] - w[0] > 1)
            .map(|i| (i + 1, (self.positions[i + 1] - self.positions[i] - 1) as u64))
    }

    /// Refuses a grid with missing steps (for fits that need every step), naming the first gap.
    pub fn require_complete(&self) -> Result<(), AnalyticsError> {
        match self.first_gap() {
            None => Ok(()),
            Some((index, missing)) => Err(AnalyticsError::Grid {
                argument: "times",
                index,
                problem: GridProblem::Missing {
                    step: self.step,
                    missing,
                },
            }),
        }
    }

    /// `values` (one per time) spread over every step, missing steps as NaN. `values` must have
    /// one element per time (checked: names `values`).
    pub fn spread(&self, values: &[f64]) -> Result<Vec<f64>, AnalyticsError> {
        if values.len() != self.positions.len() {
            return Err(AnalyticsError::length_error(
                "values",
                format!("one value per time ({})", self.positions.len()),
                values.len(),
            ));
        }
        let mut out = vec![f64::NAN; self.len()];
        for (&p, &v) in self.positions.iter().zip(values) {
            out[p] = v;
        }
        Ok(out)
    }

    /// The time of the grid step `k` steps after the first point, `None` if not representable.
    pub fn time_at(&self, k: usize) -> Option<i64> {
        i64::try_from(k).ok()?.checked_mul(self.step)?.checked_add(self.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_hour_keeps_its_place() {
        let h = 3_600_000_000i64;
        let g = Grid::of(&[0, h, 3 * h, 4 * h]).unwrap();
        assert_eq!((g.step, g.positions.clone(), g.len()), (h, vec![0, 1, 3, 4], 5));
        assert_eq!(g.first_gap(), Some((2, 1)));
        let spread = g.spread(&[1.0, 2.0, 4.0, 5.0]).unwrap();
        assert!(spread[2].is_nan());
        assert_eq!(spread[3], 4.0);
        assert_eq!(g.time_at(5), Some(5 * h));
        assert_eq!(
            g.require_complete().unwrap_err().to_string(),
            "times[2]: 1 step(s) of 3600000000 without a point before it (fill missing steps, e.g. with 0 where that is their meaning)"
        );
    }

    #[test]
    fn irregular_and_unordered_times_are_refused() {
        let e = Grid::of(&[0, 10, 25]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "times[2]: not a whole number of steps (10) after times[0]"
        );
        let e = Grid::of(&[0, 10, 10]).unwrap_err();
        assert_eq!(e.to_string(), "times[2]: not after times[1]");
        let e = Grid::of(&[0, 1, 5_000_000]).unwrap_err();
        assert!(e.to_string().starts_with("times[2]: spans 5000000 steps"), "{e}");
        assert_eq!(Grid::of(&[7]).unwrap_err().argument(), "times");
        // The gap overflows: refused, not a panic.
        assert!(Grid::of(&[i64::MIN, i64::MAX]).is_err());
    }
}

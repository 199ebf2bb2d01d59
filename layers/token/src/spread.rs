//! Where in a spreading window the next refreshes go.
//!
//! Sessions reach the planner a few at a time (each plan sees only those
//! that appeared since the last one), so spreading every batch evenly over
//! the whole window on its own would add up to random placement: 40
//! sessions planned one by one land like 40 uniform draws. Instead each new
//! refresh goes into the largest gap left by those already scheduled, which
//! keeps the whole schedule even however the sessions trickle in.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A gap between two scheduled times (or a window edge), with the number of
/// new refreshes it gets.
#[derive(Clone, Copy, Debug)]
struct Gap {
    from: u64,
    to: u64,
    /// The gap touches the window's start / end: nothing scheduled bounds it
    /// on that side.
    open_start: bool,
    open_end: bool,
    count: u64,
}

impl Gap {
    fn edge(&self) -> bool {
        self.open_start != self.open_end
    }

    /// Twice the spacing of the refreshes in this gap with its current
    /// count: `count` new refreshes split a gap between two scheduled ones
    /// into `count + 1` equal parts; at a window edge the first sits half a
    /// spacing from the edge, as in even slots.
    fn spacing2(&self) -> u64 {
        let len2 = (self.to - self.from).saturating_mul(2);
        if self.edge() {
            len2 / (2 * self.count + 1)
        } else {
            len2 / (2 * self.count + 2)
        }
    }

    /// The times of its new refreshes, evenly spaced.
    fn times(&self, jitter: &mut impl FnMut(u64) -> i64, out: &mut Vec<u64>) {
        let len = self.to - self.from;
        let spacing = self.spacing2() / 2;
        let bound = i64::try_from(spacing / 8).unwrap_or(i64::MAX);
        for j in 1..=self.count {
            let at = if self.open_start && !self.open_end {
                // Counted back from the scheduled refresh that ends the gap.
                self.to - (len * 2 * j) / (2 * self.count + 1)
            } else if self.open_end && !self.open_start {
                self.from + (len * 2 * j) / (2 * self.count + 1)
            } else {
                self.from + (len * j) / (self.count + 1)
            };
            let at = at
                .saturating_add_signed(jitter(spacing).clamp(-bound, bound))
                .clamp(self.from, self.to.saturating_sub(1).max(self.from));
            out.push(at);
        }
    }
}

impl PartialEq for Gap {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Gap {}

impl PartialOrd for Gap {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Gap {
    fn cmp(&self, other: &Self) -> Ordering {
        // Widest spacing first; among equals a gap between two refreshes
        // before an edge gap, then the earliest, so that ties resolve the
        // same way every time.
        self.spacing2()
            .cmp(&other.spacing2())
            .then_with(|| other.edge().cmp(&self.edge()))
            .then_with(|| other.from.cmp(&self.from))
    }
}

/// `count` times in `[start, end)` for new refreshes, given the times
/// `taken` by refreshes already scheduled (any order; those outside the
/// window are ignored), returned in increasing order.
///
/// The new refreshes go where the schedule is sparsest: each in turn is
/// given to the gap whose spacing is widest, and each gap's share is then
/// spread evenly inside it, so the widest spacing left is as small as it
/// can be without moving what is already scheduled. Each time is moved by
/// `jitter(spacing)` (clamped to `±spacing / 8`) so that planners do not all
/// pick the same instants.
pub(crate) fn spread(
    start: u64,
    end: u64,
    taken: impl IntoIterator<Item = u64>,
    count: usize,
    mut jitter: impl FnMut(u64) -> i64,
) -> Vec<u64> {
    if count == 0 {
        return Vec::new();
    }
    if end <= start {
        return vec![start; count];
    }
    let mut points: Vec<u64> = taken
        .into_iter()
        .filter(|t| (start..end).contains(t))
        .collect();
    let mut out = Vec::with_capacity(count);
    if points.is_empty() {
        // Nothing scheduled yet: even slots, each refresh in its slot's
        // middle.
        let (len, n) = (end - start, count as u64);
        let slot = len / n;
        let bound = i64::try_from(slot / 8).unwrap_or(i64::MAX);
        for i in 0..n {
            let middle = start + (len * (2 * i + 1)) / (2 * n);
            out.push(
                middle
                    .saturating_add_signed(jitter(slot).clamp(-bound, bound))
                    .clamp(start, end - 1),
            );
        }
        return out;
    }
    points.sort_unstable();
    let mut gaps = BinaryHeap::with_capacity(points.len() + 1);
    let mut from = start;
    let mut open_start = true;
    for &point in &points {
        gaps.push(Gap {
            from,
            to: point,
            open_start,
            open_end: false,
            count: 0,
        });
        from = point;
        open_start = false;
    }
    gaps.push(Gap {
        from,
        to: end,
        open_start,
        open_end: true,
        count: 0,
    });
    for _ in 0..count {
        let mut gap = gaps.pop().expect("there is always a gap");
        gap.count += 1;
        gaps.push(gap);
    }
    for gap in gaps.iter().filter(|g| g.count > 0) {
        gap.times(&mut jitter, &mut out);
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn no_jitter(_: u64) -> i64 {
        0
    }

    #[test]
    fn an_empty_window_is_split_into_even_slots() {
        assert_eq!(spread(0, 100, [], 1, no_jitter), vec![50]);
        assert_eq!(spread(0, 100, [], 2, no_jitter), vec![25, 75]);
        assert_eq!(spread(0, 800, [], 4, no_jitter), vec![100, 300, 500, 700]);
    }

    #[test]
    fn one_at_a_time_refreshes_still_spread() {
        let mut taken = Vec::new();
        for _ in 0..4 {
            taken.extend(spread(0, 900, taken.clone(), 1, no_jitter));
        }
        taken.sort_unstable();
        // The middle, then a third of the way into each edge gap, then the
        // largest gap left.
        assert_eq!(taken, vec![150, 300, 450, 750]);
    }

    #[test]
    fn new_refreshes_fill_the_largest_gaps() {
        // Everything in the first half is taken: the newcomers go right.
        let taken = [0, 100, 200, 300, 400, 500];
        let new = spread(0, 1000, taken, 3, no_jitter);
        assert!(new.iter().all(|&t| t > 500), "{new:?}");
    }

    #[test]
    fn times_outside_the_window_are_ignored_and_degenerate_windows_are_safe() {
        assert_eq!(spread(100, 200, [5, 500], 1, no_jitter), vec![150]);
        assert_eq!(spread(100, 100, [], 2, no_jitter), vec![100, 100]);
        assert_eq!(spread(0, 10, [], 0, no_jitter), Vec::<u64>::new());
    }

    proptest! {
        /// However the refreshes trickle in (batches of 1 to 5), every
        /// fifth of the window ends up with a fair share: at least half of
        /// its even share, at most twice.
        #[test]
        fn batches_planned_one_after_another_stay_even(
            batches in proptest::collection::vec(1usize..=5, 8..40),
            seed in any::<u64>(),
        ) {
            const WINDOW: u64 = 600_000_000;
            let mut state = seed | 1;
            let mut jitter = |len: u64| {
                // xorshift: reproducible jitter within ±len/8.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let bound = (len / 8).max(1);
                (state % (2 * bound)) as i64 - bound as i64
            };
            let mut scheduled: Vec<u64> = Vec::new();
            for batch in &batches {
                let new = spread(0, WINDOW, scheduled.iter().copied(), *batch, &mut jitter);
                prop_assert_eq!(new.len(), *batch);
                prop_assert!(new.iter().all(|t| *t < WINDOW));
                scheduled.extend(new);
            }
            let total = scheduled.len();
            for fifth in 0..5 {
                let from = WINDOW / 5 * fifth;
                let n = scheduled.iter().filter(|&&t| t >= from && t < from + WINDOW / 5).count();
                let share = total as f64 / 5.0;
                prop_assert!(n as f64 >= (share / 2.0).floor(), "fifth {}: {} of {}", fifth, n, total);
                prop_assert!(n as f64 <= (share * 2.0).ceil() + 1.0, "fifth {}: {} of {}", fifth, n, total);
            }
        }
    }
}

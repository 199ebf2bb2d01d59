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

/// A gap between two scheduled times (or a window edge), by weight.
#[derive(Clone, Copy, Debug)]
struct Gap {
    from: u64,
    to: u64,
    /// The gap touches the window's start / end: nothing scheduled bounds it
    /// on that side.
    open_start: bool,
    open_end: bool,
}

impl Gap {
    /// An edge gap counts double: evenly spread refreshes sit in the middle
    /// of their slots, half a slot from the edges.
    fn weight(&self) -> u64 {
        let len = self.to - self.from;
        if self.open_start != self.open_end {
            len.saturating_mul(2)
        } else {
            len
        }
    }

    /// Where a new refresh goes in this gap: the middle of a gap between
    /// two refreshes; a third of the way from the window's edge in an edge
    /// gap, which leaves the two new gaps of equal weight.
    fn split_at(&self) -> u64 {
        let len = self.to - self.from;
        match (self.open_start, self.open_end) {
            (true, false) => self.from + len / 3,
            (false, true) => self.to - len / 3,
            _ => self.from + len / 2,
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
        // Largest weight first; among equals a gap between two refreshes
        // before an edge gap, then the earliest, so that ties resolve the
        // same way every time.
        let interior = |g: &Gap| !g.open_start && !g.open_end;
        self.weight()
            .cmp(&other.weight())
            .then_with(|| interior(self).cmp(&interior(other)))
            .then_with(|| other.from.cmp(&self.from))
    }
}

/// `count` times in `[start, end)` for new refreshes, given the times
/// `taken` by refreshes already scheduled (any order; those outside the
/// window are ignored), returned in increasing order. Each goes into the
/// largest remaining gap, moved by `jitter(gap_len)` (which must stay within
/// `±gap_len / 8`) so that planners do not all pick the same instants.
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
    if points.is_empty() {
        // Nothing scheduled yet: even slots, each refresh near its slot's
        // middle.
        let slot = (end - start) / count as u64;
        return (0..count as u64)
            .map(|i| {
                let middle = start + slot * i + slot / 2;
                let bound = i64::try_from(slot / 8).unwrap_or(i64::MAX);
                middle
                    .saturating_add_signed(jitter(slot).clamp(-bound, bound))
                    .clamp(start, end - 1)
            })
            .collect();
    }
    points.sort_unstable();
    let mut gaps = BinaryHeap::with_capacity(points.len() + count + 1);
    let mut from = start;
    let mut open_start = true;
    for &point in &points {
        gaps.push(Gap {
            from,
            to: point,
            open_start,
            open_end: false,
        });
        from = point;
        open_start = false;
    }
    gaps.push(Gap {
        from,
        to: end,
        open_start,
        open_end: true,
    });
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let gap = gaps.pop().expect("there is always a gap");
        let len = gap.to - gap.from;
        let bound = i64::try_from(len / 8).unwrap_or(i64::MAX);
        let at = gap
            .split_at()
            .saturating_add_signed(jitter(len).clamp(-bound, bound))
            .clamp(gap.from, gap.to.saturating_sub(1).max(gap.from));
        out.push(at);
        gaps.push(Gap {
            from: gap.from,
            to: at,
            open_start: gap.open_start,
            open_end: false,
        });
        gaps.push(Gap {
            from: at,
            to: gap.to,
            open_start: false,
            open_end: gap.open_end,
        });
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

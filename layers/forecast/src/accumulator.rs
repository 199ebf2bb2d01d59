//! Lock-free accumulation of the values recorded during one step.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sum and count of the values recorded since the last step closed.
///
/// `record` is two atomic operations and never blocks, so the layers can
/// call it on every request.
#[derive(Debug, Default)]
pub(crate) struct Accumulator {
    /// Bits of an `f64`.
    sum: AtomicU64,
    count: AtomicU64,
}

impl Accumulator {
    pub(crate) fn record(&self, value: f64) {
        let mut current = self.sum.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(current) + value).to_bits();
            match self.sum.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the sum and count, resetting both. A value recorded while the
    /// step closes may count in one step and add to the next: a small
    /// misattribution, never a loss.
    pub(crate) fn take(&self) -> (f64, u64) {
        let count = self.count.swap(0, Ordering::Relaxed);
        let sum = f64::from_bits(self.sum.swap(0f64.to_bits(), Ordering::Relaxed));
        (sum, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_resets() {
        let a = Accumulator::default();
        a.record(1.5);
        a.record(2.5);
        assert_eq!(a.take(), (4.0, 2));
        assert_eq!(a.take(), (0.0, 0));
    }
}

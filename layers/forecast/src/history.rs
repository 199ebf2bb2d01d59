//! A fixed-capacity ring of samples: the bounded history of one series.

/// The most recent `capacity` samples of a series, oldest first.
///
/// Memory is allocated once; pushing beyond the capacity overwrites the
/// oldest sample, so a history never grows however long it runs.
#[derive(Debug, Clone)]
pub(crate) struct History {
    buf: Box<[f64]>,
    /// Index of the next write.
    head: usize,
    len: usize,
}

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            buf: vec![f64::NAN; capacity.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, value: f64) {
        self.buf[self.head] = value;
        self.head = (self.head + 1) % self.buf.len();
        self.len = (self.len + 1).min(self.buf.len());
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The two contiguous parts of the history, oldest first.
    fn parts(&self) -> (&[f64], &[f64]) {
        if self.len < self.buf.len() {
            (&self.buf[..self.len], &[])
        } else {
            let (newer, older) = self.buf.split_at(self.head);
            (older, newer)
        }
    }

    /// Copies the whole history, oldest first, into `out` (cleared first).
    pub(crate) fn copy_into(&self, out: &mut Vec<f64>) {
        out.clear();
        let (a, b) = self.parts();
        out.extend_from_slice(a);
        out.extend_from_slice(b);
    }

    /// Copies the newest `n` samples (or all, if fewer), oldest first.
    pub(crate) fn copy_tail(&self, n: usize, out: &mut Vec<f64>) {
        out.clear();
        let (a, b) = self.parts();
        let n = n.min(self.len);
        let from_b = n.min(b.len());
        let from_a = n - from_b;
        out.extend_from_slice(&a[a.len() - from_a..]);
        out.extend_from_slice(&b[b.len() - from_b..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_keeps_order() {
        let mut h = History::new(3);
        let mut out = Vec::new();
        for v in 0..5 {
            h.push(f64::from(v));
        }
        h.copy_into(&mut out);
        assert_eq!(out, [2.0, 3.0, 4.0]);
        h.copy_tail(2, &mut out);
        assert_eq!(out, [3.0, 4.0]);
        assert_eq!(h.len(), 3);
        assert_eq!(h.capacity(), 3);
    }

    #[test]
    fn partial_fill() {
        let mut h = History::new(4);
        h.push(1.0);
        h.push(2.0);
        let mut out = Vec::new();
        h.copy_tail(5, &mut out);
        assert_eq!(out, [1.0, 2.0]);
    }

    proptest::proptest! {
        /// The ring always holds the newest `capacity` pushes, in order.
        #[test]
        fn ring_matches_the_tail(
            capacity in 1usize..20,
            pushes in proptest::collection::vec(-1.0e3f64..1.0e3, 0..60),
            tail in 0usize..25,
        ) {
            let mut h = History::new(capacity);
            for &v in &pushes {
                h.push(v);
            }
            let keep = pushes.len().min(capacity);
            let mut out = Vec::new();
            h.copy_into(&mut out);
            proptest::prop_assert_eq!(&out[..], &pushes[pushes.len() - keep..]);
            h.copy_tail(tail, &mut out);
            let t = tail.min(keep);
            proptest::prop_assert_eq!(&out[..], &pushes[pushes.len() - t..]);
        }
    }
}

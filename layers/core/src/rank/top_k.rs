use super::MAX_CANDIDATES;

/// Indices of the best candidates, best first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidates {
    len: usize,
    index: [u32; MAX_CANDIDATES],
}

impl Candidates {
    pub(crate) fn empty() -> Self {
        Self {
            len: 0,
            index: [0; MAX_CANDIDATES],
        }
    }

    pub(crate) fn push(&mut self, index: u32) {
        self.index[self.len] = index;
        self.len += 1;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn as_slice(&self) -> &[u32] {
        &self.index[..self.len]
    }
}

/// The best `k` (index, score) pairs seen so far, best first. Generic over
/// the score so that uniform weights compare raw 64-bit draws exactly and
/// weighted ones compare `f64` scores.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TopK<T> {
    k: usize,
    len: usize,
    index: [u32; MAX_CANDIDATES],
    score: [T; MAX_CANDIDATES],
}

impl<T: Copy + PartialOrd> TopK<T> {
    #[inline]
    pub(crate) fn new(k: usize, lowest: T) -> Self {
        Self {
            k: k.clamp(1, MAX_CANDIDATES),
            len: 0,
            index: [0; MAX_CANDIDATES],
            score: [lowest; MAX_CANDIDATES],
        }
    }

    /// Whether `score` would enter the top k.
    #[inline(always)]
    pub(crate) fn admits(&self, score: T) -> bool {
        self.len < self.k || score > self.score[self.k - 1]
    }

    /// Offers a candidate; kept when it beats the current k-th.
    #[inline(always)]
    pub(crate) fn offer(&mut self, index: u32, score: T) {
        if !self.admits(score) {
            return;
        }
        if self.len == self.k {
            self.len -= 1;
        }
        let mut at = self.len;
        while at > 0 && self.score[at - 1] < score {
            self.score[at] = self.score[at - 1];
            self.index[at] = self.index[at - 1];
            at -= 1;
        }
        self.score[at] = score;
        self.index[at] = index;
        self.len += 1;
    }

    pub(crate) fn indices(&self) -> &[u32] {
        &self.index[..self.len]
    }
}

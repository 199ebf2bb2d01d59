use super::score::{draw, weighted_score};
use super::top_k::{Candidates, TopK};

/// Scores every instance. Structure of arrays, so the hot loop reads dense
/// slices.
#[derive(Debug)]
pub(crate) struct Flat {
    hashes: Vec<u64>,
    /// `None` when every weight is equal: raw draws then order candidates as
    /// the weighted scores would, and the logarithm is skipped.
    weights: Option<Vec<f64>>,
    total_weight: f64,
}

impl Flat {
    pub(crate) fn new(hashes: Vec<u64>, weights: Vec<f64>) -> Self {
        let total_weight = weights.iter().sum();
        let uniform = weights.windows(2).all(|w| w[0] == w[1]);
        Self {
            hashes,
            weights: (!uniform).then_some(weights),
            total_weight,
        }
    }

    #[inline]
    pub(crate) fn top_k(&self, key: u64, k: usize) -> Candidates {
        let mut out = Candidates::empty();
        match &self.weights {
            None => {
                let top = rank_uniform(&self.hashes, key, k);
                top.indices().iter().for_each(|&i| out.push(i));
            }
            Some(weights) => {
                let top = rank_weighted(&self.hashes, weights, key, k);
                top.indices().iter().for_each(|&i| out.push(i));
            }
        }
        out
    }

    pub(crate) fn share(&self, index: usize) -> f64 {
        match &self.weights {
            None => 1.0 / self.hashes.len() as f64,
            Some(weights) => weights[index] / self.total_weight,
        }
    }
}

/// Uniform weights: the raw draw orders candidates.
#[inline(always)]
pub(crate) fn rank_uniform(hashes: &[u64], key: u64, k: usize) -> TopK<u64> {
    if k <= 2 {
        return rank_uniform_two(hashes, key, k);
    }
    let mut top = TopK::new(k, 0);
    for (i, &h) in hashes.iter().enumerate() {
        let d = draw(key, h);
        if top.admits(d) {
            top.offer(i as u32, d);
        }
    }
    top
}

/// The usual `k` (a primary and a secondary) with the two best kept in
/// registers: the hot loop is a multiply and one well-predicted compare per
/// instance.
#[inline(always)]
fn rank_uniform_two(hashes: &[u64], key: u64, k: usize) -> TopK<u64> {
    let mut top = TopK::new(k, 0);
    let Some((&first, rest)) = hashes.split_first() else {
        return top;
    };
    // k = 1 runs the same loop: a lone running maximum compiles to a
    // conditional move, a loop-carried dependency that is slower than the
    // well-predicted branch of the two-best loop.
    let (mut best, mut best_at) = (draw(key, first), 0u32);
    // Below any draw: the first real candidate replaces it.
    let (mut second, mut second_at) = (0u64, u32::MAX);
    for (i, &h) in rest.iter().enumerate() {
        let d = draw(key, h);
        if d > second {
            if d > best {
                (second, second_at) = (best, best_at);
                (best, best_at) = (d, i as u32 + 1);
            } else {
                (second, second_at) = (d, i as u32 + 1);
            }
        }
    }
    top.offer(best_at, best);
    if second_at != u32::MAX {
        top.offer(second_at, second);
    }
    top
}

#[inline(always)]
pub(crate) fn rank_weighted(hashes: &[u64], weights: &[f64], key: u64, k: usize) -> TopK<f64> {
    let mut top = TopK::new(k, f64::NEG_INFINITY);
    for (i, (&h, &w)) in hashes.iter().zip(weights).enumerate() {
        let score = weighted_score(draw(key, h), w);
        if top.admits(score) {
            top.offer(i as u32, score);
        }
    }
    top
}

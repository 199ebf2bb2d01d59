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
    let mut top = TopK::new(k, 0);
    for (i, &h) in hashes.iter().enumerate() {
        let d = draw(key, h);
        if top.admits(d) {
            top.offer(i as u32, d);
        }
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

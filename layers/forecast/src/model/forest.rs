//! The random-forest variant: one smartcore forest per horizon.

use smartcore::ensemble::random_forest_regressor::RandomForestRegressorParameters;
use smartcore::error::Failed;
use smartcore::linalg::basic::matrix::DenseMatrix;

use super::trained::{Fitted, Forest};
use crate::error::FallbackReason;

pub(super) fn fit_forest(
    x: &[f64],
    rows: usize,
    width: usize,
    targets: &[f64],
    hs: usize,
    trees: usize,
    max_depth: u16,
) -> Result<Fitted, FallbackReason> {
    let m = DenseMatrix::new(rows, width, x.to_vec(), false).map_err(FallbackReason::Training)?;
    let params = RandomForestRegressorParameters::default()
        .with_n_trees(trees)
        .with_max_depth(max_depth)
        .with_min_samples_leaf(5)
        .with_seed(7);
    let forests = (0..hs)
        .map(|h| {
            let t: Vec<f64> = targets.iter().skip(h).step_by(hs).copied().collect();
            Forest::fit(&m, &t, params.clone())
        })
        .collect::<Result<Vec<_>, Failed>>()
        .map_err(FallbackReason::Training)?;
    Ok(Fitted::Forest(forests))
}

//! The forecasting models: direct multi-horizon regression of the change
//! `y[t+h] − y[t]` on level-free features, trained with smartcore.
//!
//! [`train`] turns a series into a [`Model`] or into the
//! [`FallbackReason`](crate::FallbackReason) that keeps it on the naive
//! forecast; [`Model::predict`] forecasts every horizon from the newest
//! samples; [`Model::backtest`] replays rolling origins for evaluation.

mod config;
mod features;
mod forest;
mod naive;
mod ridge;
mod seasonal;
mod seasonal_config;
mod select;
mod train;
mod trained;

pub use config::{ModelConfig, ModelKind};
pub use features::Times;
pub use seasonal::{SeasonalModel, seasonal_min_samples, train_seasonal};
pub use seasonal_config::SeasonalConfig;
pub use select::{Choice, choice_min_samples, choose, cycle_strength};
pub use train::{min_samples, train};
pub use trained::Model;

pub(crate) use features::clean;
pub(crate) use naive::naive_band;

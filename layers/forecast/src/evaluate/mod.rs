//! The offline evaluation protocol of the development data (NAB format):
//! train on the first 80%, forecast from every origin of the last 20% at
//! horizons 1, 6 and 12, and score against the naive forecast.
//!
//! The `evaluate` example runs it on CSV files; the functions are public so
//! that the protocol is tested like the rest of the crate.

mod aggregate;
mod csv;
mod score;
mod seasonal;

pub use aggregate::{Aggregate, SeasonalAggregate, aggregate, aggregate_seasonal};
pub use csv::{EvalError, Series, parse_timestamp, read_csv};
pub use score::{AlarmCounts, HorizonScore, Refit, SeriesReport, evaluate, evaluate_with_seasonal};
pub use seasonal::{Candidate, SEASONAL_HORIZONS, SeasonalReport, evaluate_seasonal, median_step};

/// Horizons scored by the protocol, in steps.
pub const HORIZONS: [usize; 3] = [1, 6, 12];
/// Horizon of the threshold alarm, in steps.
pub const ALARM_HORIZON: usize = 6;
/// Share of each series used for training.
pub const TRAIN_SHARE: f64 = 0.8;

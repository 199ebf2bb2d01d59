//! Load forecasting for the Foresight layers.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

mod error;
mod forecast;
mod history;
pub mod model;
mod stats;

pub use error::{FallbackReason, ForecastError};
pub use forecast::Forecast;
pub mod evaluate;

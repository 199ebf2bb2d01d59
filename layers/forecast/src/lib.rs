//! Load forecasting for the Foresight layers.
//!
//! A [`Forecaster`] keeps a bounded history of each load [`Signal`]: request
//! rate, latency, active sessions and errors recorded by the layers, and
//! host CPU, memory and network throughput sampled through `sysinfo`. In
//! the background it retrains one smartcore model per signal and publishes
//! forecasts as a lock-free snapshot, which the request path reads without
//! locking or allocating.
//!
//! # The model
//!
//! Direct multi-horizon regression: for each horizon `h` (in steps), ridge
//! regression through the origin predicts the change `y[t+h] − y[t]` from
//! the last 12 first differences. Regressing on changes rather than levels
//! keeps the forecast sound across level shifts, which are common in server
//! metrics; leaving out a drift term keeps a past shift from being
//! extrapolated. The
//! prediction interval is the 5%–95% range of the residuals on a held-back
//! window (the newest 20% of the training rows). Series that cannot support
//! a model (empty, all NaN, constant, shorter than the lag window needs) are
//! forecast naively, with the [`FallbackReason`] in
//! [`Forecaster::status`]; NaN samples are gaps, filled with the previous
//! value. The [`model`] module exposes the training itself, and
//! [`evaluate`] the offline protocol measured in the crate's README.
//!
//! # Example
//!
//! Driving a forecaster by hand (the background tasks of
//! [`ForecasterBuilder::spawn`] do the same on a timer):
//!
//! ```
//! use std::time::Duration;
//!
//! use foresight_forecast::{Forecaster, LoadSignal, Signal};
//!
//! # fn main() -> Result<(), foresight_forecast::ForecastError> {
//! let forecaster = Forecaster::builder()
//!     .with_step(Duration::from_secs(10))
//!     .with_system_sampler(false)
//!     .build()?;
//!
//! // A rising request rate with a cycle, one sample per step.
//! for i in 0..600 {
//!     let t = f64::from(i);
//!     forecaster.push(Signal::RequestRate, 100.0 + 0.1 * t + 20.0 * (t / 30.0).sin());
//! }
//! forecaster.retrain_blocking();
//! assert!(forecaster.status(Signal::RequestRate).modelled);
//!
//! let in_a_minute = forecaster
//!     .forecast(Signal::RequestRate, Duration::from_secs(60))
//!     .expect("a forecast once samples exist");
//! assert!(in_a_minute.lower <= in_a_minute.mean && in_a_minute.mean <= in_a_minute.upper);
//!
//! // Layers take the small trait, not the concrete type.
//! let load = forecaster.signal(Signal::RequestRate);
//! let soon = load.will_exceed(1_000.0, Duration::from_secs(120));
//! assert_eq!(soon, None);
//! # Ok(())
//! # }
//! ```
//!
//! With background tasks, inside a Tokio runtime:
//!
//! ```
//! use std::time::Duration;
//!
//! use foresight_forecast::{Forecaster, Signal};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), foresight_forecast::ForecastError> {
//! let forecaster = Forecaster::builder()
//!     .with_step(Duration::from_secs(1))
//!     .with_retrain_every(Duration::from_secs(60))
//!     .spawn()?;
//!
//! // On the request path:
//! forecaster.record(Signal::RequestRate, 1.0);
//! forecaster.record(Signal::Latency, 0.012);
//! // No step has closed yet, so there is nothing to forecast.
//! assert!(forecaster.forecast(Signal::RequestRate, Duration::from_secs(5)).is_none());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

mod accumulator;
mod buckets;
mod builder;
mod error;
pub mod evaluate;
mod forecaster;
mod guard;
mod history;
mod instances;
mod load;
pub mod model;
mod sampler;
mod series;
mod signal;
mod snapshot;
mod stats;
mod tasks;

pub use builder::ForecasterBuilder;
pub use error::{FallbackReason, ForecastError};
pub use forecaster::Forecaster;
pub use foresight_core::signal::{Forecast, HealthSignal, LoadSignal};
pub use guard::RequestGuard;
pub use load::SignalHandle;
pub use series::Status;
pub use signal::{Aggregation, Signal};

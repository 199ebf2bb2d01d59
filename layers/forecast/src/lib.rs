//! Load forecasting for the Foresight layers.
//!
//! A [`Forecaster`] keeps a bounded history of each load [`Signal`]: request
//! rate, latency, active sessions and errors recorded by the layers, and
//! host CPU, memory and network throughput sampled through `sysinfo`. In
//! the background it retrains one smartcore model per signal and publishes
//! forecasts as a lock-free snapshot, which the request path reads without
//! locking or allocating.
//!
//! # The models
//!
//! Two models per signal, chosen per signal and horizon on held-back data.
//!
//! The **short-term model** is a direct multi-horizon regression: for each
//! horizon `h` (in steps), ridge
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
//! value.
//!
//! The **seasonal model** ([`model::train_seasonal`]) sees daily and
//! weekly cycles: per horizon up to 8 hours, ridge through the origin on
//! `ln(1 + y)` predicts the change from the mean of the previous days and
//! the same time last week at the target time (a seasonal-naive anchor)
//! and from the daily profile's change over the horizon, corrected by the
//! last 6 differences. Each signal keeps for it a second bounded history
//! of 5-minute bucket means (22 days, 6,336 values), placed by sample
//! time. Retraining runs [`model::choose`] on it at most once per hour of
//! new buckets: the seasonal model answers the horizons where it beat the
//! short-term model on the newest 20% of that history, if the series has
//! a significant daily cycle. It needs 1,056 buckets (3.7 days; 4.5 days
//! of 30-minute steps, see [`model::choice_min_samples`]); before that,
//! and for a signal without a cycle, the short-term model answers and its
//! last forecast is held out to [`Forecaster::max_horizon`]
//! ([`Status::seasonal_fallback`] says why).
//!
//! The [`model`] module exposes the training itself, and [`evaluate`] the
//! offline protocols measured in the crate's README.
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
//! Replaying a trace with its own timestamps, at a 30-minute step: with
//! five days of a daily cycle the seasonal model answers hours ahead.
//!
//! ```
//! use std::time::Duration;
//!
//! use foresight_forecast::{Forecaster, Signal};
//!
//! # fn main() -> Result<(), foresight_forecast::ForecastError> {
//! let forecaster = Forecaster::builder()
//!     .with_step(Duration::from_secs(1800))
//!     .with_system_sampler(false)
//!     .build()?;
//! let start = 1_420_070_400.0; // 2015-01-01 00:00 UTC
//! for i in 0..5 * 48 {
//!     let t = start + 1800.0 * f64::from(i);
//!     let hour = (t / 3600.0) % 24.0;
//!     let rate = 300.0 + 200.0 * (std::f64::consts::TAU * hour / 24.0).sin();
//!     forecaster.push_at(Signal::RequestRate, t, rate);
//! }
//! forecaster.retrain_blocking();
//! assert!(forecaster.status(Signal::RequestRate).seasonal);
//! assert_eq!(forecaster.max_horizon(), Duration::from_secs(8 * 3600));
//! // The newest sample is at 23:30; at 05:30 the cycle is near its top.
//! let later = forecaster
//!     .forecast(Signal::RequestRate, Duration::from_secs(6 * 3600))
//!     .expect("answered to 8 hours");
//! assert!(later.mean > 450.0, "{later:?}");
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
pub use load::{RelativeSignal, SignalHandle};
pub use series::Status;
pub use signal::{Aggregation, Signal};

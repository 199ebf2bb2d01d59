//! Replays of recorded load against the real authentication server, one
//! refresh policy per run (feature `sim`): what the `prefetch_sim` bench and
//! the demo's token stage measure.
//!
//! A [`Trace`] (`timestamp,value`) becomes session activity under a
//! [`Scenario`] (global settings, the same for every trace): the first days
//! train the forecaster, fast-forwarded; one day is then replayed,
//! time-compressed, on a [`ManualClock`](crate::ManualClock) shared by the
//! authentication server (on 127.0.0.1), the gateway's
//! [`TokenPrefetchLayer`](crate::TokenPrefetchLayer) and the clients. Each
//! [`Mode`] is one row: reactive, jittered early refresh, predictive (the
//! forecaster, fed only what has happened) and the oracle (the trace read
//! ahead, an upper bound).
//!
//! ```no_run
//! use std::sync::Arc;
//! use foresight_token::sim::{Mode, Replay, Scenario, Trace, TraceReport, run, summary};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let trace = Arc::new(Trace::load("nyc_taxi.csv".as_ref())?);
//! let replay = Arc::new(Replay::new(trace, Scenario::default())?);
//! let mut outcomes = Vec::new();
//! for mode in Mode::ALL {
//!     outcomes.push(run(replay.clone(), mode, 7).await);
//! }
//! let report = TraceReport::new(&replay, outcomes);
//! println!("{}\n{}\n{}", report.table(), report.leads_line(), summary(&[report.clone()]));
//! # Ok(())
//! # }
//! ```

mod auth;
mod forecast;
mod plot;
mod replay;
mod report;
mod run;
mod trace;

pub use auth::{Auth, Http, http, login, refresher, start_auth};
pub use forecast::{Compressed, Feeder, Learned, Oracle, TraceForecast};
pub use plot::svg;
pub use replay::{Replay, SIM_T0, Scenario};
pub use report::{TraceReport, summary};
pub use run::{Mode, Outcome, run};
pub use trace::{Trace, TraceError};

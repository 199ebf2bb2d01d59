//! [`TokenHandle`]: the state a [`TokenPrefetchLayer`](crate::TokenPrefetchLayer)
//! shares with its services, its WebSocket endpoint and its prefetch driver.
//!
//! Each concern has its file: authenticating a request ([`auth`]),
//! reactive and on-demand refreshes ([`refresh`]), planning prefetches
//! ahead of a peak ([`planner`]), running them at a bounded rate
//! ([`driver`]), revocation ([`revocation`]) and the push channel of a
//! session ([`subscription`]).

mod auth;
mod driver;
mod planner;
mod refresh;
mod request_rate;
mod revocation;
mod schedule;
mod state;
mod subscription;

pub use auth::Authenticated;
#[cfg(feature = "server")]
pub(crate) use auth::bearer;
pub(crate) use state::HandleConfig;
pub use state::TokenHandle;
pub use subscription::Subscription;

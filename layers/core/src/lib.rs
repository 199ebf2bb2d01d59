//! Shared building blocks of the Foresight layers.
//!
//! - [`key`]: [`KeyExtractor`]s that read the client key (header, cookie, JWT
//!   `sub`, fingerprint) and the policy for requests without one.
//! - [`Topology`]: the instance set with weights and a [`HealthSlot`] per
//!   instance, read lock-free on the hot path, fed from a static list or a
//!   `tower::discover` stream.
//! - [`rank`]: weighted rendezvous (HRW) ranking, flat or over a skeleton for
//!   large instance counts.
//! - [`Route`]: the routing decision carried in request extensions.
//! - [`RouteBody`]: the one request body every routing layer passes on,
//!   and the [`body`] capture shared by replays and shadow copies.
//! - [`Pool`]: dispatch to one service per instance by `Route.target`.
//! - [`edge`]: typed errors of every layer turned into HTTP responses.
//! - [`signal`]: the traits through which forecasts reach the layers.
//!
//! # Example
//!
//! ```
//! use foresight_core::{ClientKey, InstanceSpec, Topology};
//!
//! let topology = Topology::from_instances([
//!     InstanceSpec::new("a"),
//!     InstanceSpec::new("b").with_weight(2.0),
//!     InstanceSpec::new("c"),
//! ])
//! .unwrap();
//! let key = ClientKey::from_static(b"account-42");
//! let ranked = topology.rank(&key, 0x5eed, 2);
//! assert_eq!(ranked.len(), 2);
//! assert_ne!(ranked[0], ranked[1]);
//! // The same key and seed always give the same ranking.
//! assert_eq!(ranked, topology.rank(&key, 0x5eed, 2));
//! ```

#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod attempt;
pub mod body;
pub mod edge;
pub mod error;
pub mod health;
pub mod instance;
pub mod key;
pub mod pool;
pub mod rank;
pub mod route;
pub mod signal;
pub mod topology;

pub use body::RouteBody;
pub use error::{BoxError, ErrorResponse, HttpError};
pub use health::{HealthSlot, HealthState, OwnedInFlight};
pub use instance::{InstanceId, InstanceSpec};
pub use key::{ClientKey, KeyError, KeyExtractor};
pub use pool::{Pool, PoolError};
pub use route::{INSTANCE_HEADER, ROLE_HEADER, Ranked, Role, Route, ServedBy};
pub use topology::{MembersCache, Topology, TopologyError};

//! Dispatch to one service per instance, by the target of the request's
//! [`Route`](crate::Route).
//!
//! # Readiness
//!
//! A router cannot know which instance a request goes to until it sees the
//! request, so `poll_ready` cannot ready the right backend. tower's `Steer`
//! waits for *every* backend to be ready, which lets one slow instance stall
//! the whole router (head-of-line blocking). [`Pool`] takes the other road:
//! its `poll_ready` is always ready, and each response future drives the
//! readiness of *its own* instance's service (a clone of it, readied before
//! it is called) for at most [`ready_timeout`](Pool::with_ready_timeout),
//! then fails with [`PoolError::NotReady`]. A saturated instance delays only
//! the requests routed to it, and never indefinitely. The price is that
//! back-pressure does not reach the router's caller: bound concurrency in
//! front of the pool (`ConcurrencyLimitLayer`, `LoadShedLayer`) to keep
//! queued work finite.
//!
//! The services are built from the [`Topology`](crate::Topology) by a
//! factory (a hyper-util client aimed at the instance's address, an
//! in-process service…) and rebuilt when the membership changes: an instance
//! that joins gets a service, one that leaves has its service dropped.
//!
//! ```
//! use std::convert::Infallible;
//! use foresight_core::{ClientKey, InstanceSpec, Pool, Route, ServedBy, Topology};
//! use tower::{service_fn, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let topology = Topology::from_instances([InstanceSpec::new("a"), InstanceSpec::new("b")]).unwrap();
//! let pool = Pool::new(topology.clone(), |instance| {
//!     let name = instance.id().to_string();
//!     service_fn(move |_req: http::Request<()>| {
//!         let name = name.clone();
//!         async move { Ok::<_, Infallible>(http::Response::new(name)) }
//!     })
//! });
//!
//! let key = ClientKey::from("user-1");
//! let route = Route::primary(key.clone(), topology.rank(&key, 0, 2)).unwrap();
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(route.clone());
//! let response = pool.oneshot(request).await.unwrap();
//! assert_eq!(response.body(), route.target.as_str());
//! assert_eq!(response.extensions().get::<ServedBy>(), Some(&ServedBy(route.target)));
//! # }
//! ```

mod error;
mod future;
mod service;

pub use error::PoolError;
pub use future::ResponseFuture;
pub use service::{DEFAULT_READY_TIMEOUT, Pool};

#[cfg(test)]
mod tests;

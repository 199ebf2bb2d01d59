//! Forwarding to an instance over HTTP/1.1: the per-instance service a
//! gateway's [`Pool`](foresight_core::Pool) is made of.
//!
//! [`Upstream`] holds the connector and the limits; [`Forward::new`] builds
//! from it the service of one instance, with a pool of connections of its
//! own: at most [`max_connections`](Upstream::with_max_connections) open
//! (in use or idle), each carrying one request at a time, kept alive between
//! requests and closed after [`idle_timeout`](Upstream::with_idle_timeout)
//! unused, or as soon as the peer closes it or an exchange on it fails.
//! The connector is hyper-util's [`HttpConnector`] by default; a TLS
//! connector (hyper-rustls' `HttpsConnector`, say) with
//! [`Upstream::with_scheme`]`(Scheme::HTTPS)` forwards over HTTPS.
//!
//! ```no_run
//! use foresight::core::{Pool, Topology, InstanceSpec};
//! use foresight::forward::{Forward, Upstream};
//! # fn main() {
//! let topology = Topology::from_instances([
//!     InstanceSpec::new("a").with_addr("10.0.0.1:8080".parse().unwrap()),
//! ]).unwrap();
//! let upstream = Upstream::http().with_max_connections(256);
//! let pool = Pool::new(topology, move |instance| {
//!     Forward::<http_body_util::Empty<bytes::Bytes>>::new(&upstream, instance)
//! });
//! # let _ = pool;
//! # }
//! ```
//!
//! # Why not hyper-util's client
//!
//! The connections are hyper's own (`hyper::client::conn::http1`), pooled
//! here rather than by hyper-util's legacy `Client`, whose one pool serves
//! every authority: per request, it looks the instance up by its URI's
//! authority in a shared map, races a checkout against a lazy connect,
//! boxes its futures, and spawns a task that waits for the connection to
//! be ready before it goes back to the pool. A pool per instance knows its
//! target, and a connection goes back from the response body the moment
//! it ends. Measured with `benches/peers/instructions.sh` (callgrind, the
//! gateway under `ab -k`), hyper-util's client cost the gateway about
//! 7,900 instructions per request more than this pool (73.4k against
//! 65.5k per request; see `benches/README.md`); hyper's connection task,
//! about 15k per request, is the same in both.

mod body;
mod error;
mod pool;
mod service;
mod upstream;

use foresight_core::BoxError;
use hyper::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub use body::ResponseBody;
pub use error::ForwardError;
pub use service::{Forward, ForwardFuture};
pub use upstream::{DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Upstream};

/// A hyper-util HTTP/1 client, for talking to instances or to a gateway
/// directly (tests, examples, a web client); [`Forward`] does not use it.
pub fn http_client<B>() -> Client<HttpConnector, B>
where
    B: Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    Client::builder(TokioExecutor::new()).build_http()
}

#[cfg(test)]
mod tests;

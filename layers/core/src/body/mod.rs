//! The one request body type of the routing tier, and the capture that lets
//! it be sent more than once.
//!
//! Every routing layer passes a [`RouteBody`] on, so the leaf service (a
//! [`Pool`](crate::Pool)) serves `http::Request<RouteBody>` whichever
//! layers are present and in whatever order. [`RouteBody::new`] converts
//! any body, and returns a `RouteBody` as it is, so a layer below another
//! never wraps the body twice.
//!
//! Shadow copies and failover replays both need the body twice. A layer
//! that does [captures](RouteBody::capture) it: the first attempt streams
//! the client's body as it arrives, and every data frame is also kept, up
//! to a cap ([`DEFAULT_CAPTURE_CAP`] by default), in one buffer per request
//! that every later layer reuses. A replay ([`Capture::replay`]) first
//! yields the kept frames, then goes on reading the client's body where
//! the previous attempt stopped; a shadow's copy
//! ([`RouteBody::copy_once_read`]) is handed over once the first attempt
//! has read the whole body. Above the cap the kept frames are freed: no
//! replay and no copy. Requests without a body (most `GET`s) allocate
//! nothing.
//!
//! Only one attempt reads at a time: starting a replay supersedes the
//! previous reader, whose next poll fails with [`Superseded`] (its
//! connection is being abandoned anyway).
//!
//! An error of the client's body reaches the instance's service marked as
//! the client's (a [`ClientBodyError`] in its source chain), so that an
//! aborted upload or bad chunking is answered to the client (400 / 408)
//! and never counted against the instance.
//!
//! ```
//! use bytes::Bytes;
//! use foresight_core::body::RouteBody;
//! use http_body_util::{BodyExt, Full};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut first = RouteBody::new(Full::new(Bytes::from("order #7")));
//! let capture = first.capture(64 * 1024);
//! assert_eq!(first.collect().await.unwrap().to_bytes(), "order #7");
//! // The same bytes again, for the next instance.
//! let replay = capture.replay().unwrap();
//! assert_eq!(replay.collect().await.unwrap().to_bytes(), "order #7");
//! # }
//! ```

mod capture;
mod copy;
mod error;
mod route_body;

pub use capture::Capture;
pub use copy::PendingCopy;
pub use error::{BodyFault, ClientBodyError, Superseded};
pub use route_body::RouteBody;

/// How many bytes of a body a capture keeps by default: 64 KiB.
pub const DEFAULT_CAPTURE_CAP: usize = 64 * 1024;

#[cfg(test)]
mod tests;

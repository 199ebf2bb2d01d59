//! The client side: [`DualTokenLayer`] holds the active and the pre-fetched
//! token of one session.
//!
//! Every request gets `Authorization: Bearer <active>`. New tokens arrive in
//! the `x-foresight-next-token` response header and, with
//! [`connect_websocket`], from the server's WebSocket endpoint; they wait as
//! the pre-fetched token. The client switches to it when the active token
//! is about to expire (5 s before `exp` by default), or when a request is
//! answered `401` with `error="invalid_token"` (a revoked or rotated-out
//! token): then the request is retried once, transparently, with the new
//! token (if none is held yet and the WebSocket connection is open, it
//! waits up to 2 s for one to be pushed). A second 401 is returned as is.
//!
//! ```
//! use foresight_token::client::{DualTokenLayer, TokenSlots};
//! use foresight_token::TokioClock;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Default: switch 5 s before expiry.
//! let slots = TokenSlots::new(TokioClock::shared());
//! slots.deliver("header.payload.signature");
//! let client = DualTokenLayer::new(slots.clone()).layer(service_fn(
//!     |req: http::Request<String>| async move {
//!         assert!(req.headers().contains_key("authorization"));
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//!     },
//! ));
//! client.oneshot(http::Request::new(String::new())).await.unwrap();
//!
//! // Customised: switch 30 s before expiry.
//! let eager = TokenSlots::new(TokioClock::shared()).with_skew(std::time::Duration::from_secs(30));
//! # let _ = eager;
//! # }
//! ```

mod future;
mod layer;
mod service;
mod slots;
mod ws;

pub use future::DualTokenFuture;
pub use layer::DualTokenLayer;
pub use service::DualToken;
pub use slots::TokenSlots;
pub use ws::{PushedMessage, WsClientError, apply_pushed_message, connect_websocket};

//! Foresight end to end, on loopback, with nothing to set up.
//!
//! 1. Sharding: three instances (real axum servers) behind a gateway (a real
//!    hyper server) whose stack is `edge → ShardLayer → Pool`, reaching the
//!    instances through a hyper-util client. A few hundred clients, each
//!    with its own cookie; the demo prints who serves whom, takes one
//!    instance out and shows that only its clients moved, each to its
//!    secondary.
//! 2. Sessions: the same gateway with `HealthFailoverLayer` and
//!    `ShadowWriteLayer`, instances with `SessionMirrorLayer` over one
//!    shared store; an instance is killed mid-run and no client sees an
//!    error or loses a write.
//!
//! Run with `cargo run --release --example demo`.

mod sessions;
mod sharding;
mod support;

#[tokio::main]
async fn main() {
    sharding::run().await;
    sessions::run().await;
}

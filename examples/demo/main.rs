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
//! 3. Tokens: sessions with short-lived tokens through a day of real,
//!    seasonal load (NYC taxi demand); the forecaster, trained on the
//!    preceding weeks and fed only what has happened, sees the morning rush
//!    coming hours ahead; reactive refresh, jittered early refresh and
//!    predictive prefetch (`TokenPrefetchLayer`) against the real
//!    authentication server, with an SVG of the day; one client switches
//!    to its pre-fetched token at expiry with no 401.
//!
//! Run with `cargo run --release --example demo`.

mod sessions;
mod sharding;
mod tokens;

#[tokio::main]
async fn main() {
    sharding::run().await;
    sessions::run().await;
    tokens::run().await;
}

//! A token endpoint: issue, refresh, revoke and JWKS, reporting its request
//! rate every 10 seconds.
//!
//! ```text
//! cargo run -p foresight-token --example auth_server
//! FORESIGHT_AUTH_ADDR=127.0.0.1:9000 FORESIGHT_AUTH_SECRET=s3cret \
//!     cargo run -p foresight-token --example auth_server
//! curl -s -XPOST localhost:8080/token/login -H 'content-type: application/json' -d '{"sub":"alice"}'
//! curl -s localhost:8080/.well-known/jwks.json
//! ```
//!
//! Signing keys are Ed25519 and rotate every `FORESIGHT_AUTH_ROTATE_SECS`
//! (default 3600): the next key is published in the JWKS a tenth of the
//! period before it signs, and old keys verify for 12 hours after.

use std::time::Duration;

use foresight_token::server::AuthServer;
use foresight_token::{KeyRing, LocalIssuer, SigningKey, TokioClock};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("FORESIGHT_AUTH_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let rotate = std::env::var("FORESIGHT_AUTH_ROTATE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(3600), Duration::from_secs)
        .max(Duration::from_secs(10));
    let clock = TokioClock::shared();
    let ring = KeyRing::new(SigningKey::generate_ed25519("k0")?, clock.clone());
    let issuer = LocalIssuer::new(
        ring.clone(),
        "https://auth.foresight.local",
        "foresight",
        clock.clone(),
    );
    let mut server = AuthServer::new(issuer, clock);
    if let Ok(secret) = std::env::var("FORESIGHT_AUTH_SECRET") {
        server = server.client_secret(secret);
    }
    let rates = server.rates();
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("auth server on http://{}", listener.local_addr()?);

    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        tick.tick().await;
        loop {
            tick.tick().await;
            eprintln!(
                "requests: total {} | last second {} | peak {}/s",
                rates.total(),
                rates.last_second(),
                rates.peak()
            );
        }
    });
    tokio::spawn(async move {
        let mut n = 1u64;
        loop {
            tokio::time::sleep(rotate - rotate / 10).await;
            if let Ok(key) = SigningKey::generate_ed25519(&format!("k{n}")) {
                ring.stage(key);
            }
            tokio::time::sleep(rotate / 10).await;
            ring.rotate_to_staged(Duration::from_secs(12 * 3600));
            eprintln!("signing with key k{n}");
            n += 1;
        }
    });
    axum::serve(listener, server.router::<()>()).await?;
    Ok(())
}

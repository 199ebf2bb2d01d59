//! A token endpoint: login against a user table of Argon2 password hashes,
//! refresh, revoke and JWKS, reporting its request rate every 10 seconds.
//!
//! ```text
//! FORESIGHT_AUTH_SECRET=a-long-random-gateway-secret \
//!     cargo run -p foresight-token --example auth_server
//! curl -s -XPOST localhost:8080/token/login -H 'content-type: application/json' \
//!     -d '{"sub":"alice","password":"correct horse battery staple"}'
//! curl -s localhost:8080/.well-known/jwks.json
//! ```
//!
//! Settings from the environment:
//! - `FORESIGHT_AUTH_ADDR` (default `127.0.0.1:8080`).
//! - `FORESIGHT_AUTH_SECRET`: the client secret of refresh and revoke.
//!   Without it a random one is generated and printed once at start.
//! - `FORESIGHT_AUTH_USERS`: `user:password,user:password` (default: two
//!   sample users, alice and bob). Passwords are hashed with Argon2id at
//!   start and never kept or logged in clear; a login is verified against
//!   the hash, and an unknown user against a dummy hash, so that both take
//!   the same time and get the same `401 invalid_credentials`.
//! - `FORESIGHT_AUTH_ROTATE_SECS` (default 3600): signing keys are Ed25519
//!   and rotate with this period: the next key is published in the JWKS a
//!   tenth of the period before it signs, and old keys verify for 12 hours
//!   after.
//!
//! The server is served with the client address, so logins are also
//! limited per address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore as _};
use argon2::password_hash::{PasswordHashString, SaltString};
use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _};
use foresight_token::server::{AuthServer, LoginAttempt, Rejection};
use foresight_token::{KeyRing, LocalIssuer, SigningKey, TokioClock};

/// The sample users when `FORESIGHT_AUTH_USERS` is not set.
const SAMPLE_USERS: &str = "alice:correct horse battery staple,bob:Tr0ub4dor&3";

/// Subjects and the Argon2id hashes of their passwords.
struct UserTable {
    hashes: HashMap<String, PasswordHashString>,
    /// Verified against when the subject is unknown: the same work, so the
    /// answer time does not tell which users exist.
    dummy: PasswordHashString,
}

fn hash(password: &str) -> Result<PasswordHashString, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .serialize())
}

impl UserTable {
    fn from_list(list: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let mut hashes = HashMap::new();
        for entry in list.split(',').filter(|e| !e.is_empty()) {
            let (user, password) = entry
                .split_once(':')
                .ok_or("FORESIGHT_AUTH_USERS entries are user:password")?;
            hashes.insert(user.to_owned(), hash(password)?);
        }
        let mut random = [0u8; 32];
        OsRng.fill_bytes(&mut random);
        let dummy = hash(&format!("{random:?}"))?;
        Ok(Self { hashes, dummy })
    }

    fn authenticate(&self, attempt: &LoginAttempt) -> Result<String, Rejection> {
        let known = self.hashes.get(attempt.sub());
        let hash: PasswordHash<'_> = known.unwrap_or(&self.dummy).password_hash();
        let password = attempt.password().map_or("", |p| p.expose());
        let verified = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        match (known, verified) {
            (Some(_), true) => Ok(attempt.sub().to_owned()),
            _ => Err(Rejection::InvalidCredentials),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("FORESIGHT_AUTH_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let rotate = std::env::var("FORESIGHT_AUTH_ROTATE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(3600), Duration::from_secs)
        .max(Duration::from_secs(10));
    let secret = std::env::var("FORESIGHT_AUTH_SECRET").unwrap_or_else(|_| {
        let mut bytes = [0u8; 24];
        OsRng.fill_bytes(&mut bytes);
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        eprintln!("FORESIGHT_AUTH_SECRET not set; generated client secret: {secret}");
        secret
    });
    let users_list = std::env::var("FORESIGHT_AUTH_USERS").unwrap_or_else(|_| SAMPLE_USERS.into());
    let users = UserTable::from_list(&users_list)?;
    eprintln!("{} users loaded", users.hashes.len());

    let clock = TokioClock::shared();
    let ring = KeyRing::new(SigningKey::generate_ed25519("k0")?, clock.clone());
    let issuer = LocalIssuer::new(
        ring.clone(),
        "https://auth.foresight.local",
        "foresight",
        clock.clone(),
    );
    let server = AuthServer::builder(issuer, clock, move |attempt: &LoginAttempt| {
        users.authenticate(attempt)
    })
    .with_client_secret(secret)
    .build()?;
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
    axum::serve(
        listener,
        server
            .router::<()>()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

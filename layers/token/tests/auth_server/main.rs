//! The authentication server on a loopback port: credentials, client
//! secret, sessions, rate limits, bad input, stats and caching, each
//! refusal asserted by its status, error code and description.

#[path = "../support/mod.rs"]
mod support;

mod credentials;
mod input;
mod limits;
mod stats_and_caching;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use argon2::password_hash::{PasswordHashString, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use foresight_token::server::{
    AuthServer, AuthServerBuilder, BuildError, LoginAttempt, Password, RateLimit, Rejection,
};
use foresight_token::{
    IssuedToken, KeyRing, LocalIssuer, ManualClock, NEXT_TOKEN_HEADER, SigningKey,
    TokenPrefetchLayer, Verifier,
};
use http::Method;
use serde_json::{Value, json};
use support::net::{Answer, call, serve, serve_with_client_addr};
use support::{AUD, ISS, T0};

const SECRET: &str = "gateway-secret-for-tests";
const ALICE: &str = "correct horse battery staple";

/// Argon2id with small costs, so that debug-build tests stay quick.
fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(1024, 1, 1, None).unwrap(),
    )
}

/// A user table of Argon2 hashes: alice and bob; unknown users are checked
/// against a dummy hash.
fn users() -> impl Fn(&LoginAttempt) -> Result<String, Rejection> + Clone + Send + Sync + 'static {
    let hash = |password: &str| -> PasswordHashString {
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .serialize()
    };
    let table = Arc::new([("alice", hash(ALICE)), ("bob", hash("Tr0ub4dor&3"))]);
    let dummy = Arc::new(hash("no user has this password"));
    move |attempt: &LoginAttempt| {
        let known = table.iter().find(|(user, _)| *user == attempt.sub());
        let stored = known.map_or(&*dummy, |(_, hash)| hash);
        let password = attempt.password().map_or("", Password::expose);
        let verified = argon2()
            .verify_password(password.as_bytes(), &stored.password_hash())
            .is_ok();
        match (known, verified) {
            (Some((user, _)), true) => Ok((*user).to_owned()),
            _ => Err(Rejection::InvalidCredentials),
        }
    }
}

struct Auth {
    addr: SocketAddr,
    server: AuthServer,
    clock: ManualClock,
    verifier: Verifier,
}

fn builder(clock: &ManualClock) -> (AuthServerBuilder, KeyRing) {
    let shared = support::net::shared(clock);
    let ring = KeyRing::new(SigningKey::generate_ed25519("k1").unwrap(), shared.clone());
    let issuer = LocalIssuer::new(ring.clone(), ISS, AUD, shared.clone());
    let builder = AuthServer::builder(issuer, shared, users()).with_client_secret(SECRET);
    (builder, ring)
}

async fn start_with(
    configure: impl FnOnce(AuthServerBuilder) -> AuthServerBuilder,
    client_addr: bool,
) -> Auth {
    let clock = ManualClock::new(Duration::from_secs(T0));
    let (builder, ring) = builder(&clock);
    let server = configure(builder).build().unwrap();
    let router = server.router();
    let addr = if client_addr {
        serve_with_client_addr(router).await
    } else {
        serve(router).await
    };
    let verifier = Verifier::builder(ring, ISS, AUD)
        .with_clock(support::net::shared(&clock))
        .build();
    Auth {
        addr,
        server,
        clock,
        verifier,
    }
}

async fn start(configure: impl FnOnce(AuthServerBuilder) -> AuthServerBuilder) -> Auth {
    start_with(configure, false).await
}

const JSON: Option<&str> = Some("application/json");
const LOGIN: &str = "/token/login";
const REFRESH: &str = "/token/refresh";
const REVOKE: &str = "/token/revoke";

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

impl Auth {
    async fn login(&self, sub: &str, password: Option<&str>) -> Answer {
        let body = match password {
            Some(password) => json!({"sub": sub, "password": password}),
            None => json!({"sub": sub}),
        };
        call(
            self.addr,
            Method::POST,
            "/token/login",
            JSON,
            None,
            body.to_string(),
        )
        .await
    }

    async fn refresh(&self, sub: &str, sid: &str, lifetime_secs: u64) -> Answer {
        let body = json!({"sub": sub, "sid": sid, "lifetime_secs": lifetime_secs});
        let auth = bearer(SECRET);
        call(
            self.addr,
            Method::POST,
            "/token/refresh",
            JSON,
            Some(&auth),
            body.to_string(),
        )
        .await
    }

    async fn logged_in(&self, sub: &str, password: &str) -> IssuedToken {
        let answer = self.login(sub, Some(password)).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer.assert_no_store();
        serde_json::from_slice(&answer.body).unwrap()
    }
}

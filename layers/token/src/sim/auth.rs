//! The authentication server of a simulation, on a loopback port, and the
//! calls the clients make to it. Its construction lives here alone (the
//! demo starts its server with [`start_auth`] too) so that a change to the
//! server's API touches one place.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};

use crate::clock::SharedClock;
use crate::issuer::{IssuedToken, LocalIssuer, RemoteIssuer};
use crate::jwks::fetch_jwks;
use crate::keys::{KeyRing, SigningKey, StaticKeys};
use crate::server::{AuthServer, RateRecorder};
use crate::verify::Verifier;

const ISS: &str = "https://auth.sim";
const AUD: &str = "sim";
const SECRET: &str = "gateway-secret";

/// A running authentication server and a verifier holding its keys, from
/// [`start_auth`] (an example is there).
#[derive(Debug)]
pub struct Auth {
    pub(crate) rates: RateRecorder,
    pub(crate) base: String,
    pub(crate) verifier: Verifier,
}

impl Auth {
    /// The server's base URI, `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A verifier of the server's tokens, holding the keys of its JWKS
    /// document, with a 2 s leeway.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The server's request rate.
    pub fn rates(&self) -> &RateRecorder {
        &self.rates
    }
}

/// Starts the server (Ed25519, client secret, room for `sessions`
/// sessions, logins valid for `lifetime`) on 127.0.0.1, spawned on the
/// current runtime, and fetches its JWKS.
///
/// # Panics
///
/// If no loopback port can be bound or the JWKS cannot be fetched.
///
/// ```no_run
/// use std::time::Duration;
/// use foresight_token::sim::{refresher, start_auth};
/// use foresight_token::{SharedClock, TokenPrefetchLayer, TokioClock};
///
/// # async fn demo() {
/// let clock: SharedClock = TokioClock::shared();
/// let auth = start_auth(clock, 10, Duration::from_secs(60)).await;
/// let layer = TokenPrefetchLayer::builder(auth.verifier().clone(), refresher(auth.base())).build();
/// # let _ = layer;
/// # }
/// ```
pub async fn start_auth(clock: SharedClock, sessions: usize, lifetime: Duration) -> Auth {
    let ring = KeyRing::new(
        SigningKey::generate_ed25519("k1").expect("key"),
        clock.clone(),
    );
    let issuer = LocalIssuer::new(ring, ISS, AUD, clock.clone());
    // Simulated users log in without passwords: every subject is accepted.
    // Their sessions may sit idle through a quiet night.
    let accept_any = |attempt: &crate::server::LoginAttempt| {
        Ok::<_, crate::server::Rejection>(attempt.sub().to_owned())
    };
    let server = AuthServer::builder(issuer, clock.clone(), accept_any)
        .with_client_secret(SECRET)
        .with_login_lifetime(lifetime)
        .with_max_sessions(sessions + 10)
        .with_session_idle_lifetime(Duration::from_secs(12 * 3600))
        .build()
        .expect("auth server settings");
    let rates = server.rates();
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let router = server.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let base = format!("http://{addr}");
    let jwks = fetch_jwks(
        format!("{base}/.well-known/jwks.json")
            .parse()
            .expect("uri"),
    )
    .await
    .expect("jwks");
    // A short leeway: with one-minute tokens the default 30 s would hide
    // late refreshes.
    let verifier = Verifier::builder(StaticKeys::from_jwks(&jwks), ISS, AUD)
        .with_clock(clock)
        .with_leeway(Duration::from_secs(2))
        .build();
    Auth {
        rates,
        base,
        verifier,
    }
}

/// The refresh client of the gateway, or of the clients themselves: a
/// [`RemoteIssuer`] of the server at `base` with its client secret.
///
/// # Panics
///
/// If `base` is not a loopback HTTP URI. An example is on [`start_auth`].
pub fn refresher(base: &str) -> RemoteIssuer {
    RemoteIssuer::builder(base)
        .with_client_secret(SECRET)
        .with_pool_max_idle(64)
        // A busy shared machine should slow the run down, not fail a
        // refresh.
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("issuer")
}

/// The HTTP client of the logins.
pub type Http = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

/// A new HTTP client for [`login`].
pub fn http() -> Http {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// A login on the auth server at `base`: a new session and its first
/// token. Panics when the server refuses it (a simulation's setup).
pub async fn login(http: &Http, base: &str, sub: &str) -> IssuedToken {
    let request = http::Request::post(format!("{base}/token/login"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            serde_json::json!({ "sub": sub }).to_string(),
        )))
        .expect("request");
    let response = http.request(request).await.expect("auth server reachable");
    assert!(
        response.status().is_success(),
        "login: {}",
        response.status()
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&body).expect("a token")
}

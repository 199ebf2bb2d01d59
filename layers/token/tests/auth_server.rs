//! The authentication server on a loopback port: credentials, client
//! secret, sessions, rate limits, bad input, stats and caching, each
//! refusal asserted by its status, error code and description.

mod support;

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
        .clock(support::net::shared(&clock))
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

#[tokio::test]
async fn login_checks_argon2_hashes_and_does_not_tell_which_users_exist() {
    let auth = start(|b| b).await;
    let token = auth.logged_in("alice", ALICE).await;
    let claims = auth.verifier.verify(&token.token).unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.sid.as_str()),
        ("alice", token.sid.as_str())
    );
    assert_eq!(auth.server.session_count(), 1);

    let mut bodies = Vec::new();
    for (sub, password) in [
        ("alice", Some("wrong")),
        ("alice", None),
        ("alice", Some("")),
        ("mallory", Some(ALICE)),
        ("mallory", None),
    ] {
        let answer = auth.login(sub, password).await;
        answer.assert_error(401, "invalid_credentials", "invalid credentials");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        bodies.push(answer.body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "one answer for all"
    );
    assert_eq!(
        auth.server.session_count(),
        1,
        "no session for a refused login"
    );
}

#[test]
fn a_password_never_shows_in_debug_output() {
    let attempt = LoginAttempt::new("alice", Some(Password::new("hunter2")));
    assert!(!format!("{attempt:?}").contains("hunter2"));
}

#[test]
fn a_server_without_a_client_secret_cannot_be_built() {
    let clock = ManualClock::new(Duration::from_secs(T0));
    let shared = support::net::shared(&clock);
    let ring = KeyRing::new(SigningKey::generate_ed25519("k1").unwrap(), shared.clone());
    let issuer = LocalIssuer::new(ring, ISS, AUD, shared.clone());
    let open = AuthServer::builder(issuer.clone(), shared.clone(), users()).build();
    assert_eq!(open.unwrap_err(), BuildError::MissingClientSecret);
    let empty = AuthServer::builder(issuer.clone(), shared.clone(), users())
        .with_client_secret("")
        .build();
    assert_eq!(empty.unwrap_err(), BuildError::EmptyClientSecret);
    let (builder, _) = self::builder(&clock);
    assert_eq!(
        builder.with_max_sessions(0).build().unwrap_err(),
        BuildError::Zero("max_sessions")
    );
}

#[tokio::test]
async fn refresh_and_revoke_require_the_client_secret() {
    let auth = start(|b| b).await;
    let token = auth.logged_in("alice", ALICE).await;
    let refresh = json!({"sub": "alice", "sid": token.sid, "lifetime_secs": 300}).to_string();
    let revoke = json!({"sid": token.sid}).to_string();
    let wrong_same_length = bearer(&"x".repeat(SECRET.len()));
    let prefix = bearer(&SECRET[..SECRET.len() - 1]);
    let longer = bearer(&format!("{SECRET}x"));
    let basic = format!("Basic {SECRET}");
    for path in ["/token/refresh", "/token/revoke"] {
        let body = if path == "/token/refresh" {
            &refresh
        } else {
            &revoke
        };
        for (authorization, description) in [
            (None, "client secret required"),
            (Some(basic.as_str()), "client secret required"),
            (
                Some(wrong_same_length.as_str()),
                "client secret does not match",
            ),
            (Some(prefix.as_str()), "client secret does not match"),
            (Some(longer.as_str()), "client secret does not match"),
        ] {
            let answer = call(
                auth.addr,
                Method::POST,
                path,
                JSON,
                authorization,
                body.clone(),
            )
            .await;
            answer.assert_error(401, "invalid_client", description);
        }
    }
    // The session is untouched by the refused revocations.
    let answer = auth.refresh("alice", &token.sid, 300).await;
    assert_eq!(answer.status, 200);
    answer.assert_no_store();
    let renewed: IssuedToken = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(renewed.sid, token.sid);

    let auth_header = bearer(SECRET);
    let answer = call(
        auth.addr,
        Method::POST,
        "/token/revoke",
        JSON,
        Some(&auth_header),
        revoke,
    )
    .await;
    assert_eq!(answer.status, 204);
    auth.refresh("alice", &token.sid, 300).await.assert_error(
        403,
        "invalid_grant",
        "unknown, ended or revoked session",
    );
}

#[tokio::test]
async fn malformed_forged_oversized_and_missing_input_get_their_typed_errors() {
    let auth = start(|b| b).await;
    let token = auth.logged_in("alice", ALICE).await;
    let secret = bearer(SECRET);
    let huge = format!(r#"{{"sub":"alice","password":"{}"}}"#, "x".repeat(9 * 1024));
    let long_sub = json!({"sub": "a".repeat(257), "password": ALICE}).to_string();
    let long_password = json!({"sub": "alice", "password": "x".repeat(1025)}).to_string();
    let not_json = "request body is not valid JSON";
    let no_field = "request body lacks a field or has one of the wrong type";
    let invalid = |description| (400, "invalid_request", description);
    let too_large = (413, "request_too_large", "request body is too large");
    let no_session = (403, "invalid_grant", "unknown, ended or revoked session");
    let check = async |path: &str, content_type, body: String, expected: (u16, &str, &str)| {
        let authorization = (path != LOGIN).then_some(secret.as_str());
        let answer = call(
            auth.addr,
            Method::POST,
            path,
            content_type,
            authorization,
            body,
        )
        .await;
        answer.assert_error(expected.0, expected.1, expected.2);
    };
    let refresh = |sub: &str, sid: &str, lifetime: Value| {
        json!({"sub": sub, "sid": sid, "lifetime_secs": lifetime}).to_string()
    };
    let sid = token.sid.as_str();

    check(LOGIN, JSON, "{".into(), invalid(not_json)).await;
    check(LOGIN, JSON, "".into(), invalid(not_json)).await;
    check(LOGIN, JSON, "{}".into(), invalid(no_field)).await;
    check(LOGIN, JSON, r#"{"sub":7}"#.into(), invalid(no_field)).await;
    let bad_sub = invalid("sub must be 1 to 256 bytes");
    check(LOGIN, JSON, r#"{"sub":""}"#.into(), bad_sub).await;
    check(LOGIN, JSON, long_sub, bad_sub).await;
    let bad_password = invalid("password must be at most 1024 bytes");
    check(LOGIN, JSON, long_password, bad_password).await;
    let not_declared = (
        415,
        "invalid_request",
        "request body must be application/json",
    );
    check(
        LOGIN,
        None,
        json!({"sub": "alice"}).to_string(),
        not_declared,
    )
    .await;
    check(LOGIN, JSON, huge.clone(), too_large).await;

    check(REFRESH, JSON, "[".into(), invalid(not_json)).await;
    check(
        REFRESH,
        JSON,
        json!({"sub": "alice"}).to_string(),
        invalid(no_field),
    )
    .await;
    check(
        REFRESH,
        JSON,
        refresh("alice", sid, json!(-1)),
        invalid(no_field),
    )
    .await;
    check(REFRESH, JSON, huge.clone(), too_large).await;
    // Forged: a session that does not exist, another user's session.
    check(
        REFRESH,
        JSON,
        refresh("alice", "forged", json!(60)),
        no_session,
    )
    .await;
    check(REFRESH, JSON, refresh("bob", sid, json!(60)), no_session).await;
    let no_token = invalid("token cannot be issued");
    check(REFRESH, JSON, refresh("alice", sid, json!(0)), no_token).await;

    check(REVOKE, JSON, "{}".into(), invalid("sid or jti required")).await;
    check(REVOKE, JSON, "nope".into(), invalid(not_json)).await;
    check(
        REVOKE,
        JSON,
        json!({"sid": 5}).to_string(),
        invalid(no_field),
    )
    .await;
    let bad_jti = invalid("jti must be 1 to 256 bytes");
    check(REVOKE, JSON, json!({"jti": ""}).to_string(), bad_jti).await;
    check(REVOKE, JSON, huge, too_large).await;
    // None of it touched the session.
    assert_eq!(auth.refresh("alice", &token.sid, 60).await.status, 200);
}

#[tokio::test]
async fn a_full_session_table_answers_503_until_a_session_ends() {
    let auth = start(|b| {
        b.with_max_sessions(2)
            .with_login_lifetime(Duration::from_secs(60))
            .with_session_idle_lifetime(Duration::from_secs(60))
    })
    .await;
    let first = auth.logged_in("alice", ALICE).await;
    auth.clock.advance(Duration::from_secs(30));
    auth.logged_in("bob", "Tr0ub4dor&3").await;
    let answer = auth.login("alice", Some(ALICE)).await;
    answer.assert_error(503, "sessions_full", "too many sessions, retry later");
    // The first session is idle 60 s after its token's expiry: 90 s on.
    assert_eq!(answer.header("retry-after"), Some("90"));
    assert_eq!(auth.server.session_count(), 2);

    auth.clock.advance(Duration::from_secs(90));
    auth.logged_in("alice", ALICE).await;
    assert_eq!(
        auth.server.session_count(),
        2,
        "the ended session was swept"
    );
    auth.refresh("alice", &first.sid, 60).await.assert_error(
        403,
        "invalid_grant",
        "unknown, ended or revoked session",
    );
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_absolute_lifetime() {
    let auth = start(|b| {
        b.with_login_lifetime(Duration::from_secs(60))
            .with_session_idle_lifetime(Duration::from_secs(120))
            .with_session_absolute_lifetime(Duration::from_secs(600))
    })
    .await;
    // Idle: no refresh for 120 s after the token's expiry.
    let idle = auth.logged_in("alice", ALICE).await;
    auth.clock.advance(Duration::from_secs(180));
    auth.refresh("alice", &idle.sid, 60).await.assert_error(
        403,
        "invalid_grant",
        "unknown, ended or revoked session",
    );

    // Absolute: refreshed often, it still ends 600 s after login, and no
    // token outlives it.
    let session = auth.logged_in("alice", ALICE).await;
    let end = T0 + 180 + 600;
    for _ in 0..5 {
        auth.clock.advance(Duration::from_secs(110));
        let answer = auth.refresh("alice", &session.sid, 300).await;
        assert_eq!(answer.status, 200);
        let token: IssuedToken = serde_json::from_slice(&answer.body).unwrap();
        assert!(token.exp <= end, "{} > {end}", token.exp);
    }
    auth.clock.advance(Duration::from_secs(50));
    auth.refresh("alice", &session.sid, 300).await.assert_error(
        403,
        "invalid_grant",
        "unknown, ended or revoked session",
    );
}

#[tokio::test]
async fn logins_are_rate_limited_per_subject_and_refreshes_per_subject() {
    let auth = start(|b| b.with_refresh_limit(RateLimit::new(2, 0.5))).await;
    // Default: 5 logins per subject, then one per 12 s.
    for _ in 0..5 {
        auth.login("alice", Some("guess")).await.assert_error(
            401,
            "invalid_credentials",
            "invalid credentials",
        );
    }
    let answer = auth.login("alice", Some(ALICE)).await;
    answer.assert_error(429, "rate_limited", "too many requests, retry later");
    assert_eq!(answer.header("retry-after"), Some("12"));
    // Another subject is not affected.
    let bob = auth.logged_in("bob", "Tr0ub4dor&3").await;
    auth.clock.advance(Duration::from_secs(12));
    auth.logged_in("alice", ALICE).await;

    for _ in 0..2 {
        assert_eq!(auth.refresh("bob", &bob.sid, 60).await.status, 200);
    }
    let answer = auth.refresh("bob", &bob.sid, 60).await;
    answer.assert_error(429, "rate_limited", "too many requests, retry later");
    assert_eq!(answer.header("retry-after"), Some("2"));
    auth.clock.advance(Duration::from_secs(2));
    assert_eq!(auth.refresh("bob", &bob.sid, 60).await.status, 200);
}

#[tokio::test]
async fn logins_are_rate_limited_per_client_address() {
    let auth = start_with(
        |b| b.with_login_limit_per_address(RateLimit::new(3, 0.1)),
        true,
    )
    .await;
    for sub in ["u1", "u2", "u3"] {
        auth.login(sub, Some("guess")).await.assert_error(
            401,
            "invalid_credentials",
            "invalid credentials",
        );
    }
    let answer = auth.login("alice", Some(ALICE)).await;
    answer.assert_error(429, "rate_limited", "too many requests, retry later");
    assert_eq!(answer.header("retry-after"), Some("10"));
    auth.clock.advance(Duration::from_secs(10));
    auth.logged_in("alice", ALICE).await;
}

#[tokio::test]
async fn logins_beyond_the_concurrency_bound_are_refused() {
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new((entered_tx, release_rx)));
    let clock = ManualClock::new(Duration::from_secs(T0));
    let shared = support::net::shared(&clock);
    let ring = KeyRing::new(SigningKey::generate_ed25519("k1").unwrap(), shared.clone());
    let issuer = LocalIssuer::new(ring, ISS, AUD, shared.clone());
    let slow = move |attempt: &LoginAttempt| {
        let gate = gate.lock().unwrap();
        // Nobody listens after the first login: ignore the send failure.
        let _ = gate.0.send(());
        gate.1.recv().unwrap();
        Ok(attempt.sub().to_owned())
    };
    let server = AuthServer::builder(issuer, shared, slow)
        .with_client_secret(SECRET)
        .with_max_concurrent_logins(1)
        .build()
        .unwrap();
    let addr = serve(server.router()).await;
    let body = json!({"sub": "alice"}).to_string();
    let first = tokio::spawn(call(
        addr,
        Method::POST,
        "/token/login",
        JSON,
        None,
        body.clone(),
    ));
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    // Refused at once; were it let through, it would wait in the
    // authenticator, so a guard turns that hang into a failure.
    let second = call(addr, Method::POST, "/token/login", JSON, None, body.clone());
    let answer = tokio::time::timeout(Duration::from_secs(60), second)
        .await
        .expect("the second login was let through to the authenticator");
    answer.assert_error(
        503,
        "temporarily_unavailable",
        "too many logins in progress, retry later",
    );
    assert_eq!(answer.header("retry-after"), Some("1"));
    release_tx.send(()).unwrap();
    assert_eq!(first.await.unwrap().status, 200);
    // The permit is back.
    release_tx.send(()).unwrap();
    let again = call(addr, Method::POST, "/token/login", JSON, None, body).await;
    assert_eq!(again.status, 200);
}

#[tokio::test]
async fn stats_count_requests_per_second() {
    let auth = start(|b| b).await;
    for _ in 0..3 {
        let answer = call(
            auth.addr,
            Method::GET,
            "/.well-known/jwks.json",
            None,
            None,
            "",
        )
        .await;
        assert_eq!(answer.status, 200);
    }
    auth.clock.advance(Duration::from_secs(1));
    auth.login("nobody", None).await;
    let stats = call(auth.addr, Method::GET, "/stats", None, None, "").await;
    assert_eq!(
        stats.json(),
        json!({"total": 4, "last_second": 3, "peak_per_second": 3})
    );
    assert_eq!(auth.server.rates().series(), vec![(T0, 3), (T0 + 1, 1)]);
}

#[tokio::test]
async fn gateway_responses_that_carry_a_token_are_not_cached() {
    let fx = support::fixture(SigningKey::generate_ed25519("k1").unwrap());
    let layer = TokenPrefetchLayer::builder(fx.verifier.clone(), fx.issuer.clone()).build();
    let app = support::app(&layer);
    let token = foresight_token::TokenIssuer::issue(
        &fx.issuer,
        foresight_token::TokenRequest::new("alice", "s1", Duration::from_secs(300)),
    )
    .await
    .unwrap();
    let plain = support::send(&app, Some(&token.token), None).await;
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get(NEXT_TOKEN_HEADER).is_none());
    assert!(plain.headers().get("cache-control").is_none());

    assert!(layer.handle().refresh_now("alice", "s1").await.is_some());
    let carrying = support::send(&app, Some(&token.token), None).await;
    assert_eq!(carrying.status(), 200);
    assert!(carrying.headers().get(NEXT_TOKEN_HEADER).is_some());
    assert_eq!(carrying.headers()["cache-control"], "no-store");
    assert_eq!(carrying.headers()["pragma"], "no-cache");
}

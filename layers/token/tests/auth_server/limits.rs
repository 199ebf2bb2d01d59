//! Session capacity and lifetimes, rate limits, the login concurrency bound.

use super::*;

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

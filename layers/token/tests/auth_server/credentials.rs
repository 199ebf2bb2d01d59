//! Login credentials, the client secret and the settings a server refuses.

use super::*;

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

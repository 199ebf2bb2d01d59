//! Successor rotation with reuse detection (RFC 9700 §4.14.2), through the
//! layer with real Ed25519 signatures: a thief replaying a superseded token
//! after the legitimate client moved to its successor kills the whole
//! session; a thief who keeps up with every successor still ends with the
//! session's absolute lifetime at the authentication server.

mod support;

use std::time::Duration;

use foresight_token::server::AuthServer;
use foresight_token::{Clock as _, Revocations as _};
use foresight_token::{
    LocalIssuer, NEXT_TOKEN_HEADER, RemoteIssuer, SigningKey, TokenIssuer, TokenPrefetchLayer,
    TokenRequest, Verifier,
};
use http::Response;
use support::{AUD, ISS, T0};

const LIFETIME: Duration = Duration::from_secs(300);

fn challenge<B>(response: &Response<B>) -> &str {
    response.headers()["www-authenticate"].to_str().unwrap()
}

fn assert_refused<B>(response: &Response<B>, description: &str) {
    assert_eq!(response.status(), 401);
    assert_eq!(
        challenge(response),
        format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
    );
}

fn next_token<B>(response: &Response<B>) -> Option<String> {
    response
        .headers()
        .get(NEXT_TOKEN_HEADER)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_stolen_token_stops_working_once_the_client_has_used_its_successor() {
    let fx = support::fixture(SigningKey::generate_ed25519("k1").unwrap());
    let layer = TokenPrefetchLayer::builder(fx.verifier.clone(), fx.issuer.clone())
        .with_token_lifetime(LIFETIME)
        .with_refresh_margin(Duration::from_secs(60))
        .build();
    let app = support::app(&layer);
    let first = fx
        .issuer
        .issue(TokenRequest::new("alice", "s1", LIFETIME))
        .await
        .unwrap();
    let stolen = first.token.to_string();

    // Both use the token while it is the only one.
    assert_eq!(
        support::send(&app, Some(&first.token), None).await.status(),
        200
    );
    assert_eq!(support::send(&app, Some(&stolen), None).await.status(), 200);

    // Near its expiry the legitimate client's request starts a refresh.
    fx.clock.advance(Duration::from_secs(250));
    assert_eq!(
        support::send(&app, Some(&first.token), None).await.status(),
        200
    );
    assert!(layer.handle().wait_idle(Duration::from_secs(5)).await);
    let delivered = support::send(&app, Some(&first.token), None).await;
    let successor = next_token(&delivered).expect("the successor is delivered");

    // Grace: until the successor is used, the old token stays valid (the
    // client may not have it yet), for whoever holds it.
    assert_eq!(support::send(&app, Some(&stolen), None).await.status(), 200);

    // The client switches; the thief replays the old token afterwards
    // (beyond the couple of seconds left to requests already on the way).
    assert_eq!(
        support::send(&app, Some(&successor), None).await.status(),
        200
    );
    fx.clock.advance(Duration::from_secs(3));
    let replay = support::send(&app, Some(&stolen), None).await;
    assert_refused(&replay, "session revoked: token reuse");
    // Well within the stolen token's lifetime.
    assert!(fx.clock.unix().as_secs() < first.exp);

    // The whole session is revoked: either token, any later request.
    for token in [&successor, &stolen, &successor] {
        assert_refused(
            &support::send(&app, Some(token), None).await,
            "session revoked: token reuse",
        );
    }
    assert!(
        fx.revocations.is_session_revoked("s1"),
        "recorded in the revocation list, not only in the session table"
    );
    // Another session is untouched.
    let other = fx
        .issuer
        .issue(TokenRequest::new("bob", "s2", LIFETIME))
        .await
        .unwrap();
    assert_eq!(
        support::send(&app, Some(&other.token), None).await.status(),
        200
    );
}

#[tokio::test]
async fn a_superseded_token_inside_the_in_flight_grace_is_accepted() {
    let fx = support::fixture(SigningKey::generate_ed25519("k1").unwrap());
    let layer = TokenPrefetchLayer::builder(fx.verifier.clone(), fx.issuer.clone())
        .with_token_lifetime(LIFETIME)
        .build();
    let app = support::app(&layer);
    let first = fx
        .issuer
        .issue(TokenRequest::new("alice", "s1", LIFETIME))
        .await
        .unwrap();
    assert_eq!(
        support::send(&app, Some(&first.token), None).await.status(),
        200
    );
    let successor = layer.handle().refresh_now("alice", "s1").await.unwrap();
    assert_eq!(
        support::send(&app, Some(&successor.token), None)
            .await
            .status(),
        200
    );
    // Sent before the switch, arriving just after it.
    fx.clock.advance(Duration::from_secs(1));
    assert_eq!(
        support::send(&app, Some(&first.token), None).await.status(),
        200
    );
    fx.clock.advance(Duration::from_secs(1));
    assert_refused(
        &support::send(&app, Some(&first.token), None).await,
        "session revoked: token reuse",
    );
}

/// The gateway's layer refreshing at the real authentication server, whose
/// sessions end 900 s after login.
#[tokio::test]
async fn a_thief_keeping_up_with_every_successor_ends_with_the_session() {
    const ABSOLUTE: u64 = 900;
    let fx = support::fixture(SigningKey::generate_ed25519("k1").unwrap());
    let server_issuer = LocalIssuer::new(fx.ring.clone(), ISS, AUD, fx.shared_clock.clone());
    let auth = AuthServer::builder(
        server_issuer,
        fx.shared_clock.clone(),
        support::net::authenticator(),
    )
    .with_client_secret("gateway-secret")
    .with_login_lifetime(LIFETIME)
    .with_session_absolute_lifetime(Duration::from_secs(ABSOLUTE))
    .build()
    .unwrap();
    let auth_addr = support::net::serve(auth.router()).await;
    let remote = RemoteIssuer::builder(format!("http://{auth_addr}"))
        .with_client_secret("gateway-secret")
        .with_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let verifier = Verifier::builder(fx.ring.clone(), ISS, AUD)
        .with_clock(fx.shared_clock.clone())
        .build();
    let layer = TokenPrefetchLayer::builder(verifier, remote)
        .with_token_lifetime(LIFETIME)
        .with_refresh_margin(Duration::from_secs(60))
        .build();
    let app = support::app(&layer);
    let login = support::net::login(auth_addr, "alice").await;
    let end = T0 + ABSOLUTE;

    // Client and thief share every token: a request every 20 s, switching
    // to each successor as soon as it is delivered.
    let mut token = login.token.to_string();
    let mut last_ok = T0;
    let mut rotations = 0;
    loop {
        let response = support::send(&app, Some(&token), None).await;
        let now = fx.clock.unix().as_secs();
        if response.status() != 200 {
            assert_refused(&response, "token expired");
            break;
        }
        last_ok = now;
        assert!(layer.handle().wait_idle(Duration::from_secs(5)).await);
        if let Some(next) = next_token(&response) {
            let claims = fx.verifier.verify(&next).unwrap();
            assert!(
                claims.exp <= end,
                "a token outlives the session: {}",
                claims.exp
            );
            token = next;
            rotations += 1;
        }
        assert!(now < end + 3_600, "never refused");
        fx.clock.advance(Duration::from_secs(20));
    }
    assert!(
        rotations >= 2,
        "the session was refreshed ({rotations} times)"
    );
    // Refused at the absolute end, plus the verifier's leeway (30 s) and
    // one step: never later.
    assert!(last_ok < end + 30, "last accepted at {}", last_ok - T0);
    assert!(
        last_ok + 20 >= end,
        "accepted until the end ({})",
        last_ok - T0
    );
}

/// A session revocation outlives every token of the session, however long
/// the verifier lets tokens live (24 h here, above the 12 h default).
#[tokio::test]
async fn a_revocation_is_kept_for_the_verifiers_max_lifetime() {
    const DAY: Duration = Duration::from_secs(24 * 3600);
    let fx = support::fixture(SigningKey::generate_ed25519("k1").unwrap());
    let issuer =
        LocalIssuer::new(fx.ring.clone(), ISS, AUD, fx.shared_clock.clone()).with_max_lifetime(DAY);
    let revocations = std::sync::Arc::new(foresight_token::MemoryRevocations::new(
        16,
        fx.shared_clock.clone(),
    ));
    let verifier = Verifier::builder(fx.ring.clone(), ISS, AUD)
        .with_clock(fx.shared_clock.clone())
        .with_max_lifetime(DAY)
        .with_revocations(revocations)
        .build();
    let layer = TokenPrefetchLayer::builder(verifier, issuer.clone()).build();
    let app = support::app(&layer);
    let token = issuer
        .issue(TokenRequest::new("alice", "s1", DAY))
        .await
        .unwrap();
    layer.handle().revoke_session("s1").await.unwrap();
    fx.clock.advance(Duration::from_secs(20 * 3600));
    assert_refused(
        &support::send(&app, Some(&token.token), None).await,
        "session is revoked",
    );
}

//! `/stats`, and no-store on every response that carries a token.

use super::*;

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

//! Readiness and request flow with tower-test's mock.

mod support;

use std::time::Duration;

use foresight_token::{
    Authenticated, NEXT_TOKEN_HEADER, SigningKey, TokenIssuer, TokenPrefetchLayer, TokenRequest,
};
use tower_test::mock::{self, Handle};

#[tokio::test]
async fn readiness_is_the_inner_services_and_bad_tokens_never_reach_it() {
    let fx = support::fixture(SigningKey::hs256("k1", &[5u8; 32]).unwrap());
    let layer = TokenPrefetchLayer::builder(fx.verifier.clone(), fx.issuer.clone()).build();
    let (mut service, mut handle): (_, Handle<http::Request<()>, http::Response<()>>) =
        mock::spawn_layer(layer);

    handle.allow(0);
    assert!(
        service.poll_ready().is_pending(),
        "backpressure passes through"
    );
    handle.allow(2);
    assert!(service.poll_ready().is_ready());

    // A request without a token fails without reaching the inner service.
    let rejected = service.call(http::Request::new(()));
    let error = rejected.await.unwrap_err();
    assert!(error.is::<foresight_token::TokenError>());

    // A good one reaches it, with the claims in its extensions.
    let token = fx
        .issuer
        .issue(TokenRequest::new("alice", "s1", Duration::from_secs(300)))
        .await
        .unwrap();
    assert!(service.poll_ready().is_ready());
    let request = http::Request::builder()
        .header("authorization", format!("Bearer {}", token.token))
        .body(())
        .unwrap();
    let response = service.call(request);
    let (request, send) = handle.next_request().await.unwrap();
    let claims = request.extensions().get::<Authenticated>().unwrap();
    assert_eq!(claims.0.sub, "alice");
    send.send_response(http::Response::new(()));
    let response = response.await.unwrap();
    assert!(response.headers().get(NEXT_TOKEN_HEADER).is_none());
}

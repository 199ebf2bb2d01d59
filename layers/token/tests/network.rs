//! The remote issuer, the WebSocket endpoint and the dual-token client
//! against the real authentication server and a gateway, on loopback.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use foresight_token::client::{DualTokenLayer, TokenSlots, connect_websocket};
use foresight_token::{
    IssueError, ManualClock, RemoteIssuer, TokenIssuer, TokenRequest, TokioClock,
};
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::Full;
use support::net::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tower::{Layer, ServiceExt};

const LIFETIME: Duration = Duration::from_secs(300);

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("gave up waiting for {what}");
}

#[tokio::test]
async fn remote_issuer_refreshes_and_deduplicates() {
    let stack = stack(TokioClock::shared(), None, axum::Router::new(), LIFETIME).await;
    let first = login(stack.auth_addr, "alice").await;
    let issuer = RemoteIssuer::builder(format!("http://{}", stack.auth_addr))
        .with_client_secret("gateway-secret")
        .build()
        .unwrap();
    let before = stack.auth.rates().total();
    let request = TokenRequest::new("alice", first.sid.clone(), LIFETIME);
    let results =
        futures_util::future::join_all((0..20).map(|_| issuer.issue(request.clone()))).await;
    let jtis: std::collections::HashSet<_> = results.into_iter().map(|r| r.unwrap().jti).collect();
    assert_eq!(jtis.len(), 1, "one refresh shared by all callers");
    assert_eq!(stack.auth.rates().total() - before, 1);
    assert_eq!(issuer.in_flight(), 0);

    let unknown = issuer
        .issue(TokenRequest::new("alice", "no-such-session", LIFETIME))
        .await;
    assert!(matches!(unknown, Err(IssueError::Refused { status }) if status == 403));
    let wrong_secret = RemoteIssuer::builder(format!("http://{}", stack.auth_addr))
        .with_client_secret("nope")
        .build()
        .unwrap()
        .issue(request)
        .await;
    assert!(matches!(wrong_secret, Err(IssueError::Refused { status }) if status == 401));
}

#[tokio::test]
async fn remote_issuer_retries_with_backoff_then_gives_up() {
    // A server that accepts connections and closes them at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    let issuer = RemoteIssuer::builder(format!("http://{addr}"))
        .with_retries(2)
        .with_backoff(Duration::from_millis(5))
        .build()
        .unwrap();
    let result = issuer.issue(TokenRequest::new("a", "s", LIFETIME)).await;
    assert!(
        matches!(result, Err(IssueError::Unavailable { .. })),
        "{result:?}"
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        3,
        "one attempt and two retries"
    );
    server.abort();

    // A server that never answers: each attempt times out.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            if held.len() < 16 {
                held.push(socket);
            }
        }
    });
    let issuer = RemoteIssuer::builder(format!("http://{addr}"))
        .with_timeout(Duration::from_millis(100))
        .with_retries(1)
        .with_backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    let result = issuer.issue(TokenRequest::new("a", "s", LIFETIME)).await;
    assert!(
        matches!(result, Err(IssueError::Unavailable { .. })),
        "{result:?}"
    );
    server.abort();
}

#[tokio::test]
async fn websocket_delivers_tokens_and_closes_on_revocation() {
    let stack = stack(TokioClock::shared(), None, axum::Router::new(), LIFETIME).await;
    let token = login(stack.auth_addr, "alice").await;
    let mut request = format!("ws://{}/foresight/ws", stack.gateway_addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token.token).parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    wait_for("the connection to be tracked", || {
        stack.handle.tracked_sessions() == 1
    })
    .await;
    let next = stack.handle.refresh_now("alice", &token.sid).await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await.unwrap().unwrap() {
                Message::Text(text) => return text,
                Message::Ping(p) => socket.send(Message::Pong(p)).await.unwrap(),
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&message).unwrap();
    assert_eq!(json["type"], "token");
    assert_eq!(json["token"].as_str().unwrap(), &*next.token);
    assert_eq!(json["jti"].as_str().unwrap(), next.jti);

    stack.handle.revoke_session(&token.sid).await.unwrap();
    let mut saw_revoked = false;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Text(text)) => saw_revoked |= text.contains("revoked"),
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .unwrap();
    assert!(saw_revoked);
    assert_eq!(closed, Some(foresight_token::ws::CLOSE_REVOKED));
}

async fn raw_upgrade(
    addr: std::net::SocketAddr,
    headers: &[(&str, &str)],
) -> http::Response<hyper::body::Incoming> {
    let mut request = http::Request::get(format!("http://{addr}/foresight/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    http_client()
        .request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn websocket_checks_origin_and_token() {
    let stack = stack(
        TokioClock::shared(),
        Some("http://app.test"),
        axum::Router::new(),
        LIFETIME,
    )
    .await;
    let token = login(stack.auth_addr, "alice").await;
    let bearer = format!("Bearer {}", token.token);
    let protocols = format!("foresight.v1, foresight.bearer.{}", token.token);

    let r = raw_upgrade(
        stack.gateway_addr,
        &[("origin", "http://evil.test"), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = raw_upgrade(stack.gateway_addr, &[("origin", "http://app.test")]).await;
    assert_eq!(r.status(), 401);
    let r = raw_upgrade(
        stack.gateway_addr,
        &[
            ("origin", "http://app.test"),
            (
                "sec-websocket-protocol",
                "foresight.v1, foresight.bearer.e30.e30.e30",
            ),
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let r = raw_upgrade(
        stack.gateway_addr,
        &[
            ("origin", "http://app.test"),
            ("sec-websocket-protocol", &protocols),
        ],
    )
    .await;
    assert_eq!(r.status(), 101);
    assert_eq!(r.headers()["sec-websocket-protocol"], "foresight.v1");
}

#[tokio::test]
async fn dual_token_client_sees_no_401_across_expiry_rotation_and_revocation() {
    let clock = ManualClock::new(Duration::from_secs(support::T0));
    let stack = stack(shared(&clock), None, axum::Router::new(), LIFETIME).await;
    let first = login(stack.auth_addr, "alice").await;
    let slots = TokenSlots::new(shared(&clock));
    slots.deliver(&first.token);
    let ws = tokio::spawn(connect_websocket(
        format!("ws://{}/foresight/ws", stack.gateway_addr),
        slots.clone(),
    ));
    wait_for("the connection to be tracked", || {
        stack.handle.tracked_sessions() == 1
    })
    .await;
    let client = DualTokenLayer::new(slots.clone()).layer(http_client());
    let uri = format!("http://{}/api", stack.gateway_addr);
    let mut statuses = Vec::new();
    let get = async |statuses: &mut Vec<u16>| {
        let request = http::Request::get(&uri)
            .body(Full::new(Bytes::new()))
            .unwrap();
        statuses.push(
            client
                .clone()
                .oneshot(request)
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    };
    get(&mut statuses).await;

    // Revocation with replacement: the next token is pushed, then the
    // active one is revoked; the client retries once with the new one.
    clock.advance(Duration::from_secs(10));
    stack.handle.refresh_now("alice", &first.sid).await.unwrap();
    wait_for("the pushed token", || slots.has_next()).await;
    stack
        .handle
        .revoke_token(&first.sid, &first.jti, first.exp)
        .await
        .unwrap();
    get(&mut statuses).await;
    assert_ne!(
        slots.active().unwrap().0.as_deref(),
        Some(first.jti.as_str())
    );

    // Moves the clock to 4 s before the active token's expiry.
    let near_expiry = |clock: &ManualClock| {
        let exp = slots.active().unwrap().1;
        clock.set(Duration::from_secs(exp - 4));
    };

    // Expiry: the next token arrives, time reaches the active token's exp.
    clock.advance(Duration::from_secs(10));
    let third = stack.handle.refresh_now("alice", &first.sid).await.unwrap();
    wait_for("the pushed token", || slots.has_next()).await;
    near_expiry(&clock);
    get(&mut statuses).await;
    assert_eq!(
        slots.active().unwrap().0.as_deref(),
        Some(third.jti.as_str())
    );

    // Key rotation: the next key is published first, verifiers pick it up,
    // then it signs.
    stack
        .ring
        .stage(foresight_token::SigningKey::generate_ed25519("k2").unwrap());
    stack.refresh_jwks().await;
    assert!(stack.ring.rotate_to_staged(Duration::from_secs(3600)));
    get(&mut statuses).await;
    clock.advance(Duration::from_secs(2));
    let rotated = stack.handle.refresh_now("alice", &first.sid).await.unwrap();
    wait_for("the token signed by the new key", || slots.has_next()).await;
    near_expiry(&clock);
    get(&mut statuses).await;
    assert_eq!(
        slots.active().unwrap().0.as_deref(),
        Some(rotated.jti.as_str())
    );
    for _ in 0..5 {
        get(&mut statuses).await;
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // Session revocation: the connection is told and closed.
    stack.handle.revoke_session(&first.sid).await.unwrap();
    let delivered = tokio::time::timeout(Duration::from_secs(10), ws)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(delivered, 3);
    assert!(slots.authorization().is_none());
}

#[tokio::test]
async fn a_401_waits_for_the_replacement_still_on_its_way() {
    let stack = stack(TokioClock::shared(), None, axum::Router::new(), LIFETIME).await;
    let first = login(stack.auth_addr, "bob").await;
    let slots = TokenSlots::new(TokioClock::shared()).with_retry_wait(Duration::from_secs(30));
    slots.deliver(&first.token);
    let ws = tokio::spawn(connect_websocket(
        format!("ws://{}/foresight/ws", stack.gateway_addr),
        slots.clone(),
    ));
    wait_for("the connection to be tracked", || {
        stack.handle.tracked_sessions() == 1
    })
    .await;
    // Revoked first; the replacement is pushed a little later (usually
    // while the 401 waits; if it lands first, the retry simply does not
    // wait: the outcome is the same either way).
    stack
        .handle
        .revoke_token(&first.sid, &first.jti, first.exp)
        .await
        .unwrap();
    let handle = stack.handle.clone();
    let sid = first.sid.clone();
    let push = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        handle.refresh_now("bob", &sid).await
    });
    let client = DualTokenLayer::new(slots.clone()).layer(http_client());
    let request = http::Request::get(format!("http://{}/api", stack.gateway_addr))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(push.await.unwrap().is_some());
    stack.handle.revoke_session(&first.sid).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), ws).await;
}

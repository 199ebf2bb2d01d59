//! The WebSocket push channel is bound to its session: the first
//! connection wins, another needs the session's current token, a
//! superseded one revokes the session and closes the open connection with
//! 4001. Real authentication server and gateway on loopback.

mod support;

use std::time::Duration;

use bytes::Bytes;
use foresight_token::ws::CLOSE_REVOKED;
use foresight_token::{IssuedToken, ManualClock};
use futures_util::StreamExt as _;
use http_body_util::Full;
use support::T0;
use support::net::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const LIFETIME: Duration = Duration::from_secs(300);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: std::net::SocketAddr, token: &str) -> Socket {
    let mut request = format!("ws://{addr}/foresight/ws")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// The status and `www-authenticate` of an upgrade request.
async fn upgrade(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    let mut request = http::Request::get(format!("http://{addr}/foresight/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = http_client()
        .request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), challenge)
}

async fn api(addr: std::net::SocketAddr, token: &str) -> (u16, Option<String>) {
    let request = http::Request::get(format!("http://{addr}/api"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = http_client().request(request).await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), challenge)
}

/// Text messages until the close frame; its code.
async fn until_closed(socket: &mut Socket) -> (Vec<String>, Option<u16>) {
    let mut texts = Vec::new();
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Text(text)) => texts.push(text.to_string()),
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .unwrap();
    (texts, code)
}

async fn next_text(socket: &mut Socket) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Message::Text(text) = socket.next().await.unwrap().unwrap() {
                return text.to_string();
            }
        }
    })
    .await
    .unwrap()
}

fn reuse() -> Option<String> {
    Some(
        "Bearer error=\"invalid_token\", error_description=\"session revoked: token reuse\"".into(),
    )
}

#[tokio::test]
async fn the_push_channel_is_bound_to_the_session_and_its_current_token() {
    let clock = ManualClock::new(Duration::from_secs(T0));
    let stack = stack(shared(&clock), None, axum::Router::new(), LIFETIME).await;
    let first = login(stack.auth_addr, "alice").await;
    let gateway = stack.gateway_addr;

    // The first connection wins.
    let _legit = connect(gateway, &first.token).await;
    assert_eq!(stack.handle.tracked_sessions(), 1);

    // A token of the same session that the gateway never delivered (asked
    // of the authentication server directly): refused while the first
    // connection is open.
    let answer = call(
        stack.auth_addr,
        http::Method::POST,
        "/token/refresh",
        Some("application/json"),
        Some("Bearer gateway-secret"),
        serde_json::json!({"sub": "alice", "sid": first.sid, "lifetime_secs": 300}).to_string(),
    )
    .await;
    assert_eq!(answer.status, 200);
    let other: IssuedToken = serde_json::from_slice(&answer.body).unwrap();
    let bearer = format!("Bearer {}", other.token);
    assert_eq!(
        upgrade(gateway, &[("authorization", &bearer)]).await,
        (409, None)
    );

    // Another session's token naming this session: refused.
    let bob = login(stack.auth_addr, "bob").await;
    let bearer = format!("Bearer {}", bob.token);
    assert_eq!(
        upgrade(
            gateway,
            &[
                ("authorization", &bearer),
                ("x-foresight-session", &first.sid)
            ]
        )
        .await,
        (
            401,
            Some(
                "Bearer error=\"invalid_token\", error_description=\"token belongs to another session\""
                    .into()
            )
        )
    );
}

#[tokio::test]
async fn a_superseded_token_at_the_endpoint_revokes_the_session_and_closes_its_channel() {
    let clock = ManualClock::new(Duration::from_secs(T0));
    let stack = stack(shared(&clock), None, axum::Router::new(), LIFETIME).await;
    let first = login(stack.auth_addr, "alice").await;
    let gateway = stack.gateway_addr;
    let mut legit = connect(gateway, &first.token).await;
    assert_eq!(api(gateway, &first.token).await.0, 200);

    // The successor is pushed and used.
    let successor = stack.handle.refresh_now("alice", &first.sid).await.unwrap();
    let pushed: serde_json::Value = serde_json::from_str(&next_text(&mut legit).await).unwrap();
    assert_eq!(pushed["jti"].as_str(), Some(successor.jti.as_str()));
    assert_eq!(api(gateway, &successor.token).await.0, 200);

    // The current token may take the channel over (a reconnect).
    let mut reconnected = connect(gateway, &successor.token).await;

    // The superseded token, later: the session is revoked.
    clock.advance(Duration::from_secs(3));
    let bearer = format!("Bearer {}", first.token);
    assert_eq!(
        upgrade(gateway, &[("authorization", &bearer)]).await,
        (401, reuse())
    );
    let (texts, code) = until_closed(&mut reconnected).await;
    assert_eq!(texts, vec![r#"{"type":"revoked"}"#.to_owned()]);
    assert_eq!(code, Some(CLOSE_REVOKED));
    assert_eq!(api(gateway, &successor.token).await, (401, reuse()));
    assert_eq!(
        upgrade(
            gateway,
            &[("authorization", &format!("Bearer {}", successor.token))]
        )
        .await,
        (401, reuse())
    );
    drop(legit);
}

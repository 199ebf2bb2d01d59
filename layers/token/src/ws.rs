//! The WebSocket endpoint that pushes pre-fetched tokens to clients.
//!
//! A client connects to the endpoint (`/foresight/ws` by default)
//! authenticated by its current token: `Authorization: Bearer` for
//! non-browser clients, or, since browsers cannot set headers on a
//! WebSocket, the subprotocols `foresight.v1, foresight.bearer.<token>` (the
//! server answers `foresight.v1`). The `Origin` header, when present, must
//! be in the allow-list (an empty list allows only requests without
//! `Origin`, i.e. non-browser clients).
//!
//! The server sends JSON text messages:
//! - `{"type":"token","token":"…","jti":"…","sid":"…","nbf":…,"exp":…}`: the
//!   next token of the session;
//! - `{"type":"revoked"}`: the session is revoked; the server closes the
//!   connection (code 4001).
//!
//! Each connection has a bounded send queue (16 messages by default; a token
//! that does not fit is dropped and counted, the response header still
//! delivers it), a ping every 15 s (closed after two pings without pong) and
//! a 4 KiB limit on incoming messages.
//!
//! One connection per session, bound to it; the first one wins. While it is
//! open, a new connection for the session needs the session's current token
//! (the one in use, or the successor delivered to it) and then replaces the
//! first. Refusals, before the upgrade, as HTTP errors
//! ([`SubscribeError`](crate::error::SubscribeError), [`TokenError`]):
//! - `409 Conflict`: the session has an open connection and the token is
//!   not its current one;
//! - `401` `invalid_token` "session revoked: token reuse": a superseded
//!   token whose successor was used; the session is revoked (and its open
//!   connection closed with 4001);
//! - `401` "token belongs to another session": the request names another
//!   session (the layer's session binding, as on requests);
//! - `503` with `retry-after`: the session table is full.
//!
//! ```
//! use foresight_token::ws::WsConfig;
//! # use foresight_token::*;
//! # let clock = TokioClock::shared();
//! # let ring = KeyRing::new(SigningKey::generate_ed25519("k1").unwrap(), clock.clone());
//! # let issuer = LocalIssuer::new(ring.clone(), "iss", "aud", clock.clone());
//! # let verifier = Verifier::builder(ring, "iss", "aud").with_clock(clock).build();
//! let layer = TokenPrefetchLayer::builder(verifier, issuer).build();
//! // Default: non-browser clients only.
//! let router: axum::Router = layer.handle().ws_router(WsConfig::default());
//! // Customised: a browser origin, a 5 s heartbeat, 4 queued messages.
//! let router: axum::Router = layer.handle().ws_router(
//!     WsConfig::default()
//!         .with_allow_origin("https://app.example")
//!         .with_heartbeat(std::time::Duration::from_secs(5))
//!         .with_queue(4),
//! );
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use foresight_core::ErrorResponse;
use foresight_core::edge::into_response;
use http::{HeaderMap, StatusCode};

use crate::claims::Claims;
use crate::error::TokenError;
use crate::handle::{Subscription, TokenHandle, bearer};
use crate::issuer::IssuedToken;
use crate::sessions::Push;

/// Subprotocol the server selects.
pub const PROTOCOL: &str = "foresight.v1";
/// Prefix of the subprotocol that carries a token.
pub const TOKEN_PROTOCOL_PREFIX: &str = "foresight.bearer.";
/// Close code sent on revocation.
pub const CLOSE_REVOKED: u16 = 4001;

/// Configuration of the WebSocket endpoint; see the [module docs](self).
#[derive(Clone, Debug)]
#[must_use]
pub struct WsConfig {
    path: String,
    origins: Vec<String>,
    heartbeat: Duration,
    queue: usize,
}

impl Default for WsConfig {
    /// Path `/foresight/ws`, no browser origin, 15 s heartbeat, 16 messages
    /// queued.
    fn default() -> Self {
        Self {
            path: "/foresight/ws".to_owned(),
            origins: Vec::new(),
            heartbeat: Duration::from_secs(15),
            queue: 16,
        }
    }
}

impl WsConfig {
    /// Serves the endpoint at `path`.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Allows connections from a browser `origin` (e.g.
    /// `https://app.example`).
    pub fn with_allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Ping period.
    pub fn with_heartbeat(mut self, period: Duration) -> Self {
        self.heartbeat = period;
        self
    }

    /// Send queue length per connection.
    pub fn with_queue(mut self, len: usize) -> Self {
        self.queue = len.max(1);
        self
    }
}

#[derive(Clone)]
struct WsState {
    handle: TokenHandle,
    config: Arc<WsConfig>,
}

impl TokenHandle {
    /// An axum router serving the WebSocket endpoint.
    pub fn ws_router<S>(&self, config: WsConfig) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let path = config.path.clone();
        Router::new()
            .route(path.as_str(), get(upgrade))
            .with_state(WsState {
                handle: self.clone(),
                config: Arc::new(config),
            })
    }
}

fn unauthorized(error: TokenError) -> Response {
    into_response(ErrorResponse::from_error(&error)).into_response()
}

async fn upgrade(
    State(state): State<WsState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers.get(http::header::ORIGIN) {
        let allowed = state
            .config
            .origins
            .iter()
            .any(|o| o.as_bytes() == origin.as_bytes());
        if !allowed {
            metrics::counter!(crate::metrics::WS_REJECTED, "why" => "origin").increment(1);
            return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
        }
    }
    let from_protocol = ws.requested_protocols().find_map(|p| {
        p.to_str()
            .ok()
            .and_then(|p| p.trim().strip_prefix(TOKEN_PROTOCOL_PREFIX))
            .map(str::to_owned)
    });
    let claims = match (&from_protocol, headers.get(http::header::AUTHORIZATION)) {
        (Some(token), _) => state.handle.verifier().verify(token),
        (None, Some(value)) => bearer(value.as_bytes())
            .ok_or(TokenError::NotBearer)
            .and_then(|token| state.handle.verifier().verify(token)),
        (None, None) => Err(TokenError::Missing),
    };
    let claims = match claims.and_then(|c| state.handle.check_binding(&headers, &c).map(|()| c)) {
        Ok(claims) => claims,
        Err(error) => {
            metrics::counter!(crate::metrics::WS_REJECTED, "why" => "token").increment(1);
            return unauthorized(error);
        }
    };
    let (subscription, pending) = match state.handle.subscribe(&claims, state.config.queue) {
        Ok(attached) => attached,
        Err(error) => {
            metrics::counter!(crate::metrics::WS_REJECTED, "why" => "session").increment(1);
            return into_response(ErrorResponse::from_error(&error)).into_response();
        }
    };
    let ws = ws.max_message_size(4096).max_frame_size(4096);
    let ws = if from_protocol.is_some() {
        ws.protocols([PROTOCOL])
    } else {
        ws
    };
    ws.on_upgrade(move |socket| serve(socket, state, claims, subscription, pending))
}

fn token_message(token: &IssuedToken) -> Message {
    let json = serde_json::json!({
        "type": "token",
        "token": &*token.token,
        "jti": token.jti,
        "sid": token.sid,
        "nbf": token.nbf,
        "exp": token.exp,
    });
    Message::text(json.to_string())
}

async fn serve(
    mut socket: WebSocket,
    state: WsState,
    claims: Claims,
    mut subscription: Subscription,
    pending: Option<IssuedToken>,
) {
    let handle = state.handle;
    if let Some(next) = pending
        && socket.send(token_message(&next)).await.is_err()
    {
        return;
    }
    metrics::gauge!(crate::metrics::WS_CONNECTIONS).increment(1.0);
    let mut heartbeat = tokio::time::interval(state.config.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut unanswered = 0u32;
    loop {
        tokio::select! {
            delivery = subscription.recv() => match delivery {
                Some(Push::Token(token)) => {
                    if socket.send(token_message(&token)).await.is_err() {
                        break;
                    }
                }
                Some(Push::Revoked) | None => {
                    let _ = socket.send(Message::text(r#"{"type":"revoked"}"#)).await;
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: CLOSE_REVOKED,
                            reason: "revoked".into(),
                        })))
                        .await;
                    break;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Pong(_))) => unanswered = 0,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = heartbeat.tick() => {
                if handle.verifier().revocations().is_session_revoked(&claims.sid) {
                    let _ = socket.send(Message::text(r#"{"type":"revoked"}"#)).await;
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: CLOSE_REVOKED,
                            reason: "revoked".into(),
                        })))
                        .await;
                    break;
                }
                if unanswered >= 2 {
                    break;
                }
                unanswered += 1;
                if socket.send(Message::Ping(bytes::Bytes::new())).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(subscription);
    metrics::gauge!(crate::metrics::WS_CONNECTIONS).decrement(1.0);
}

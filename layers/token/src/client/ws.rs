use std::time::Duration;

use futures_util::StreamExt as _;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use super::slots::TokenSlots;

/// Why the WebSocket delivery connection ended with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsClientError {
    /// No token to authenticate with.
    #[error("no token to authenticate the connection")]
    NoToken,
    /// The connection failed or was refused.
    #[error("websocket connection failed")]
    Connect {
        /// The error.
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
    /// The handshake did not complete in time.
    #[error("websocket handshake timed out")]
    Timeout,
}

/// What a text message pushed over the delivery WebSocket did to the slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushedMessage {
    /// A token the slots kept.
    Delivered,
    /// The session was revoked: the slots are cleared.
    Revoked,
    /// Not JSON, another message type, or a token the slots did not keep.
    Ignored,
}

/// Applies one text message pushed over the delivery WebSocket to `slots`,
/// as [`connect_websocket`] does: `{"type":"token","token":"…"}` goes to
/// [`TokenSlots::deliver`] (which reads the token's `exp` and `jti` without
/// verifying it), `{"type":"revoked"}` clears the slots, anything else is
/// ignored.
pub fn apply_pushed_message(slots: &TokenSlots, text: &str) -> PushedMessage {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return PushedMessage::Ignored;
    };
    match json["type"].as_str() {
        Some("token") => match json["token"].as_str() {
            Some(token) if slots.deliver(token) => PushedMessage::Delivered,
            _ => PushedMessage::Ignored,
        },
        Some("revoked") => {
            slots.clear();
            PushedMessage::Revoked
        }
        _ => PushedMessage::Ignored,
    }
}

/// Connects to the WebSocket endpoint at `url` (e.g.
/// `ws://127.0.0.1:8080/foresight/ws`) with the active token of `slots`, and
/// feeds every delivered token into them until the server closes the
/// connection. On `{"type":"revoked"}` the slots are cleared. Returns the
/// number of tokens delivered.
pub async fn connect_websocket(
    url: impl Into<String>,
    slots: TokenSlots,
) -> Result<usize, WsClientError> {
    let url: String = url.into();
    let authorization = slots.authorization().ok_or(WsClientError::NoToken)?;
    let mut request = url
        .into_client_request()
        .map_err(|source| WsClientError::Connect { source })?;
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, authorization);
    let (mut socket, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .map_err(|_| WsClientError::Timeout)?
    .map_err(|source| WsClientError::Connect { source })?;
    let mut delivered = 0;
    slots.set_connected(true);
    while let Some(message) = socket.next().await {
        let Ok(Message::Text(text)) = message else {
            if matches!(message, Ok(Message::Close(_)) | Err(_)) {
                break;
            }
            continue;
        };
        match apply_pushed_message(&slots, &text) {
            PushedMessage::Delivered => delivered += 1,
            PushedMessage::Revoked => break,
            PushedMessage::Ignored => {}
        }
    }
    slots.set_connected(false);
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::{ManualClock, SharedClock};

    fn slots() -> TokenSlots {
        let clock: SharedClock = Arc::new(ManualClock::new(Duration::from_secs(1_700_000_000)));
        TokenSlots::new(clock)
    }

    #[test]
    fn a_pushed_token_is_delivered_once() {
        let slots = slots();
        let message = r#"{"type":"token","token":"a.b.c"}"#;
        assert_eq!(
            apply_pushed_message(&slots, message),
            PushedMessage::Delivered
        );
        assert_eq!(
            apply_pushed_message(&slots, message),
            PushedMessage::Ignored
        );
        assert_eq!(slots.authorization().unwrap(), "Bearer a.b.c");
    }

    #[test]
    fn revoked_clears_the_slots() {
        let slots = slots();
        slots.deliver("a.b.c");
        assert_eq!(
            apply_pushed_message(&slots, r#"{"type":"revoked"}"#),
            PushedMessage::Revoked
        );
        assert!(slots.authorization().is_none());
    }

    #[test]
    fn anything_else_is_ignored() {
        let slots = slots();
        for message in [
            "",
            "not json",
            "[]",
            r#"{"type":"token"}"#,
            r#"{"type":"token","token":7}"#,
            r#"{"type":"token","token":"line\nbreak"}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":["revoked"]}"#,
        ] {
            assert_eq!(
                apply_pushed_message(&slots, message),
                PushedMessage::Ignored,
                "{message:?}"
            );
        }
        assert!(slots.authorization().is_none());
    }
}

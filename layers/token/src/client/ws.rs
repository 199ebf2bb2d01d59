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
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        match json["type"].as_str() {
            Some("token") => {
                if let Some(token) = json["token"].as_str()
                    && slots.deliver(token)
                {
                    delivered += 1;
                }
            }
            Some("revoked") => {
                slots.clear();
                break;
            }
            _ => {}
        }
    }
    slots.set_connected(false);
    Ok(delivered)
}

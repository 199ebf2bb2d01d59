//! Fetching a JWKS document over HTTPS and keeping a [`StaticKeys`] current.
//!
//! The fetch goes through a [`Transport`]: HTTPS with the system's roots by
//! default, plain HTTP to loopback only unless opted in.
//!
//! Only the configured URL is ever fetched: `jku` and `x5u` header
//! parameters of tokens are ignored (RFC 8725 §3.10).

use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::JwkSet;

use crate::error::IssueError;
use crate::keys::StaticKeys;
use crate::transport::Transport;

/// Largest accepted JWKS document.
const MAX_JWKS: usize = 256 * 1024;

/// Fetches the JWKS document at `uri` (5 s timeout) with the default
/// [`Transport`].
pub async fn fetch_jwks(uri: Uri) -> Result<JwkSet, IssueError> {
    fetch_jwks_with(uri, &Transport::new()).await
}

/// Fetches the JWKS document at `uri` (5 s timeout) through `transport`.
pub async fn fetch_jwks_with(uri: Uri, transport: &Transport) -> Result<JwkSet, IssueError> {
    let connector = transport.connector(&uri, HttpConnector::new())?;
    let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
    let exchange = async {
        let response = client
            .get(uri)
            .await
            .map_err(|e| IssueError::Unavailable { source: e.into() })?;
        if !response.status().is_success() {
            return Err(IssueError::Refused {
                status: response.status(),
            });
        }
        let body = Limited::new(response.into_body(), MAX_JWKS)
            .collect()
            .await
            .map_err(|source| IssueError::Unavailable { source })?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| IssueError::InvalidResponse { source: e.into() })
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|e| IssueError::Unavailable { source: e.into() })?
}

impl StaticKeys {
    /// Fetches the JWKS at `uri` now and then every `period`, replacing the
    /// keys each time a fetch succeeds (a failed fetch keeps the previous
    /// keys). The task ends when every clone of the set is dropped.
    pub async fn keep_current(
        &self,
        uri: Uri,
        period: Duration,
    ) -> Result<tokio::task::JoinHandle<()>, IssueError> {
        let jwks = fetch_jwks(uri.clone()).await?;
        self.update_from_jwks(&jwks);
        let weak = self.downgrade();
        Ok(tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                let Some(keys) = StaticKeys::upgrade(&weak) else {
                    break;
                };
                match fetch_jwks(uri.clone()).await {
                    Ok(jwks) => {
                        keys.update_from_jwks(&jwks);
                    }
                    Err(error) => tracing::warn!(%error, "JWKS refresh failed"),
                }
            }
        }))
    }
}

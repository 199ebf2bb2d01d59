use std::net::{IpAddr, SocketAddr};

use http::HeaderName;
use xxhash_rust::xxh3::Xxh3;

use super::{ClientKey, KeyError, KeyExtractor, RequestHead};

/// Request extension carrying the peer's socket address.
///
/// Servers insert it per connection (hyper-util: wrap the service; axum:
/// `ConnectInfo`). A bare `SocketAddr` extension is read too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// A key made from a hash of chosen headers and the peer's IP address, for
/// clients that carry no identifier (anonymous browsers).
///
/// The key is the 128-bit xxh3 of the header values (absent headers hash as
/// absent, not as empty) and of the peer IP (the port changes per connection,
/// so it is left out). Weak as an identity, adequate for stickiness.
#[derive(Clone, Debug)]
pub struct FingerprintKey {
    headers: Vec<HeaderName>,
    peer: bool,
}

impl Default for FingerprintKey {
    fn default() -> Self {
        Self::new()
    }
}

impl FingerprintKey {
    /// Fingerprints `user-agent`, `accept-language` and the peer IP.
    pub fn new() -> Self {
        Self {
            headers: vec![http::header::USER_AGENT, http::header::ACCEPT_LANGUAGE],
            peer: true,
        }
    }

    /// Replaces the fingerprinted headers.
    #[must_use]
    pub fn with_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.headers = headers.into_iter().collect();
        self
    }

    /// Whether the peer IP is part of the fingerprint (default: yes; then a
    /// request without a peer address has no key).
    #[must_use]
    pub fn with_peer(mut self, peer: bool) -> Self {
        self.peer = peer;
        self
    }
}

fn peer_ip(head: &RequestHead<'_>) -> Option<IpAddr> {
    head.extensions
        .get::<PeerAddr>()
        .map(|p| p.0.ip())
        .or_else(|| head.extensions.get::<SocketAddr>().map(SocketAddr::ip))
}

impl KeyExtractor for FingerprintKey {
    fn extract(&self, head: &RequestHead<'_>) -> Result<ClientKey, KeyError> {
        let mut hasher = Xxh3::new();
        let mut any = false;
        for name in &self.headers {
            match head.headers.get(name) {
                Some(value) => {
                    any = true;
                    hasher.update(&[1]);
                    hasher.update(&(value.len() as u64).to_le_bytes());
                    hasher.update(value.as_bytes());
                }
                None => hasher.update(&[0]),
            }
        }
        if self.peer {
            let ip = peer_ip(head).ok_or(KeyError::NoPeerAddr)?;
            any = true;
            match ip {
                IpAddr::V4(v4) => hasher.update(&v4.octets()),
                IpAddr::V6(v6) => hasher.update(&v6.octets()),
            }
        }
        if !any {
            return Err(KeyError::Missing {
                what: "every fingerprinted header".to_owned(),
            });
        }
        Ok(ClientKey::copy_from_slice(
            &hasher.digest128().to_le_bytes(),
        ))
    }
}

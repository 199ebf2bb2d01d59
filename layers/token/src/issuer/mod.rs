//! Where tokens come from: the [`TokenIssuer`] trait, [`LocalIssuer`]
//! (signs in process with a [`KeyRing`](crate::KeyRing)) and
//! [`RemoteIssuer`] (asks an authentication server over HTTP).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::IssueError;

mod local;
#[cfg(feature = "remote")]
mod remote;

pub use local::LocalIssuer;
#[cfg(feature = "remote")]
pub use remote::{RemoteIssuer, RemoteIssuerBuilder, RemoteIssuerError};

/// Boxed future of [`TokenIssuer::issue`].
pub type IssueFuture<'a> =
    Pin<Box<dyn Future<Output = Result<IssuedToken, IssueError>> + Send + 'a>>;

/// A request for a new access token of an existing session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// Subject (`sub`).
    pub subject: String,
    /// Session (`sid`).
    pub session: String,
    /// Requested lifetime (`exp − iat`).
    pub lifetime: Duration,
}

impl TokenRequest {
    /// A request for `subject` in `session`, valid for `lifetime`.
    pub fn new(subject: impl Into<String>, session: impl Into<String>, lifetime: Duration) -> Self {
        Self {
            subject: subject.into(),
            session: session.into(),
            lifetime,
        }
    }
}

/// A freshly issued token and the claims a holder needs to schedule it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: Arc<str>,
    /// Its `jti`.
    pub jti: String,
    /// Its `sid`.
    pub sid: String,
    /// Its `nbf`, Unix seconds.
    pub nbf: u64,
    /// Its `exp`, Unix seconds.
    pub exp: u64,
}

/// Issues access tokens.
pub trait TokenIssuer: Send + Sync + fmt::Debug + 'static {
    /// A new token for `request`.
    fn issue(&self, request: TokenRequest) -> IssueFuture<'_>;
}

impl<T: TokenIssuer + ?Sized> TokenIssuer for Arc<T> {
    fn issue(&self, request: TokenRequest) -> IssueFuture<'_> {
        (**self).issue(request)
    }
}

/// A random id of 128 bits, base64url.
pub(crate) fn random_id() -> String {
    use base64::Engine as _;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

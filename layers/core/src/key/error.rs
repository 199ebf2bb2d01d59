use http::{HeaderName, StatusCode};

use crate::error::HttpError;

/// Why a request has no usable client key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The source of the key is absent.
    #[error("no client key: {what} is missing")]
    Missing {
        /// What was looked for, e.g. `header x-account-id`.
        what: String,
    },
    /// The source is present but empty.
    #[error("empty client key in {what}")]
    Empty {
        /// Where the key was read.
        what: String,
    },
    /// The header value is not visible ASCII.
    #[error("client key in header {name} is not visible ASCII")]
    InvalidEncoding {
        /// The header.
        name: HeaderName,
    },
    /// The key or its source is longer than allowed.
    #[error("client key in {what} is {len} bytes long; at most {max} are accepted")]
    TooLong {
        /// Where the key was read.
        what: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The cookie header does not follow RFC 6265 where the key is.
    #[error("malformed cookie {name}: {reason}")]
    MalformedCookie {
        /// Cookie name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The bearer token cannot be read.
    #[error("cannot read the subject of the bearer token")]
    Jwt(#[from] JwtKeyError),
    /// A fingerprint needs the peer address and the request has none.
    #[error("no peer address on the request for the fingerprint")]
    NoPeerAddr,
}

impl KeyError {
    /// Whether the key is simply absent (as opposed to malformed).
    pub fn is_missing(&self) -> bool {
        matches!(self, KeyError::Missing { .. })
    }
}

impl HttpError for KeyError {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

/// Why the subject of a JWT cannot be read (routing only: no signature is
/// checked here).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtKeyError {
    /// The authorization header does not use the `Bearer` scheme.
    #[error("authorization scheme is not Bearer")]
    NotBearer,
    /// The token is not three dot-separated parts.
    #[error("token is not three dot-separated parts")]
    NotThreeParts,
    /// The payload is not base64url.
    #[error("token payload is not base64url")]
    Base64(#[source] base64::DecodeError),
    /// The payload is not a JSON object with a string `sub`.
    #[error("token payload is not a JSON object")]
    Json(#[source] serde_json::Error),
    /// There is no `sub` claim, or it is empty.
    #[error("token has no subject")]
    NoSubject,
}

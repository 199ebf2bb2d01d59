//! Typed errors of this crate and the HTTP responses they map to.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use foresight_core::HttpError;
use http::{HeaderValue, StatusCode};

/// Why a bearer token was not accepted.
///
/// Every variant is a `401 Unauthorized`. A request without credentials gets
/// a bare `Bearer` challenge (RFC 6750 §3.1); every bad token gets
/// `Bearer error="invalid_token", error_description="…"`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No `Authorization` header.
    #[error("no bearer token")]
    Missing,
    /// An `Authorization` header of another scheme.
    #[error("authorization scheme is not Bearer")]
    NotBearer,
    /// Longer than the configured maximum, rejected before any parsing.
    #[error("token of {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// Length of the token.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a compact JWS of three non-empty parts.
    #[error("token is not a signed compact JWT ({what})")]
    Malformed {
        /// What is wrong.
        what: &'static str,
    },
    /// A part that is not base64url or not the expected JSON.
    #[error("token {part} cannot be decoded")]
    Decode {
        /// `header` or `claims`.
        part: &'static str,
        /// The decoding error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// `alg: none` or an algorithm this crate does not know.
    #[error("algorithm {alg} is not accepted")]
    UnsupportedAlgorithm {
        /// The `alg` header value.
        alg: String,
    },
    /// An algorithm other than the one registered for the key.
    #[error("algorithm {alg} is not allowed for key {kid}")]
    AlgorithmNotAllowed {
        /// The `alg` header value.
        alg: String,
        /// The key.
        kid: String,
    },
    /// No `kid` header.
    #[error("token has no key id")]
    MissingKid,
    /// A `kid` outside `[A-Za-z0-9_-]{1,64}`: never looked up.
    #[error("key id has invalid characters or length")]
    InvalidKid,
    /// A `kid` of no current key.
    #[error("unknown key id")]
    UnknownKid,
    /// A `crit` header parameter: no extension is understood.
    #[error("critical header extensions are not supported")]
    CriticalHeader,
    /// The `typ` header is not `at+jwt`, or the `typ` claim is not `access`.
    #[error("wrong token type")]
    WrongType,
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature {
        /// The verification error.
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    /// `exp` (plus leeway) has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` (minus leeway) is still in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iat` (minus leeway) is in the future.
    #[error("token is issued in the future")]
    IssuedInFuture,
    /// `exp - iat` is above the verifier's maximum lifetime, or negative.
    #[error("token lifetime is out of bounds")]
    Lifetime,
    /// `iss` is not the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    #[error("wrong audience")]
    WrongAudience,
    /// The token's `jti` is revoked.
    #[error("token is revoked")]
    RevokedToken,
    /// The token's session is revoked.
    #[error("session is revoked")]
    RevokedSession,
    /// The token's session is revoked because a superseded token of it was
    /// presented after its successor had been used (this request's token,
    /// or an earlier one).
    #[error("session revoked: token reuse")]
    TokenReuse,
    /// The token belongs to another session than the request's.
    #[error("token belongs to another session")]
    WrongSession,
}

impl TokenError {
    /// The `error_description` of the challenge: the message, restricted
    /// to characters allowed in a quoted string.
    fn description(&self) -> String {
        self.to_string()
            .chars()
            .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
            .collect()
    }
}

impl HttpError for TokenError {
    fn status(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }

    fn www_authenticate(&self) -> Option<HeaderValue> {
        match self {
            Self::Missing | Self::NotBearer => Some(HeaderValue::from_static("Bearer")),
            _ => HeaderValue::from_str(&format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                self.description()
            ))
            .ok(),
        }
    }
}

/// Why [`TokenHandle::subscribe`](crate::TokenHandle::subscribe) refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The session table is full.
    #[error("session table is full")]
    Full,
    /// The token is superseded and its successor was used: the session is
    /// revoked for token reuse.
    #[error("session revoked: token reuse")]
    TokenReuse,
    /// The session already has an open connection, and the token is not
    /// the session's current one (the token in use or its delivered
    /// successor).
    #[error("session already has a connection; attach with its current token")]
    Taken,
}

impl HttpError for SubscribeError {
    /// What the WebSocket endpoint answers instead of upgrading: `503` when
    /// the table is full, `401` (`invalid_token`, "session revoked: token
    /// reuse") on reuse, `409` when the session is taken.
    fn status(&self) -> StatusCode {
        match self {
            Self::Full => StatusCode::SERVICE_UNAVAILABLE,
            Self::TokenReuse => StatusCode::UNAUTHORIZED,
            Self::Taken => StatusCode::CONFLICT,
        }
    }

    fn www_authenticate(&self) -> Option<HeaderValue> {
        match self {
            Self::TokenReuse => TokenError::TokenReuse.www_authenticate(),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Full => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// Signing failed.
    #[error("cannot sign the token")]
    Sign {
        /// The signing error.
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    /// The requested lifetime is zero or above the issuer's maximum.
    #[error("requested lifetime {requested:?} is out of bounds")]
    Lifetime {
        /// The requested lifetime.
        requested: Duration,
    },
    /// The authentication server could not be reached or did not answer in
    /// time, after every retry.
    #[error("authentication server unavailable")]
    Unavailable {
        /// The last failure.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The authentication server refused the request (4xx): the session is
    /// unknown or revoked.
    #[error("authentication server refused the request with status {status}")]
    Refused {
        /// The response status.
        status: StatusCode,
    },
    /// The answer of the authentication server could not be read.
    #[error("invalid answer from the authentication server")]
    InvalidResponse {
        /// The decoding error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// Too many refreshes in flight.
    #[error("too many token refreshes in flight")]
    Overloaded,
    /// The transport policy refused the endpoint (plain HTTP to a host that
    /// is not loopback), or TLS could not be set up.
    #[cfg(feature = "remote")]
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    /// A concurrent refresh of the same session failed with this error.
    #[error("concurrent refresh of the session failed")]
    Coalesced {
        /// The error of the refresh that was awaited.
        #[source]
        source: Arc<IssueError>,
    },
}

impl HttpError for IssueError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Refused { .. } => StatusCode::UNAUTHORIZED,
            Self::Lifetime { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self.status() {
            StatusCode::SERVICE_UNAVAILABLE => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

/// A signing key that cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key material is invalid.
    #[error("invalid key material for {alg:?}")]
    Material {
        /// The algorithm.
        alg: jsonwebtoken::Algorithm,
        /// The underlying error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A `kid` outside `[A-Za-z0-9_-]{1,64}`.
    #[error("invalid key id {0:?}")]
    InvalidKid(String),
    /// An algorithm not supported for signing here.
    #[error("algorithm {0:?} is not supported")]
    Unsupported(jsonwebtoken::Algorithm),
    /// A JWK without `kid` or `alg`.
    #[error("JWK lacks {0}")]
    IncompleteJwk(&'static str),
    /// An HMAC secret shorter than 32 bytes.
    #[error("HMAC secret must be at least 32 bytes")]
    ShortSecret,
}

/// A revocation that could not be recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The revocation list is full of unexpired entries.
    #[error("revocation list is full")]
    Full,
    /// The backing store failed.
    #[error("revocation store failed")]
    Store {
        /// The store error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl HttpError for RevocationError {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn retry_after(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
}

//! Typed errors of the authentication server and their HTTP answers.

use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};

use crate::error::{IssueError, RevocationError};

/// Why the authentication server refused a request.
///
/// Each variant answers with its status and a JSON body
/// `{"error": code, "error_description": message}` (the shape of RFC 6749
/// §5.2), where [`code`](Self::code) is stable and the description is the
/// error's message. Temporary refusals carry `retry-after`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthServerError {
    /// The body is not JSON, or lacks a field, or has one of the wrong type
    /// or size (`400 invalid_request`).
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The body is not declared as JSON (`415 invalid_request`).
    #[error("request body must be application/json")]
    NotJson,
    /// The body is over the server's limit (`413 request_too_large`).
    #[error("request body is too large")]
    TooLarge,
    /// Unknown subject, wrong or missing password (`401
    /// invalid_credentials`): the same answer for all.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Refresh or revoke without `Authorization: Bearer <client secret>`
    /// (`401 invalid_client`).
    #[error("client secret required")]
    MissingClientSecret,
    /// Refresh or revoke with another secret (`401 invalid_client`).
    #[error("client secret does not match")]
    WrongClientSecret,
    /// Refresh of a session that is unknown, of another subject, ended or
    /// revoked (`403 invalid_grant`).
    #[error("unknown, ended or revoked session")]
    UnknownSession,
    /// Too many requests from this client or for this subject (`429
    /// rate_limited`).
    #[error("too many requests, retry later")]
    RateLimited {
        /// When a request would be allowed again.
        retry_after: Duration,
    },
    /// The session table is full (`503 sessions_full`).
    #[error("too many sessions, retry later")]
    SessionsFull {
        /// When a session ends, as far as the server looked.
        retry_after: Duration,
    },
    /// Too many logins are being checked at once (`503
    /// temporarily_unavailable`).
    #[error("too many logins in progress, retry later")]
    LoginsBusy,
    /// The authenticator could not check the credentials (`503
    /// temporarily_unavailable`).
    #[error("credentials cannot be checked now")]
    AuthenticatorUnavailable,
    /// The token could not be issued (`400 invalid_request` for a lifetime
    /// out of bounds, `500 server_error` otherwise).
    #[error("token cannot be issued")]
    Issue(#[source] IssueError),
    /// The revocation could not be recorded (`503 temporarily_unavailable`).
    #[error("revocation cannot be recorded now")]
    Revocation(#[source] RevocationError),
}

impl AuthServerError {
    /// The status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidCredentials | Self::MissingClientSecret | Self::WrongClientSecret => {
                StatusCode::UNAUTHORIZED
            }
            Self::UnknownSession => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::SessionsFull { .. }
            | Self::LoginsBusy
            | Self::AuthenticatorUnavailable
            | Self::Revocation(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Issue(IssueError::Lifetime { .. }) => StatusCode::BAD_REQUEST,
            Self::Issue(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `error` code of the body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::NotJson => "invalid_request",
            Self::TooLarge => "request_too_large",
            Self::InvalidCredentials => "invalid_credentials",
            Self::MissingClientSecret | Self::WrongClientSecret => "invalid_client",
            Self::UnknownSession => "invalid_grant",
            Self::RateLimited { .. } => "rate_limited",
            Self::SessionsFull { .. } => "sessions_full",
            Self::LoginsBusy | Self::AuthenticatorUnavailable | Self::Revocation(_) => {
                "temporarily_unavailable"
            }
            Self::Issue(IssueError::Lifetime { .. }) => "invalid_request",
            Self::Issue(_) => "server_error",
        }
    }

    /// The `retry-after` of the answer, rounded up to whole seconds.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::SessionsFull { retry_after } => {
                Some(*retry_after)
            }
            Self::LoginsBusy | Self::AuthenticatorUnavailable | Self::Revocation(_) => {
                Some(Duration::from_secs(1))
            }
            _ => None,
        }
    }
}

impl IntoResponse for AuthServerError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.code(),
            "error_description": self.to_string(),
        });
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(after) = self.retry_after() {
            let secs = after
                .as_secs()
                .saturating_add(u64::from(after.subsec_nanos() > 0));
            headers.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if self.status() == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Why [`AuthServerBuilder::build`](super::AuthServerBuilder::build)
/// refused its settings.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No client secret: refresh and revoke would be open to anyone.
    #[error("a client secret is required for refresh and revoke")]
    MissingClientSecret,
    /// An empty client secret.
    #[error("the client secret is empty")]
    EmptyClientSecret,
    /// A zero limit or lifetime.
    #[error("{0} must be above zero")]
    Zero(&'static str),
}

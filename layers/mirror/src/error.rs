//! Errors of the session mirror, and the HTTP response each deserves.

use std::sync::Arc;
use std::time::Duration;

use foresight_core::HttpError;
use foresight_store::{DataError, StoreError};
use http::StatusCode;

/// Why a request's session could not be loaded or saved.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Someone else saved the session since this request read it, and no
    /// merge policy reconciled the two: 409.
    #[error("the session was changed by another request")]
    Conflict(#[source] Arc<StoreError>),
    /// The store cannot be reached, or is full: 503 with `retry-after`.
    #[error("the session store is unavailable")]
    Unavailable {
        /// The cause.
        #[source]
        source: Arc<StoreError>,
        /// Suggested delay.
        retry_after: Duration,
    },
    /// The session data would exceed its size limit: 413.
    #[error("the session is too large")]
    TooLarge(#[source] Arc<DataError>),
    /// The request carries a session id that is not well formed (only
    /// reported for shadow requests; a normal request then simply has no
    /// session): 400.
    #[error("malformed session id")]
    Malformed,
    /// A value in the session does not have the type asked for: 500.
    #[error("session value has an unexpected type")]
    Data(#[source] Arc<DataError>),
    /// Any other store failure: 500.
    #[error("session store failure")]
    Store(#[source] Arc<StoreError>),
    /// The `Idempotency-Key` header is empty, too long, repeated or not
    /// visible ASCII: 400.
    #[error("malformed idempotency key")]
    InvalidIdempotencyKey,
    /// Another request with this idempotency key is still running: 409.
    #[error("a request with this idempotency key is in progress")]
    IdempotencyKeyInUse,
    /// The idempotency key was used for another method or path: 422.
    #[error("this idempotency key was used for a different request")]
    IdempotencyKeyReused,
    /// The answer of a request with an idempotency key could not be read
    /// whole to be kept (too large, or the body failed), though the request
    /// ran: 500.
    #[error("the answer of an idempotent request could not be kept: {0}")]
    AnswerNotKept(Arc<str>),
    /// The request went through no `SessionMirrorLayer`: 500.
    #[error("no session layer in front of this handler")]
    MissingLayer,
}

impl SessionError {
    /// Classifies a store error.
    pub fn from_store(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { .. } => SessionError::Conflict(Arc::new(err)),
            StoreError::Unavailable { retry_after, .. } | StoreError::Full { retry_after, .. } => {
                SessionError::Unavailable {
                    retry_after,
                    source: Arc::new(err),
                }
            }
            StoreError::TooLarge(data) => SessionError::TooLarge(Arc::new(data)),
            other => SessionError::Store(Arc::new(other)),
        }
    }

    /// Classifies a data error.
    pub fn from_data(err: DataError) -> Self {
        match err {
            DataError::TooLarge { .. } => SessionError::TooLarge(Arc::new(err)),
            DataError::Serde { .. } => SessionError::Data(Arc::new(err)),
        }
    }
}

impl HttpError for SessionError {
    fn status(&self) -> StatusCode {
        match self {
            SessionError::Conflict(_) => StatusCode::CONFLICT,
            SessionError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            SessionError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            SessionError::Malformed | SessionError::InvalidIdempotencyKey => {
                StatusCode::BAD_REQUEST
            }
            SessionError::IdempotencyKeyInUse => StatusCode::CONFLICT,
            SessionError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            SessionError::Data(_)
            | SessionError::Store(_)
            | SessionError::MissingLayer
            | SessionError::AnswerNotKept(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            SessionError::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foresight_store::Version;

    #[test]
    fn statuses() {
        let conflict = SessionError::from_store(StoreError::Conflict {
            expected: Version::FIRST,
            actual: None,
        });
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
        let down = SessionError::from_store(StoreError::unavailable("down"));
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.retry_after(), Some(Duration::from_secs(1)));
        let big = SessionError::from_data(DataError::TooLarge { size: 2, limit: 1 });
        assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(SessionError::Malformed.status(), StatusCode::BAD_REQUEST);
        assert!(std::error::Error::source(&down).is_some());
        let full = SessionError::from_store(StoreError::Full {
            capacity: 1,
            retry_after: Duration::from_secs(2),
        });
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(full.retry_after(), Some(Duration::from_secs(2)));
    }
}

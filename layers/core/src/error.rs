//! How a typed error of any Foresight layer becomes an HTTP response at the
//! edge.

use std::error::Error as StdError;
use std::time::Duration;

use http::{HeaderValue, StatusCode};

/// Type-erased error, as used by tower.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An error that knows which HTTP response it deserves.
///
/// Every layer's error type implements this, and
/// [`ErrorResponseLayer`](crate::edge::ErrorResponseLayer) turns such an error,
/// found anywhere in a `BoxError`'s source chain, into its response.
pub trait HttpError: StdError + Send + Sync + 'static {
    /// Status of the response.
    fn status(&self) -> StatusCode;

    /// Value of `retry-after`, for temporary failures.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// Value of `www-authenticate`, for 401 responses.
    fn www_authenticate(&self) -> Option<HeaderValue> {
        None
    }
}

/// The parts of an error response, taken from an [`HttpError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResponse {
    /// Status code.
    pub status: StatusCode,
    /// `retry-after`, rounded up to whole seconds when written.
    pub retry_after: Option<Duration>,
    /// `www-authenticate`.
    pub www_authenticate: Option<HeaderValue>,
    /// Plain-text body: the error's message.
    pub message: String,
}

impl ErrorResponse {
    /// The response an [`HttpError`] asks for.
    pub fn from_error<E: HttpError>(error: &E) -> Self {
        Self {
            status: error.status(),
            retry_after: error.retry_after(),
            www_authenticate: error.www_authenticate(),
            message: error.to_string(),
        }
    }
}

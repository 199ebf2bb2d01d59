use std::time::Duration;

use foresight_core::{BoxError, HttpError};
use http::StatusCode;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The instance has no socket address in the topology.
    #[error("instance {0} has no address")]
    NoAddress(String),
    /// The request URI cannot be re-aimed at the instance.
    #[error("cannot build the upstream URI")]
    Uri(#[source] http::Error),
    /// The instance could not be reached or answered with a broken response:
    /// the connector's error, or hyper's (whose source chain holds the
    /// client's body error when the client's body broke the exchange).
    #[error("instance unreachable or broke the exchange")]
    Upstream(#[source] BoxError),
}

impl HttpError for ForwardError {
    fn status(&self) -> StatusCode {
        match self {
            ForwardError::NoAddress(_) | ForwardError::Uri(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ForwardError::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        matches!(self, ForwardError::Upstream(_)).then_some(Duration::from_secs(1))
    }
}

/// An upstream failure as the service's error.
pub(super) fn upstream(error: impl Into<BoxError>) -> BoxError {
    Box::new(ForwardError::Upstream(error.into()))
}

use std::time::Duration;

use foresight_core::{HttpError, KeyError};
use http::StatusCode;

/// Why a request could not be routed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// The request has no usable client key and the policy rejects it.
    #[error("request cannot be routed: {0}")]
    Key(#[source] KeyError),
    /// The topology has no instance.
    #[error("no instance to route to")]
    NoInstances,
}

impl HttpError for ShardError {
    fn status(&self) -> StatusCode {
        match self {
            ShardError::Key(_) => StatusCode::BAD_REQUEST,
            ShardError::NoInstances => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ShardError::Key(_) => None,
            ShardError::NoInstances => Some(Duration::from_secs(1)),
        }
    }
}

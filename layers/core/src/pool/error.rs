use std::time::Duration;

use http::StatusCode;

use crate::error::HttpError;
use crate::instance::InstanceId;

/// Why the pool could not hand a request to its target.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The request carries no [`Route`](crate::Route): no routing layer ran
    /// before the pool.
    #[error("request has no route; a routing layer must run before the pool")]
    NoRoute,
    /// The target is not (or no longer) a member of the topology.
    #[error("instance {0} is not in the topology")]
    UnknownTarget(InstanceId),
    /// The target's service did not become ready in time.
    #[error("instance {instance} was not ready within {waited:?}")]
    NotReady {
        /// The target.
        instance: InstanceId,
        /// How long the pool waited.
        waited: Duration,
    },
}

impl HttpError for PoolError {
    fn status(&self) -> StatusCode {
        match self {
            PoolError::NoRoute => StatusCode::INTERNAL_SERVER_ERROR,
            PoolError::UnknownTarget(_) | PoolError::NotReady { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            PoolError::NoRoute => None,
            _ => Some(Duration::from_secs(1)),
        }
    }
}

use std::time::Duration;

use foresight_core::{BoxError, HttpError, InstanceId};
use http::StatusCode;

/// Why a failed request was not replayed on another instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoReplay {
    /// The method is not idempotent and the request carries no idempotency
    /// key.
    NotReplayable,
    /// Every candidate of the route was tried or is out of rotation.
    Exhausted,
    /// The retry budget is spent: replaying now would amplify an outage.
    Budget,
    /// The body was larger than the replay cap, so no copy was kept.
    BodyTooLarge,
}

impl NoReplay {
    fn as_str(self) -> &'static str {
        match self {
            NoReplay::NotReplayable => "the request is not replayable",
            NoReplay::Exhausted => "no other instance is left",
            NoReplay::Budget => "the retry budget is spent",
            NoReplay::BodyTooLarge => "the body exceeded the replay cap",
        }
    }
}

impl std::fmt::Display for NoReplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of [`HealthFailover`](crate::HealthFailover).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FailoverError {
    /// Every candidate of the route is out of rotation; answered at once,
    /// without touching any instance.
    #[error("no live instance among the {candidates} candidates of this request")]
    NoLiveInstance {
        /// Number of candidates in the route.
        candidates: usize,
        /// When the first of them may be probed again.
        retry_after: Duration,
    },
    /// The last attempt failed and no other attempt was possible.
    #[error("instance {instance} failed and the request was not replayed: {reason}")]
    Failed {
        /// The instance of the last attempt.
        instance: InstanceId,
        /// Why there was no further attempt.
        reason: NoReplay,
        /// The failure of the last attempt.
        #[source]
        source: BoxError,
    },
}

impl HttpError for FailoverError {
    fn status(&self) -> StatusCode {
        match self {
            FailoverError::NoLiveInstance { .. } => StatusCode::SERVICE_UNAVAILABLE,
            FailoverError::Failed { reason, .. } => match reason {
                NoReplay::Exhausted | NoReplay::Budget => StatusCode::SERVICE_UNAVAILABLE,
                NoReplay::NotReplayable | NoReplay::BodyTooLarge => StatusCode::BAD_GATEWAY,
            },
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            FailoverError::NoLiveInstance { retry_after, .. } => Some(*retry_after),
            FailoverError::Failed { reason, .. } => match reason {
                NoReplay::Exhausted | NoReplay::Budget => Some(Duration::from_secs(1)),
                NoReplay::NotReplayable | NoReplay::BodyTooLarge => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let e = FailoverError::NoLiveInstance {
            candidates: 2,
            retry_after: Duration::from_millis(300),
        };
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after(), Some(Duration::from_millis(300)));
        let e = FailoverError::Failed {
            instance: "a".into(),
            reason: NoReplay::NotReplayable,
            source: "boom".into(),
        };
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
        assert!(std::error::Error::source(&e).is_some());
    }
}

use std::time::Duration;

pub(crate) use foresight_core::body::BodyFault;
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
    /// The client's request body ended before its declared length, or its
    /// connection was lost mid-body (an aborted upload). The instance is
    /// not blamed, not named and not replaced: `400 Bad Request`.
    #[error("the request body was cut short")]
    ClientBodyAborted {
        /// The error the attempt ended with.
        #[source]
        source: BoxError,
    },
    /// The client's request body was malformed (e.g. a bad chunk size):
    /// `400 Bad Request`, the instance not blamed.
    #[error("the request body is malformed")]
    ClientBodyMalformed {
        /// The error the attempt ended with.
        #[source]
        source: BoxError,
    },
    /// The client took too long to send its request body:
    /// `408 Request Timeout`, the instance not blamed.
    #[error("the request body was not sent in time")]
    ClientBodyTimedOut {
        /// The error the attempt ended with.
        #[source]
        source: BoxError,
    },
}

impl FailoverError {
    /// The error for an attempt that ended because of the client's body.
    pub(crate) fn client_body(fault: BodyFault, source: BoxError) -> Self {
        match fault {
            BodyFault::Aborted => FailoverError::ClientBodyAborted { source },
            BodyFault::Malformed => FailoverError::ClientBodyMalformed { source },
            BodyFault::TimedOut => FailoverError::ClientBodyTimedOut { source },
        }
    }

    /// Whether the client caused this error (its request body failed),
    /// rather than an instance.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            FailoverError::ClientBodyAborted { .. }
                | FailoverError::ClientBodyMalformed { .. }
                | FailoverError::ClientBodyTimedOut { .. }
        )
    }
}

impl HttpError for FailoverError {
    fn status(&self) -> StatusCode {
        match self {
            FailoverError::NoLiveInstance { .. } => StatusCode::SERVICE_UNAVAILABLE,
            FailoverError::Failed { reason, .. } => match reason {
                NoReplay::Exhausted | NoReplay::Budget => StatusCode::SERVICE_UNAVAILABLE,
                NoReplay::NotReplayable | NoReplay::BodyTooLarge => StatusCode::BAD_GATEWAY,
            },
            FailoverError::ClientBodyAborted { .. } | FailoverError::ClientBodyMalformed { .. } => {
                StatusCode::BAD_REQUEST
            }
            FailoverError::ClientBodyTimedOut { .. } => StatusCode::REQUEST_TIMEOUT,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            FailoverError::NoLiveInstance { retry_after, .. } => Some(*retry_after),
            FailoverError::Failed { reason, .. } => match reason {
                NoReplay::Exhausted | NoReplay::Budget => Some(Duration::from_secs(1)),
                NoReplay::NotReplayable | NoReplay::BodyTooLarge => None,
            },
            _ => None,
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
        assert!(!e.is_client_error());
    }

    #[test]
    fn client_body_errors_are_4xx_and_name_no_instance() {
        let cases = [
            (BodyFault::Aborted, StatusCode::BAD_REQUEST),
            (BodyFault::Malformed, StatusCode::BAD_REQUEST),
            (BodyFault::TimedOut, StatusCode::REQUEST_TIMEOUT),
        ];
        for (fault, status) in cases {
            let e = FailoverError::client_body(fault, "instance alpha: user body".into());
            assert_eq!(e.status(), status, "{fault:?}");
            assert_eq!(e.retry_after(), None);
            assert!(e.is_client_error());
            assert!(!e.to_string().contains("alpha"), "{e}");
            assert!(std::error::Error::source(&e).is_some());
        }
    }
}

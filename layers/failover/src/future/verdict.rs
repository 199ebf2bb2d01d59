//! How an attempt's result counts, for health and replay, and the errors a
//! request broken by its client's body ends with.

use foresight_core::BoxError;
use foresight_core::body::{BodyFault, ClientBodyError};
use http::Response;

use super::attempt::Attempt;
use crate::error::FailoverError;
use crate::metrics;

/// How an attempt's result counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Success,
    /// The instance failed: counted against it, and replayed if possible.
    Failure,
    /// The client's request body failed: answered to the client, never
    /// counted against the instance nor replayed.
    Client(BodyFault),
}

pub(crate) fn verdict<RB>(result: &Result<Response<RB>, BoxError>, attempt: &Attempt) -> Verdict {
    match result {
        Ok(response)
            if attempt
                .tracker
                .config
                .failure_status
                .is_failure(response.status()) =>
        {
            Verdict::Failure
        }
        Ok(_) => Verdict::Success,
        Err(error) => match ClientBodyError::find(error.as_ref()) {
            Some(fault) => Verdict::Client(fault),
            None => Verdict::Failure,
        },
    }
}

/// The error a request broken by its client's body ends with; counted.
pub(crate) fn client_body_error(fault: BodyFault, error: BoxError) -> BoxError {
    metrics::client_body_error(fault);
    tracing::debug!(?fault, "request body failed on the client's side");
    FailoverError::client_body(fault, error).into()
}

/// The error a request ends with when no attempt is tracked: the client's
/// body fault if it caused it, else the error as it is.
pub(crate) fn untracked(error: BoxError) -> BoxError {
    match ClientBodyError::find(error.as_ref()) {
        Some(fault) => client_body_error(fault, error),
        None => error,
    }
}

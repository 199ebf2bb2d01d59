//! The errors a [`RouteBody`](super::RouteBody) ends with: the client's
//! body failed (marked as the client's), or a replay superseded the reader.

use std::error::Error as StdError;
use std::io::ErrorKind;

use crate::error::BoxError;

/// The body of a superseded attempt was polled after a replay started.
#[derive(Debug, thiserror::Error)]
#[error("request body superseded by a replay")]
pub struct Superseded;

/// What went wrong with a client's request body, read from the error its
/// body source returned (the kind of the first `std::io::Error` in its
/// source chain, as hyper reports a broken upload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFault {
    /// The body ended before its declared length, or the connection was
    /// lost mid-body.
    Aborted,
    /// The body's framing was invalid (e.g. a bad chunk size).
    Malformed,
    /// The client took too long to send the body.
    TimedOut,
}

impl BodyFault {
    /// The label of the fault in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyFault::Aborted => "aborted",
            BodyFault::Malformed => "malformed",
            BodyFault::TimedOut => "timed_out",
        }
    }

    fn of(error: &(dyn StdError + 'static)) -> Self {
        let mut current = Some(error);
        while let Some(e) = current {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return match io.kind() {
                    ErrorKind::TimedOut => BodyFault::TimedOut,
                    ErrorKind::InvalidData | ErrorKind::InvalidInput => BodyFault::Malformed,
                    _ => BodyFault::Aborted,
                };
            }
            current = e.source();
        }
        BodyFault::Aborted
    }
}

/// The client's request body failed while it was read on its way to an
/// instance.
///
/// [`RouteBody`](super::RouteBody) wraps every error of the client's body in
/// this type, so that the error the instance's service returns (a hyper
/// client reports "user body error", with this as its source) can be told
/// apart from a failure of the instance by walking the source chain rather
/// than by reading messages.
#[derive(Debug, thiserror::Error)]
#[error("the client's request body failed")]
pub struct ClientBodyError {
    fault: BodyFault,
    #[source]
    source: BoxError,
}

impl ClientBodyError {
    /// Marks `source`, an error of the client's body, as the client's.
    pub fn new(source: BoxError) -> Self {
        Self {
            fault: BodyFault::of(source.as_ref()),
            source,
        }
    }

    /// What went wrong.
    pub fn fault(&self) -> BodyFault {
        self.fault
    }

    /// The fault of the first client body error in `error`'s source chain;
    /// `None` when the error is not the client's.
    pub fn find(error: &(dyn StdError + 'static)) -> Option<BodyFault> {
        let mut current = Some(error);
        while let Some(e) = current {
            if let Some(body) = e.downcast_ref::<ClientBodyError>() {
                return Some(body.fault);
            }
            current = e.source();
        }
        None
    }
}

/// Marks an error of the client's body as the client's.
pub(super) fn client_error<E: Into<BoxError>>(error: E) -> BoxError {
    Box::new(ClientBodyError::new(error.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that wraps another, as hyper and hyper-util do.
    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapper(#[source] BoxError);

    fn io(kind: ErrorKind) -> BoxError {
        Box::new(Wrapper(Box::new(std::io::Error::new(kind, "body"))))
    }

    #[test]
    fn a_client_body_fault_is_read_from_the_io_error_kind() {
        let fault = |e| ClientBodyError::new(e).fault();
        assert_eq!(fault(io(ErrorKind::UnexpectedEof)), BodyFault::Aborted);
        assert_eq!(fault(io(ErrorKind::ConnectionReset)), BodyFault::Aborted);
        assert_eq!(fault(io(ErrorKind::InvalidInput)), BodyFault::Malformed);
        assert_eq!(fault(io(ErrorKind::InvalidData)), BodyFault::Malformed);
        assert_eq!(fault(io(ErrorKind::TimedOut)), BodyFault::TimedOut);
        assert_eq!(fault("no io error".into()), BodyFault::Aborted);
    }

    #[test]
    fn a_client_body_error_is_found_anywhere_in_the_chain() {
        let marked: BoxError = Box::new(Wrapper(Box::new(Wrapper(Box::new(
            ClientBodyError::new(io(ErrorKind::InvalidInput)),
        )))));
        assert_eq!(
            ClientBodyError::find(marked.as_ref()),
            Some(BodyFault::Malformed)
        );
        // The same io error without the mark is the instance's: a reset
        // of the connection to it, say.
        let unmarked = io(ErrorKind::InvalidInput);
        assert_eq!(ClientBodyError::find(unmarked.as_ref()), None);
        assert_eq!(
            ClientBodyError::find(io(ErrorKind::ConnectionReset).as_ref()),
            None
        );
    }
}

//! Which response statuses count as failures of the instance that sent
//! them: the [`FailureStatus`] hook, with a blanket impl for closures and
//! function pointers, and the default [`ServerErrors`].

use http::StatusCode;

/// Decides whether a response status is a failure of the instance: counted
/// against its health, and replayed when the request can be.
///
/// Implemented for every `Fn(StatusCode) -> bool` that is `Send + Sync`, so
/// a closure or a function pointer can be handed to
/// [`HealthFailoverLayer::with_failure_status`](crate::HealthFailoverLayer::with_failure_status),
/// as below. The call runs on the request path for every response: it
/// must not block.
///
/// ```
/// use foresight_core::{InstanceSpec, Topology};
/// use foresight_failover::{FailureStatus, HealthFailoverLayer, ServerErrors};
/// use http::StatusCode;
///
/// let topology = Topology::from_instances(["a", "b"].map(InstanceSpec::new)).unwrap();
/// // A closure: 5xx, and also 429 (the instance sheds load).
/// let failover = HealthFailoverLayer::new(topology.clone()).with_failure_status(
///     |status: StatusCode| status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS,
/// );
/// # let _ = failover;
/// // A function pointer works as well.
/// fn only_502_to_504(status: StatusCode) -> bool {
///     (502..=504).contains(&status.as_u16())
/// }
/// let failover = HealthFailoverLayer::new(topology).with_failure_status(only_502_to_504);
/// # let _ = failover;
/// assert!(ServerErrors.is_failure(StatusCode::BAD_GATEWAY));
/// assert!(!ServerErrors.is_failure(StatusCode::NOT_FOUND));
/// ```
pub trait FailureStatus: Send + Sync + 'static {
    /// Whether `status` is a failure of the instance that answered it.
    fn is_failure(&self, status: StatusCode) -> bool;
}

impl<F> FailureStatus for F
where
    F: Fn(StatusCode) -> bool + Send + Sync + 'static,
{
    fn is_failure(&self, status: StatusCode) -> bool {
        self(status)
    }
}

/// The default [`FailureStatus`]: every 5xx is a failure, nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerErrors;

impl FailureStatus for ServerErrors {
    fn is_failure(&self, status: StatusCode) -> bool {
        status.is_server_error()
    }
}

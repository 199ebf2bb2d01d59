//! Instance identity and the static description of one instance.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// The stable name of one instance (a server, a pod, a process).
///
/// Rendezvous scores are computed from this name, so two routers that name
/// their instances the same way route every key the same way. Cloning is a
/// reference-count increment.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(Arc<str>);

impl InstanceId {
    /// Creates an id from any string.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for InstanceId {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for InstanceId {
    fn from(name: String) -> Self {
        Self::new(name)
    }
}

/// What a topology knows about an instance before any traffic: its id, where
/// it listens and its relative capacity.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceSpec {
    /// Stable name, the input of rendezvous hashing.
    pub id: InstanceId,
    /// Socket address, when the instance is reached over the network.
    pub addr: Option<SocketAddr>,
    /// Relative capacity; a weight-2 instance owns twice the keys of a
    /// weight-1 instance. Must be finite and positive.
    pub weight: f64,
    /// Draining: the instance takes no new sessions. Routers rank it after
    /// every candidate that is not draining, so its sessions move to their
    /// next candidate at their next request while the requests it already
    /// has finish. Default `false`.
    pub draining: bool,
}

impl InstanceSpec {
    /// An instance of weight 1 with no address (in-process services).
    pub fn new(id: impl Into<InstanceId>) -> Self {
        Self {
            id: id.into(),
            addr: None,
            weight: 1.0,
            draining: false,
        }
    }

    /// Sets the socket address.
    #[must_use]
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = Some(addr);
        self
    }

    /// Sets the weight.
    #[must_use]
    pub fn with_weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }

    /// Marks the instance draining, or not (see [`draining`](Self::draining)).
    #[must_use]
    pub fn with_draining(mut self, draining: bool) -> Self {
        self.draining = draining;
        self
    }
}

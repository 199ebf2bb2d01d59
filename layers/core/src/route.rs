//! The routing decision that travels with a request, and the record of who
//! served it.

use http::HeaderName;
use smallvec::SmallVec;

use crate::instance::InstanceId;
use crate::key::ClientKey;

/// Header that marks the role of a request between the routing tier and an
/// instance. Its only value today is `shadow`.
pub static ROLE_HEADER: HeaderName = HeaderName::from_static("x-foresight-role");

/// Optional response header naming the instance that served a request.
pub static INSTANCE_HEADER: HeaderName = HeaderName::from_static("x-foresight-instance");

/// Ranked candidates of a route; inline up to three, the usual `k`.
pub type Ranked = SmallVec<[InstanceId; 3]>;

/// Why a request goes to its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The first-ranked instance serves it.
    Primary,
    /// A later-ranked instance serves it (failover, replay, migration).
    Secondary,
    /// A copy whose response is discarded; it only warms the target.
    Shadow,
}

impl Role {
    /// The value of [`ROLE_HEADER`] for this role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
            Role::Shadow => "shadow",
        }
    }
}

/// A routing decision, stored in request extensions by the shard layer and
/// read by the layers below it.
#[derive(Clone, Debug)]
pub struct Route {
    /// The client key the decision was made for.
    pub key: ClientKey,
    /// Candidates by rendezvous rank, best first, all distinct.
    pub ranked: Ranked,
    /// The instance this request is to be sent to.
    pub target: InstanceId,
    /// Why it goes there.
    pub role: Role,
}

impl Route {
    /// A primary route to the first ranked candidate.
    ///
    /// Returns `None` when `ranked` is empty.
    pub fn primary(key: ClientKey, ranked: Ranked) -> Option<Self> {
        let target = ranked.first()?.clone();
        Some(Self {
            key,
            ranked,
            target,
            role: Role::Primary,
        })
    }

    /// The candidate ranked after `instance`, if any.
    pub fn next_after(&self, instance: &InstanceId) -> Option<&InstanceId> {
        let at = self.ranked.iter().position(|c| c == instance)?;
        self.ranked.get(at + 1)
    }

    /// This route re-aimed at another target with another role.
    #[must_use]
    pub fn retarget(&self, target: InstanceId, role: Role) -> Self {
        Self {
            key: self.key.clone(),
            ranked: self.ranked.clone(),
            target,
            role,
        }
    }
}

/// Response extension naming the instance that produced the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedBy(pub InstanceId);

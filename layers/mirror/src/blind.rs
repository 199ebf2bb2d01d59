//! What a blind write does when its compare-and-set loses.
//!
//! [`BlindWritePolicy`], set per session key.

use std::collections::HashMap;
use std::sync::Arc;

/// What a blind write does when its compare-and-set loses, set with
/// [`SessionMirrorLayer::with_blind_write_policy`](crate::SessionMirrorLayer::with_blind_write_policy)
/// and [`with_blind_write_policy_for`](crate::SessionMirrorLayer::with_blind_write_policy_for).
///
/// A *blind* write sets keys without the handler having read any of the
/// session's data. When its compare-and-set finds a newer version, it can
/// be applied again on top of that version (its keys set over the newer
/// data, the other keys kept), or refused with a 409 like any other lost
/// compare-and-set. Reapplying is what lets a failover replay succeed when
/// the dead primary's first attempt got there first; it also means that the
/// last blind writer of a key wins over a concurrent writer of the same key,
/// which is wrong for keys whose writes must not cross (a role, a balance).
/// So the choice is made per key, with a default for the keys not named:
///
/// ```
/// use foresight_mirror::{BlindWritePolicy, SessionMirrorLayer};
/// use foresight_store::MemoryStore;
///
/// let layer = SessionMirrorLayer::new(MemoryStore::new())
///     // The default for every key (this is already the default).
///     .with_blind_write_policy(BlindWritePolicy::Reapply)
///     // A blind write of `role` is never laid over a newer version.
///     .with_blind_write_policy_for("role", BlindWritePolicy::Conflict);
/// # drop(layer);
/// ```
///
/// A blind write is reapplied only if every key it wrote is `Reapply`.
/// Each reapplication is counted (`foresight_mirror_blind_writes_reapplied_total`),
/// at most 3 per request; a refusal reaches the client as
/// [`SessionError::Conflict`](crate::SessionError::Conflict), a 409.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlindWritePolicy {
    /// Set the written keys again over the newer version, keeping its other
    /// keys (the default). Counted.
    #[default]
    Reapply,
    /// Refuse: the request fails with 409, the newer version stays.
    Conflict,
}

/// The default policy and the per-key exceptions.
#[derive(Clone, Debug, Default)]
pub(crate) struct BlindWrites {
    pub(crate) default: BlindWritePolicy,
    pub(crate) per_key: Arc<HashMap<String, BlindWritePolicy>>,
}

impl BlindWrites {
    /// The policy of `key`.
    pub(crate) fn policy(&self, key: &str) -> BlindWritePolicy {
        self.per_key.get(key).copied().unwrap_or(self.default)
    }

    /// Whether a blind write of `keys` may be reapplied.
    pub(crate) fn may_reapply<'a>(&self, mut keys: impl Iterator<Item = &'a String>) -> bool {
        keys.all(|key| self.policy(key) == BlindWritePolicy::Reapply)
    }

    pub(crate) fn set(&mut self, key: String, policy: BlindWritePolicy) {
        Arc::make_mut(&mut self.per_key).insert(key, policy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_key_must_allow_reapplying() {
        let mut blind = BlindWrites::default();
        let keys = |ks: &[&str]| ks.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        assert!(blind.may_reapply(keys(&["a", "role"]).iter()));
        blind.set("role".into(), BlindWritePolicy::Conflict);
        assert!(blind.may_reapply(keys(&["a"]).iter()));
        assert!(!blind.may_reapply(keys(&["a", "role"]).iter()));
        blind.default = BlindWritePolicy::Conflict;
        blind.set("a".into(), BlindWritePolicy::Reapply);
        assert!(blind.may_reapply(keys(&["a"]).iter()));
        assert!(!blind.may_reapply(keys(&["b"]).iter()));
    }
}

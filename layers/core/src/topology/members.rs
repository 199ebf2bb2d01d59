//! A membership snapshot: the instances, their health slots and the
//! ranking structure built from them.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::health::HealthSlot;
use crate::instance::{InstanceId, InstanceSpec};
use crate::rank::{Candidates, Ranker};
use crate::route::Ranked;

/// Why a membership change was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum TopologyError {
    /// Weights must be finite and positive.
    #[error("instance {id}: weight {weight} is not finite and positive")]
    InvalidWeight {
        /// The instance.
        id: InstanceId,
        /// The rejected weight.
        weight: f64,
    },
    /// An initial list named the same instance twice.
    #[error("instance {0} is listed twice")]
    DuplicateId(InstanceId),
}

/// One member of a snapshot: its spec and its shared health slot.
#[derive(Debug)]
pub struct Instance {
    pub(super) spec: InstanceSpec,
    pub(super) health: Arc<HealthSlot>,
}

impl Instance {
    /// The instance id.
    pub fn id(&self) -> &InstanceId {
        &self.spec.id
    }

    /// What the topology knows about it.
    pub fn spec(&self) -> &InstanceSpec {
        &self.spec
    }

    /// Its health slot, shared across snapshots while the id is a member.
    pub fn health(&self) -> &Arc<HealthSlot> {
        &self.health
    }
}

/// An immutable membership snapshot with its ranking structure.
#[derive(Debug)]
pub struct Members {
    pub(super) epoch: u64,
    pub(super) instances: Vec<Instance>,
    pub(super) index: FxHashMap<InstanceId, usize>,
    pub(super) ranker: Option<Ranker>,
    pub(super) draining: usize,
}

impl Members {
    /// Increases with every membership change.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// Whether there is no instance.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// The instances, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Instance> {
        self.instances.iter()
    }

    /// The instance named `id`.
    pub fn get(&self, id: &InstanceId) -> Option<&Instance> {
        self.index.get(id).map(|&i| &self.instances[i])
    }

    /// The best `k` distinct instances for a key hash, best first (fewer when
    /// there are fewer instances, none when there are none), borrowed from
    /// this snapshot. `k` is capped at
    /// [`MAX_CANDIDATES`](crate::rank::MAX_CANDIDATES).
    #[inline]
    pub fn top(&self, key_hash: u64, k: usize) -> impl Iterator<Item = &Instance> + '_ {
        let candidates = match &self.ranker {
            Some(ranker) => ranker.top_k(key_hash, k),
            None => Candidates::empty(),
        };
        (0..candidates.len()).map(move |i| &self.instances[candidates.as_slice()[i] as usize])
    }

    /// The ids of [`top`](Self::top), owned, for a [`Route`](crate::Route).
    #[inline]
    pub fn rank_hash(&self, key_hash: u64, k: usize) -> Ranked {
        self.top(key_hash, k).map(|i| i.spec.id.clone()).collect()
    }

    /// How many members are draining (see [`InstanceSpec::draining`]).
    #[inline]
    pub fn draining(&self) -> usize {
        self.draining
    }

    /// The exact share of all keys that instance `id` is the first choice
    /// for, from the layout (not from sampling).
    pub fn share(&self, id: &InstanceId) -> Option<f64> {
        let i = *self.index.get(id)?;
        self.ranker.as_ref().map(|r| r.share(i))
    }
}

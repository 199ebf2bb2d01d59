//! The instance set, shared by every layer of a router.
//!
//! A [`Topology`] holds the current [`Members`] snapshot behind an
//! `arc-swap`: readers on the request path load it without a lock, writers
//! (membership changes, rare) build a new snapshot under a mutex and swap it
//! in. Cloning a `Topology` shares it.

use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::{ArcSwap, Cache, Guard};
use tokio::sync::watch;
use tower::discover::{Change, Discover};

use crate::health::HealthSlot;
use crate::instance::{InstanceId, InstanceSpec};
use crate::key::ClientKey;
use crate::rank::{Ranking, SkeletonLayout};
use crate::route::Ranked;

pub use members::{Instance, Members, TopologyError};
use writer::{Writer, check_weight};

/// The instance set with weights and per-instance health, shared by every
/// layer of a router.
///
/// Cloning shares the same set: a change made through one clone is seen by
/// all. Reads are lock-free; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Topology {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    members: Arc<ArcSwap<Members>>,
    /// The epoch of `members`, readable with one relaxed load.
    epoch: AtomicU64,
    writer: Mutex<Writer>,
    changes: watch::Sender<u64>,
}

/// A per-holder cache of the current snapshot: one atomic load per access
/// while the membership is unchanged (see `arc_swap::Cache`). Routers keep
/// one per service clone.
#[derive(Clone)]
pub struct MembersCache {
    cache: Cache<Arc<ArcSwap<Members>>, Arc<Members>>,
}

impl MembersCache {
    /// The current snapshot.
    #[inline]
    pub fn load(&mut self) -> &Arc<Members> {
        self.cache.load()
    }
}

impl fmt::Debug for MembersCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MembersCache").finish_non_exhaustive()
    }
}

/// Builds a [`Topology`].
#[derive(Debug, Default)]
#[must_use]
pub struct TopologyBuilder {
    ranking: Ranking,
    instances: Vec<InstanceSpec>,
}

impl TopologyBuilder {
    /// How instances are ranked (default [`Ranking::Auto`]).
    pub fn with_ranking(mut self, ranking: Ranking) -> Self {
        self.ranking = ranking;
        self
    }

    /// The initial instances.
    pub fn with_instances(mut self, instances: impl IntoIterator<Item = InstanceSpec>) -> Self {
        self.instances.extend(instances);
        self
    }

    /// Builds the topology. The initial list is applied in a canonical order
    /// (heaviest first, then by id), so two routers built from the same list
    /// agree on every key whatever order the list came in.
    pub fn build(self) -> Result<Topology, TopologyError> {
        let mut specs = self.instances;
        for spec in &specs {
            check_weight(spec)?;
        }
        specs.sort_by(|a, b| b.weight.total_cmp(&a.weight).then_with(|| a.id.cmp(&b.id)));
        if let Some(pair) = specs.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(TopologyError::DuplicateId(pair[0].id.clone()));
        }
        let layout = match self.ranking.resolve(specs.len()) {
            Ranking::Skeleton { fanout, depth } => Some(SkeletonLayout::new(fanout, depth)),
            _ => None,
        };
        let mut writer = Writer {
            epoch: 0,
            specs: Vec::with_capacity(specs.len()),
            health: HashMap::new(),
            layout,
            built: false,
        };
        for spec in specs {
            writer.upsert(spec);
        }
        writer.built = true;
        let members = writer.snapshot();
        Ok(Topology {
            inner: Arc::new(Inner {
                members: Arc::new(ArcSwap::from_pointee(members)),
                epoch: AtomicU64::new(0),
                writer: Mutex::new(writer),
                changes: watch::Sender::new(0),
            }),
        })
    }
}

impl Topology {
    /// A builder, to choose the [`Ranking`].
    pub fn builder() -> TopologyBuilder {
        TopologyBuilder::default()
    }

    /// A topology of these instances, ranked by [`Ranking::Auto`].
    pub fn from_instances(
        instances: impl IntoIterator<Item = InstanceSpec>,
    ) -> Result<Self, TopologyError> {
        Self::builder().with_instances(instances).build()
    }

    /// The current snapshot, without a lock or a reference-count increment.
    /// Keep the guard for the duration of one decision only.
    #[inline]
    pub fn load(&self) -> Guard<Arc<Members>> {
        self.inner.members.load()
    }

    /// The current snapshot as an owned `Arc`.
    pub fn snapshot(&self) -> Arc<Members> {
        self.inner.members.load_full()
    }

    /// The epoch of the current snapshot.
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Acquire)
    }

    /// A snapshot cache for one holder; see [`MembersCache`].
    pub fn cache(&self) -> MembersCache {
        MembersCache {
            cache: Cache::new(self.inner.members.clone()),
        }
    }

    /// The best `k` distinct instances for `key` under `seed`, best first.
    pub fn rank(&self, key: &ClientKey, seed: u64, k: usize) -> Ranked {
        self.load().rank_hash(key.hash_with_seed(seed), k)
    }

    /// The health slot of `id`, while it is a member.
    pub fn health(&self, id: &InstanceId) -> Option<Arc<HealthSlot>> {
        self.load().get(id).map(|i| i.health.clone())
    }

    /// The current instance specs, in insertion order.
    pub fn instances(&self) -> Vec<InstanceSpec> {
        self.load().iter().map(|i| i.spec.clone()).collect()
    }

    /// Adds an instance, or updates the weight and address of a member (its
    /// health slot is kept).
    pub fn insert(&self, spec: InstanceSpec) -> Result<(), TopologyError> {
        check_weight(&spec)?;
        self.change(|w| {
            w.upsert(spec);
            true
        });
        Ok(())
    }

    /// Removes an instance; its keys move to their next candidates.
    pub fn remove(&self, id: &InstanceId) -> Option<InstanceSpec> {
        let mut removed = None;
        self.change(|w| {
            removed = w.remove(id);
            removed.is_some()
        });
        removed
    }

    /// Replaces the whole instance set in one step: members not listed are
    /// removed, listed ones added or updated (a member that stays keeps its
    /// health slot), and readers see either the old set or the new one,
    /// never a mix. Nothing changes if a spec is invalid or listed twice.
    pub fn replace(
        &self,
        specs: impl IntoIterator<Item = InstanceSpec>,
    ) -> Result<(), TopologyError> {
        let specs: Vec<InstanceSpec> = specs.into_iter().collect();
        for spec in &specs {
            check_weight(spec)?;
        }
        let mut ids: Vec<&InstanceId> = specs.iter().map(|s| &s.id).collect();
        ids.sort();
        if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(TopologyError::DuplicateId(pair[0].clone()));
        }
        self.change(|w| {
            let gone: Vec<InstanceId> = w
                .specs
                .iter()
                .map(|s| s.id.clone())
                .filter(|id| !specs.iter().any(|s| &s.id == id))
                .collect();
            for id in &gone {
                w.remove(id);
            }
            for spec in specs {
                w.upsert(spec);
            }
            true
        });
        Ok(())
    }

    /// Marks a member draining or not (see [`InstanceSpec::draining`]);
    /// returns whether it is a member. A change is a new snapshot.
    pub fn set_draining(&self, id: &InstanceId, draining: bool) -> bool {
        let mut found = false;
        self.change(|w| match w.specs.iter_mut().find(|s| &s.id == id) {
            Some(spec) => {
                found = true;
                let changed = spec.draining != draining;
                spec.draining = draining;
                changed
            }
            None => false,
        });
        found
    }

    /// A receiver that sees the epoch of every new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Applies a `tower::discover` stream of instance changes until it ends,
    /// the stream's key naming the instance. Returns the stream's error, if
    /// any; a change with an invalid weight is skipped and logged.
    pub async fn follow<D>(&self, discover: D) -> Result<(), D::Error>
    where
        D: Discover<Key = InstanceId, Service = InstanceSpec>,
    {
        let mut discover = pin!(discover);
        while let Some(change) = poll_fn(|cx| discover.as_mut().poll_discover(cx)).await {
            match change? {
                Change::Insert(id, mut spec) => {
                    spec.id = id;
                    if let Err(error) = self.insert(spec) {
                        tracing::warn!(%error, "discovered instance skipped");
                    }
                }
                Change::Remove(id) => {
                    self.remove(&id);
                }
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        // A panic while holding the lock leaves a consistent writer (every
        // mutation completes before the snapshot is swapped in), so a
        // poisoned lock is safe to reuse.
        self.inner
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn change(&self, apply: impl FnOnce(&mut Writer) -> bool) {
        let mut writer = self.lock();
        if !apply(&mut writer) {
            return;
        }
        writer.epoch += 1;
        let members = writer.snapshot();
        let epoch = members.epoch;
        self.inner.members.store(Arc::new(members));
        self.inner.epoch.store(epoch, Ordering::Release);
        self.inner.changes.send_replace(epoch);
        tracing::debug!(epoch, instances = writer.specs.len(), "topology changed");
    }
}

mod members;
mod writer;

#[cfg(test)]
mod tests;

//! Weighted rendezvous (highest random weight) ranking.
//!
//! Every instance gets a score per key, `-w / ln(u)` where `u` is a uniform
//! draw from a hash of the key and the instance; the instances with the
//! highest scores are the key's candidates, best first. Adding an instance
//! takes keys only for itself, removing one moves only its keys, and each
//! instance owns a share of keys proportional to its weight. When all weights
//! are equal the comparison of the raw hashes gives the same order, and the
//! logarithm is skipped.
//!
//! Two layouts share these properties:
//! - [`Ranking::Flat`] scores every instance: O(n) per key, about a
//!   nanosecond and a half per instance. The default below
//!   [`SKELETON_THRESHOLD`] instances.
//! - [`Ranking::Skeleton`] arranges the instances in a fixed number of groups
//!   of equal total weight (each new instance joins the lightest group) and
//!   ranks the groups, then the members of the best group: O(√n) per key.
//!   Because the group scores do not depend on membership, an instance that
//!   joins or leaves moves keys only within its own group, and only its own
//!   keys. The layout depends on the order of membership changes: routers
//!   that apply the same changes in the same order (or are built from the
//!   same list) agree on every key; a router built from scratch from a list
//!   that another router reached by other changes may lay it out differently.
//!
//! The choice is made once, when the topology is built, so that a topology
//! that grows or shrinks across the threshold does not reshuffle every key.

mod flat;
mod score;
mod skeleton;
mod top_k;

pub(crate) use flat::Flat;
pub(crate) use score::node_hash;
pub(crate) use skeleton::{Skeleton, SkeletonLayout};
pub(crate) use top_k::Candidates;

/// Instance count from which [`Ranking::Auto`] lays instances out in a
/// skeleton.
pub const SKELETON_THRESHOLD: usize = 512;

/// Most candidates a ranking returns.
pub const MAX_CANDIDATES: usize = 8;

/// How a topology ranks its instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ranking {
    /// Flat below [`SKELETON_THRESHOLD`] initial instances, skeleton with
    /// about √n groups from there.
    #[default]
    Auto,
    /// Score every instance.
    Flat,
    /// Fixed number of groups (at least 1).
    Skeleton {
        /// Number of groups.
        groups: usize,
    },
}

impl Ranking {
    /// The concrete layout for a topology that starts with `n` instances.
    pub(crate) fn resolve(self, n: usize) -> Ranking {
        match self {
            Ranking::Auto if n >= SKELETON_THRESHOLD => Ranking::Skeleton {
                groups: (n as f64).sqrt().ceil() as usize,
            },
            Ranking::Auto => Ranking::Flat,
            Ranking::Skeleton { groups } => Ranking::Skeleton {
                groups: groups.max(1),
            },
            Ranking::Flat => Ranking::Flat,
        }
    }
}

/// A ranking structure over one membership snapshot.
#[derive(Debug)]
pub(crate) enum Ranker {
    Flat(Flat),
    Skeleton(Skeleton),
}

impl Ranker {
    /// Indices of the best `k` instances for key hash `key`, best first.
    #[inline]
    pub(crate) fn top_k(&self, key: u64, k: usize) -> Candidates {
        match self {
            Ranker::Flat(flat) => flat.top_k(key, k),
            Ranker::Skeleton(skeleton) => skeleton.top_k(key, k),
        }
    }

    /// The exact share of keys instance `index` owns.
    pub(crate) fn share(&self, index: usize) -> f64 {
        match self {
            Ranker::Flat(flat) => flat.share(index),
            Ranker::Skeleton(skeleton) => skeleton.share(index),
        }
    }
}

#[cfg(test)]
mod tests;

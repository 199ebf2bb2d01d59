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
//! - [`Ranking::Skeleton`] arranges the instances in a fixed tree: `depth`
//!   levels of `fanout` branches, instances in the leaves, sibling branches of
//!   equal total weight (a new instance descends to the lightest branch at
//!   every level). A key ranks the branches of each level, then the members
//!   of the best leaf: 160 draws instead of 4096 at n = 4096.
//!   Because a branch's score depends only on its position, not on its
//!   members, an instance that joins or leaves moves keys only within its own
//!   leaf, and only its own keys. The layout depends on the order of membership changes: routers
//!   that apply the same changes in the same order (or are built from the
//!   same list) agree on every key; a router built from scratch from a list
//!   that another router reached by other changes may lay it out differently.
//!
//! The choice is made once, when the topology is built, so that a topology
//! that grows or shrinks across the threshold does not reshuffle every key.

mod bounded;
mod flat;
mod score;
mod skeleton;
mod top_k;

pub use bounded::{BoundedLoad, DEFAULT_BALANCE_FACTOR};
pub(crate) use flat::Flat;
pub(crate) use score::node_hash;
pub(crate) use skeleton::{Skeleton, SkeletonLayout};
pub(crate) use top_k::Candidates;

/// Instance count from which [`Ranking::Auto`] lays instances out in a
/// skeleton.
pub const SKELETON_THRESHOLD: usize = 512;

/// Members per leaf that [`Ranking::Auto`] aims for. Siblings own equal
/// shares of keys, so a leaf of `m` members next to one of `m + 1` skews
/// shares by `1/m`: 128 keeps the skew under 1% while a key scores about
/// `n/128 + 128` instances instead of `n`.
pub const SKELETON_LEAF: usize = 128;

/// Most candidates a ranking returns.
pub const MAX_CANDIDATES: usize = 8;

/// How a topology ranks its instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ranking {
    /// Flat below [`SKELETON_THRESHOLD`] initial instances; from there a
    /// skeleton whose leaves hold about [`SKELETON_LEAF`] instances: depth 1
    /// up to 128 leaves (32 groups of 128 at n = 4096), depth 2 beyond.
    #[default]
    Auto,
    /// Score every instance.
    Flat,
    /// A fixed tree of branches (each at least 1).
    Skeleton {
        /// Branches under every branch.
        fanout: usize,
        /// Levels of branches above the leaves.
        depth: usize,
    },
}

impl Ranking {
    /// The concrete layout for a topology that starts with `n` instances.
    pub(crate) fn resolve(self, n: usize) -> Ranking {
        match self {
            Ranking::Auto if n >= SKELETON_THRESHOLD => {
                let leaves = n.div_ceil(SKELETON_LEAF);
                let depth = if leaves <= SKELETON_LEAF { 1 } else { 2 };
                Ranking::Skeleton {
                    fanout: ((leaves as f64).powf(1.0 / depth as f64) - 1e-9).ceil() as usize,
                    depth,
                }
            }
            Ranking::Auto => Ranking::Flat,
            Ranking::Skeleton { fanout, depth } => Ranking::Skeleton {
                fanout: fanout.max(1),
                depth: depth.clamp(1, 4),
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

use std::collections::HashMap;

use super::flat::{rank_uniform, rank_weighted};
use super::score::{draw, node_hash};
use super::top_k::Candidates;
use crate::instance::InstanceId;

/// Where each instance sits in the skeleton: a tree of `depth` levels of
/// `fanout` fixed branches each, instances in the leaves. Kept by the
/// topology across membership changes: an instance never moves while it is a
/// member, and a newcomer descends to the lightest branch at every level, so
/// that sibling branches carry equal weight.
#[derive(Clone, Debug)]
pub(crate) struct SkeletonLayout {
    fanout: usize,
    depth: usize,
    /// Per level, the total weight and the member count of every branch.
    weight: Vec<Vec<f64>>,
    count: Vec<Vec<usize>>,
    leaf_of: HashMap<InstanceId, usize>,
}

impl SkeletonLayout {
    pub(crate) fn new(fanout: usize, depth: usize) -> Self {
        let (fanout, depth) = (fanout.max(1), depth.max(1));
        let sizes: Vec<usize> = (1..=depth).map(|l| fanout.pow(l as u32)).collect();
        Self {
            fanout,
            depth,
            weight: sizes.iter().map(|&s| vec![0.0; s]).collect(),
            count: sizes.iter().map(|&s| vec![0; s]).collect(),
            leaf_of: HashMap::new(),
        }
    }

    /// The branch index at each level on the way to `leaf`.
    fn path(&self, leaf: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.depth).map(move |level| {
            (
                level,
                leaf / self.fanout.pow((self.depth - 1 - level) as u32),
            )
        })
    }

    fn add(&mut self, leaf: usize, weight: f64, members: isize) {
        let path: Vec<_> = self.path(leaf).collect();
        for (level, node) in path {
            self.count[level][node] = self.count[level][node].saturating_add_signed(members);
            self.weight[level][node] += weight;
            if self.count[level][node] == 0 {
                // No rounding residue on an empty branch.
                self.weight[level][node] = 0.0;
            }
        }
    }

    /// Places a new instance: the lightest branch (lowest index on ties) at
    /// every level.
    pub(crate) fn join(&mut self, id: &InstanceId, weight: f64) {
        if self.leaf_of.contains_key(id) {
            return;
        }
        let mut node = 0;
        for level in 0..self.depth {
            let first = node * self.fanout;
            node = (first..first + self.fanout)
                .min_by(|&a, &b| self.weight[level][a].total_cmp(&self.weight[level][b]))
                .unwrap_or(first);
        }
        self.add(node, weight, 1);
        self.leaf_of.insert(id.clone(), node);
    }

    /// Records a weight change of a member.
    pub(crate) fn reweigh(&mut self, id: &InstanceId, old: f64, new: f64) {
        if let Some(&leaf) = self.leaf_of.get(id) {
            self.add(leaf, new - old, 0);
        }
    }

    pub(crate) fn leave(&mut self, id: &InstanceId, weight: f64) {
        if let Some(leaf) = self.leaf_of.remove(id) {
            self.add(leaf, -weight, -1);
        }
    }

    pub(crate) fn leaf_of(&self, id: &InstanceId) -> usize {
        self.leaf_of[id]
    }
}

#[derive(Debug)]
struct Leaf {
    /// Instance indices of the members.
    members: Vec<u32>,
    hashes: Vec<u64>,
    /// `None` when the members' weights are equal.
    weights: Option<Vec<f64>>,
}

#[derive(Debug)]
enum Node {
    /// Non-empty branches, with their fixed hashes.
    Branch {
        hashes: Vec<u64>,
        children: Vec<Node>,
    },
    Leaf(Leaf),
}

/// Ranking over a [`SkeletonLayout`]: at each level the non-empty branches
/// are ranked uniformly (siblings carry equal weight), then the members of
/// the best leaf by weight. A branch's hash depends only on its position, not
/// on its members, which confines every membership change to one leaf.
#[derive(Debug)]
pub(crate) struct Skeleton {
    root: Node,
    shares: Vec<f64>,
}

/// Decorrelates the draws of successive levels for one key.
const LEVEL_SALT: [u64; 4] = [
    0x9e37_79b9_7f4a_7c15,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
    0x27d4_eb2f_1656_67c5,
];

fn level_key(key: u64, level: usize) -> u64 {
    draw(key, LEVEL_SALT[level % LEVEL_SALT.len()] ^ level as u64)
}

impl Skeleton {
    /// Builds the ranking from instance hashes and weights (in instance index
    /// order) and the leaf of each instance.
    pub(crate) fn new(
        hashes: &[u64],
        weights: &[f64],
        layout: &SkeletonLayout,
        leaf_of: impl Fn(usize) -> usize,
    ) -> Self {
        let mut shares = vec![0.0; hashes.len()];
        let all: Vec<(u32, usize)> = (0..hashes.len()).map(|i| (i as u32, leaf_of(i))).collect();
        let members = Members {
            layout,
            hashes,
            weights,
        };
        let root = members.build(0, 0, &all, 1.0, &mut shares);
        Self { root, shares }
    }

    #[inline]
    pub(crate) fn top_k(&self, key: u64, k: usize) -> Candidates {
        let mut out = Candidates::empty();
        collect(&self.root, key, 0, k, &mut out);
        out
    }

    pub(crate) fn share(&self, index: usize) -> f64 {
        self.shares[index]
    }
}

/// What every level of the tree is built from.
struct Members<'a> {
    layout: &'a SkeletonLayout,
    hashes: &'a [u64],
    weights: &'a [f64],
}

impl Members<'_> {
    fn build(
        &self,
        level: usize,
        node: usize,
        members: &[(u32, usize)],
        share: f64,
        shares: &mut [f64],
    ) -> Node {
        let Members {
            layout,
            hashes,
            weights,
        } = *self;
        if level == layout.depth {
            let member_weights: Vec<f64> =
                members.iter().map(|&(i, _)| weights[i as usize]).collect();
            let total: f64 = member_weights.iter().sum();
            for (&(i, _), w) in members.iter().zip(&member_weights) {
                shares[i as usize] = share * w / total;
            }
            let uniform = member_weights.windows(2).all(|w| w[0] == w[1]);
            return Node::Leaf(Leaf {
                members: members.iter().map(|&(i, _)| i).collect(),
                hashes: members.iter().map(|&(i, _)| hashes[i as usize]).collect(),
                weights: (!uniform).then_some(member_weights),
            });
        }
        let span = layout.fanout.pow((layout.depth - 1 - level) as u32);
        let mut by_child: Vec<Vec<(u32, usize)>> = vec![Vec::new(); layout.fanout];
        for &(i, leaf) in members {
            by_child[(leaf / span) % layout.fanout].push((i, leaf));
        }
        let non_empty = by_child.iter().filter(|c| !c.is_empty()).count();
        let mut child_hashes = Vec::with_capacity(non_empty);
        let mut children = Vec::with_capacity(non_empty);
        for (c, child_members) in by_child.iter().enumerate() {
            if child_members.is_empty() {
                continue;
            }
            let child = node * layout.fanout + c;
            child_hashes.push(node_hash(&format!("foresight-skeleton-{level}-{child}")));
            children.push(self.build(
                level + 1,
                child,
                child_members,
                share / non_empty as f64,
                shares,
            ));
        }
        Node::Branch {
            hashes: child_hashes,
            children,
        }
    }
}

fn collect(node: &Node, key: u64, level: usize, k: usize, out: &mut Candidates) {
    let want = k - out.len();
    let level_key = level_key(key, level);
    match node {
        Node::Branch { hashes, children } => {
            // The best branch alone usually holds all k candidates: rank the
            // others only when it falls short.
            let best = rank_uniform(hashes, level_key, 1).indices()[0];
            collect(&children[best as usize], key, level + 1, k, out);
            if out.len() >= k || hashes.len() == 1 {
                return;
            }
            let more = k - out.len() + 1;
            for &c in rank_uniform(hashes, level_key, more)
                .indices()
                .iter()
                .skip(1)
            {
                collect(&children[c as usize], key, level + 1, k, out);
                if out.len() >= k {
                    return;
                }
            }
        }
        Node::Leaf(leaf) => {
            let mut take = |m: &u32| out.push(leaf.members[*m as usize]);
            match &leaf.weights {
                None => rank_uniform(&leaf.hashes, level_key, want)
                    .indices()
                    .iter()
                    .for_each(&mut take),
                Some(w) => rank_weighted(&leaf.hashes, w, level_key, want)
                    .indices()
                    .iter()
                    .for_each(&mut take),
            }
        }
    }
}

use std::collections::HashMap;

use super::flat::{rank_uniform, rank_weighted};
use super::score::draw;
use super::top_k::Candidates;
use crate::instance::InstanceId;

/// Which group each instance belongs to. Kept by the topology across
/// membership changes: an instance never changes group while it is a member.
#[derive(Clone, Debug)]
pub(crate) struct SkeletonLayout {
    group_weight: Vec<f64>,
    group_of: HashMap<InstanceId, usize>,
}

impl SkeletonLayout {
    pub(crate) fn new(groups: usize) -> Self {
        Self {
            group_weight: vec![0.0; groups.max(1)],
            group_of: HashMap::new(),
        }
    }

    /// Places a new instance in the lightest group (lowest index on ties).
    pub(crate) fn join(&mut self, id: &InstanceId, weight: f64) {
        if self.group_of.contains_key(id) {
            return;
        }
        let (group, _) =
            self.group_weight
                .iter()
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |best, (g, &w)| {
                        if w < best.1 { (g, w) } else { best }
                    },
                );
        self.group_weight[group] += weight;
        self.group_of.insert(id.clone(), group);
    }

    /// Records a weight change of a member.
    pub(crate) fn reweigh(&mut self, id: &InstanceId, old: f64, new: f64) {
        if let Some(&g) = self.group_of.get(id) {
            self.group_weight[g] += new - old;
        }
    }

    pub(crate) fn leave(&mut self, id: &InstanceId, weight: f64) {
        if let Some(g) = self.group_of.remove(id) {
            self.group_weight[g] -= weight;
            if self.group_of.values().all(|&other| other != g) {
                self.group_weight[g] = 0.0;
            }
        }
    }

    pub(crate) fn group_of(&self, id: &InstanceId) -> usize {
        self.group_of[id]
    }

    pub(crate) fn groups(&self) -> usize {
        self.group_weight.len()
    }
}

#[derive(Debug)]
struct Group {
    /// Instance indices of the members.
    members: Vec<u32>,
    hashes: Vec<u64>,
    weights: Option<Vec<f64>>,
    total_weight: f64,
}

/// Two-level ranking: groups first (uniformly: every non-empty group owns the
/// same share of keys), then members within the best groups.
#[derive(Debug)]
pub(crate) struct Skeleton {
    /// Hashes of the non-empty groups, aligned with `groups`.
    group_hashes: Vec<u64>,
    groups: Vec<Group>,
    /// Group position of each instance index, for `share`.
    position: Vec<(u32, u32)>,
}

/// The fixed hash of group `g`: independent of membership, which is what
/// confines every change to one group.
fn group_hash(g: usize) -> u64 {
    super::node_hash(&format!("foresight-skeleton-group-{g}"))
}

impl Skeleton {
    /// Builds the ranking from instance hashes and weights, in instance index
    /// order, and the group of each instance.
    pub(crate) fn new(
        hashes: &[u64],
        weights: &[f64],
        group: impl Fn(usize) -> usize,
        groups: usize,
    ) -> Self {
        let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); groups];
        for i in 0..hashes.len() {
            buckets[group(i)].push(i as u32);
        }
        let mut position = vec![(0, 0); hashes.len()];
        let mut group_hashes = Vec::new();
        let mut built = Vec::new();
        for (g, members) in buckets.into_iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            let member_hashes: Vec<u64> = members.iter().map(|&i| hashes[i as usize]).collect();
            let member_weights: Vec<f64> = members.iter().map(|&i| weights[i as usize]).collect();
            let uniform = member_weights.windows(2).all(|w| w[0] == w[1]);
            for (slot, &i) in members.iter().enumerate() {
                position[i as usize] = (built.len() as u32, slot as u32);
            }
            group_hashes.push(group_hash(g));
            built.push(Group {
                total_weight: member_weights.iter().sum(),
                hashes: member_hashes,
                weights: (!uniform).then_some(member_weights),
                members,
            });
        }
        Self {
            group_hashes,
            groups: built,
            position,
        }
    }

    #[inline]
    pub(crate) fn top_k(&self, key: u64, k: usize) -> Candidates {
        let mut out = Candidates::empty();
        let groups = rank_uniform(&self.group_hashes, key, k);
        // Members are ranked with a key hash decorrelated from the group
        // draw, so the member order does not echo the group order.
        let member_key = draw(key, 0x9e37_79b9_7f4a_7c15);
        for &g in groups.indices() {
            let group = &self.groups[g as usize];
            let want = k - out.len();
            let mut take = |m: &u32| out.push(group.members[*m as usize]);
            match &group.weights {
                None => rank_uniform(&group.hashes, member_key, want)
                    .indices()
                    .iter()
                    .for_each(&mut take),
                Some(w) => rank_weighted(&group.hashes, w, member_key, want)
                    .indices()
                    .iter()
                    .for_each(&mut take),
            }
            if out.len() >= k {
                break;
            }
        }
        out
    }

    pub(crate) fn share(&self, index: usize) -> f64 {
        let (g, slot) = self.position[index];
        let group = &self.groups[g as usize];
        let within = match &group.weights {
            None => 1.0 / group.members.len() as f64,
            Some(w) => w[slot as usize] / group.total_weight,
        };
        within / self.groups.len() as f64
    }
}

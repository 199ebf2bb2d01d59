//! The order of a key's candidates.
//!
//! Rendezvous order first; then, only when one of them applies:
//! - **drain**: draining instances go after every other candidate, so they
//!   take no new sessions and theirs move at their next request;
//! - **slow start**: an instance that joined or was readmitted less than
//!   the ramp ago is the primary of a key only if the key's own draw in
//!   `[0, 1)` (a hash of the key and the instance) is below the share of
//!   the ramp elapsed; otherwise the key keeps its next candidate. The draw
//!   is fixed per key, so each key moves to the instance once, and the
//!   share of keys it takes grows linearly to its full weight;
//! - **bounded loads**: see [`BoundedLoad`].
//!
//! Without any of them the order is the snapshot's, with no extra cost.

use std::time::Duration;

use foresight_core::HealthSlot;
use foresight_core::Ranked;
use foresight_core::rank::{BoundedLoad, MAX_CANDIDATES};
use foresight_core::topology::{Instance, Members};
use smallvec::SmallVec;

/// What the shard layer applies on top of rendezvous order.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ordering {
    pub(crate) bounded: Option<BoundedLoad>,
    pub(crate) slow_start: Option<Duration>,
}

/// The key's `replicas` candidates, best first; whether bounded loads moved
/// the key off its first candidate.
pub(crate) fn rank(
    members: &Members,
    hash: u64,
    replicas: usize,
    order: Ordering,
) -> (Ranked, bool) {
    let ramping = order
        .slow_start
        .filter(|&ramp| HealthSlot::any_ramping(ramp));
    if order.bounded.is_none() && ramping.is_none() && members.draining() == 0 {
        return (members.rank_hash(hash, replicas), false);
    }
    let mut candidates: SmallVec<[&Instance; MAX_CANDIDATES]> =
        members.top(hash, MAX_CANDIDATES.max(replicas)).collect();
    if members.draining() > 0 {
        // A stable partition: the others keep their rendezvous order.
        candidates.sort_by_key(|i| i.spec().draining);
    }
    if let Some(ramp) = ramping {
        defer_ramping(&mut candidates, hash, ramp);
    }
    let mut moved = false;
    if let Some(bounded) = order.bounded {
        moved = pick_bounded(members, &mut candidates, bounded);
    }
    let ranked = candidates
        .iter()
        .take(replicas)
        .map(|i| i.id().clone())
        .collect();
    (ranked, moved)
}

/// Moves to the front the first candidate that is not draining and whose
/// ramp covers this key.
fn defer_ramping(candidates: &mut [&Instance], hash: u64, ramp: Duration) {
    let takes = |i: &Instance| {
        let share = i.health().ramp(ramp);
        share >= 1.0 || draw(hash, i) < share
    };
    if let Some(at) = candidates
        .iter()
        .position(|i| i.spec().draining || takes(i))
        .filter(|&at| at > 0 && !candidates[at].spec().draining)
    {
        candidates[..=at].rotate_right(1);
    }
}

/// The key's fixed draw in `[0, 1)` for an instance.
fn draw(hash: u64, instance: &Instance) -> f64 {
    let id = xxhash_rust::xxh3::xxh3_64(instance.id().as_str().as_bytes());
    let mixed = xxhash_rust::xxh3::xxh3_64_with_seed(&hash.to_le_bytes(), id);
    (mixed >> 11) as f64 / (1u64 << 53) as f64
}

/// Puts first the candidate the bounded-load rule picks; whether that moved
/// the key.
fn pick_bounded(members: &Members, candidates: &mut [&Instance], bounded: BoundedLoad) -> bool {
    let total: u64 = members
        .iter()
        .map(|i| u64::from(i.health().in_flight()))
        .sum();
    let load = |i: &&Instance| i.health().in_flight();
    // Draining candidates (last) are no choice while another is left.
    let usable = candidates
        .iter()
        .take_while(|i| !i.spec().draining)
        .count()
        .max(1);
    let usable = &candidates[..usable.min(candidates.len())];
    let chosen = bounded
        .pick(usable.iter().map(load), total, members.len())
        .or_else(|| (0..usable.len()).min_by_key(|&i| load(&usable[i])))
        .unwrap_or(0);
    if chosen == 0 {
        return false;
    }
    candidates[..=chosen].rotate_right(1);
    true
}

#[cfg(test)]
mod tests;

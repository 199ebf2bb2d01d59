//! The bounded-load rule of consistent hashing; see [`BoundedLoad`].

/// Default balance factor: no instance above 1.25 × the mean.
pub const DEFAULT_BALANCE_FACTOR: f64 = 1.25;

/// Consistent hashing with bounded loads (Mirrokni, Thorup and
/// Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018; the
/// `hash_balance_factor` of Envoy and `hash-balance-factor` of HAProxy).
///
/// With `m` requests in flight (counting the one being placed) over `n`
/// instances, no instance may hold more than `⌈c · m / n⌉`. A request goes
/// to the first instance of its key's rendezvous order that is below that
/// cap, so a key leaves its primary only while the primary is full, and then
/// goes to its named secondary first. Since `c ≥ 1`, the caps add up to at
/// least `m`: walking the whole order always finds room.
///
/// ```
/// use foresight_core::rank::BoundedLoad;
///
/// let bounded = BoundedLoad::new(1.25);
/// // 8 requests in flight over 4 instances, one more arriving: cap ⌈1.25 · 9 / 4⌉ = 3.
/// assert_eq!(bounded.cap(8, 4), 3);
/// // Loads in the key's rendezvous order: the primary is full, the secondary has room.
/// assert_eq!(bounded.pick([3, 1, 2, 2], 8, 4), Some(1));
/// assert_eq!(bounded.pick([2, 1, 2, 3], 8, 4), Some(0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoundedLoad {
    factor: f64,
}

impl Default for BoundedLoad {
    fn default() -> Self {
        Self::new(DEFAULT_BALANCE_FACTOR)
    }
}

impl BoundedLoad {
    /// Balance factor `c`, at least 1 (smaller values are raised to 1, NaN
    /// is the default).
    pub fn new(factor: f64) -> Self {
        let factor = if factor.is_nan() {
            DEFAULT_BALANCE_FACTOR
        } else {
            factor.max(1.0)
        };
        Self { factor }
    }

    /// The balance factor.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The most requests one of `instances` may hold once a new request
    /// joins the `in_flight` ones: `⌈c · (in_flight + 1) / instances⌉`.
    pub fn cap(&self, in_flight: u64, instances: usize) -> u64 {
        if instances == 0 {
            return 0;
        }
        let mean = (in_flight + 1) as f64 / instances as f64;
        // The small epsilon keeps exact products (1.25 · 8 = 10) from being
        // rounded up by floating-point error.
        (self.factor * mean - 1e-9).ceil().max(1.0) as u64
    }

    /// The position in `loads` (in-flight counts in the key's rendezvous
    /// order) of the first instance below the cap, or `None` when every
    /// listed one is full (the caller then takes the least loaded).
    pub fn pick(
        &self,
        loads: impl IntoIterator<Item = u32>,
        in_flight: u64,
        instances: usize,
    ) -> Option<usize> {
        let cap = self.cap(in_flight, instances);
        loads.into_iter().position(|load| u64::from(load) < cap)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A key's rendezvous order over `n` instances (a permutation from its
    /// hash, as the real ranking gives).
    fn order(key: u64, n: usize) -> Vec<usize> {
        let mut ids: Vec<usize> = (0..n).collect();
        ids.sort_by_key(|&i| {
            let mut h = key ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            std::cmp::Reverse(h)
        });
        ids
    }

    #[test]
    fn caps() {
        let b = BoundedLoad::new(1.25);
        assert_eq!(b.cap(0, 4), 1);
        assert_eq!(b.cap(7, 4), 3); // 1.25 · 2 = 2.5 → 3
        assert_eq!(b.cap(15, 4), 5); // 1.25 · 4 = 5 exactly
        assert_eq!(b.cap(3, 0), 0);
        assert_eq!(BoundedLoad::new(0.5).factor(), 1.0);
        assert_eq!(BoundedLoad::new(f64::NAN).factor(), DEFAULT_BALANCE_FACTOR);
    }

    proptest! {
        /// Requests arrive and leave in any order; every placement walks
        /// the key's whole order. The chosen instance is within the cap
        /// after the placement (while requests only arrive, so is every
        /// instance; a departure lowers the cap below loads placed before
        /// it, which the rule does not move), and a key leaves its primary
        /// only when the primary is at the cap.
        #[test]
        fn no_instance_exceeds_the_cap_and_keys_move_only_when_they_must(
            n in 1usize..12,
            factor in 1.0f64..2.0,
            events in proptest::collection::vec((any::<u64>(), any::<bool>()), 1..400),
        ) {
            let bounded = BoundedLoad::new(factor);
            let mut loads = vec![0u32; n];
            let mut placed: Vec<usize> = Vec::new();
            let mut departed = false;
            for (key, arrive) in events {
                if !arrive && !placed.is_empty() {
                    departed = true;
                    let at = (key as usize) % placed.len();
                    let instance = placed.swap_remove(at);
                    loads[instance] -= 1;
                    continue;
                }
                let in_flight = placed.len() as u64;
                let cap = bounded.cap(in_flight, n);
                let ranked = order(key, n);
                let position = bounded
                    .pick(ranked.iter().map(|&i| loads[i]), in_flight, n)
                    .expect("the caps add up to at least the requests");
                let primary_full = u64::from(loads[ranked[0]]) >= cap;
                prop_assert_eq!(position == 0, !primary_full);
                let target = ranked[position];
                loads[target] += 1;
                placed.push(target);
                prop_assert!(u64::from(loads[target]) <= cap, "{loads:?} cap {cap}");
                if !departed {
                    prop_assert!(loads.iter().all(|&l| u64::from(l) <= cap), "{loads:?} cap {cap}");
                }
            }
        }
    }
}

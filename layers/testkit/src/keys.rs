//! Client keys chosen by where they route, for fault tests.

use foresight_core::{ClientKey, Topology};

/// `count` keys named `<prefix>-<n>`: the first half with `victim` as their
/// primary under `seed` (the seed of the `ShardLayer` under test), the
/// second half with another primary.
///
/// # Panics
///
/// When the first 100,000 names do not hold enough of either kind (a victim
/// with almost no weight, or not a member).
pub fn half_on_victim(
    topology: &Topology,
    victim: &str,
    prefix: &str,
    seed: u64,
    count: usize,
) -> Vec<String> {
    let (mut on_victim, mut others) = (Vec::new(), Vec::new());
    for n in 0..100_000 {
        let key = format!("{prefix}-{n}");
        let ranked = topology.rank(&ClientKey::from(key.as_str()), seed, 1);
        let Some(primary) = ranked.first() else {
            break;
        };
        if primary.as_str() == victim {
            if on_victim.len() < count / 2 {
                on_victim.push(key);
            }
        } else if others.len() < count - count / 2 {
            others.push(key);
        }
        if on_victim.len() + others.len() == count {
            break;
        }
    }
    assert_eq!(
        on_victim.len() + others.len(),
        count,
        "not enough keys with and without {victim} as primary"
    );
    on_victim.extend(others);
    on_victim
}

#[cfg(test)]
mod tests {
    use super::*;
    use foresight_core::InstanceSpec;

    #[test]
    fn the_first_half_routes_to_the_victim_and_the_rest_elsewhere() {
        let topology = Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap();
        let keys = half_on_victim(&topology, "b", "k", 7, 10);
        assert_eq!(keys.len(), 10);
        for (i, key) in keys.iter().enumerate() {
            let primary = topology.rank(&ClientKey::from(key.as_str()), 7, 1)[0].clone();
            assert_eq!(primary.as_str() == "b", i < 5, "{key}");
        }
    }

    #[test]
    #[should_panic(expected = "not enough keys")]
    fn a_victim_that_is_not_a_member_is_refused() {
        let topology = Topology::from_instances(["a", "b"].map(InstanceSpec::new)).unwrap();
        half_on_victim(&topology, "z", "k", 0, 4);
    }
}

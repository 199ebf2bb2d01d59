use std::collections::HashMap;

use proptest::prelude::*;

use super::Ranking;
use crate::instance::{InstanceId, InstanceSpec};
use crate::key::ClientKey;
use crate::route::Ranked;
use crate::topology::Topology;

const SEED: u64 = 0x5eed;

fn topology(ranking: Ranking, specs: impl IntoIterator<Item = InstanceSpec>) -> Topology {
    Topology::builder()
        .with_ranking(ranking)
        .with_instances(specs)
        .build()
        .unwrap()
}

fn uniform(n: usize) -> Vec<InstanceSpec> {
    (0..n)
        .map(|i| InstanceSpec::new(format!("node-{i}")))
        .collect()
}

fn keys(count: usize, salt: u64) -> impl Iterator<Item = ClientKey> {
    (0..count).map(move |i| ClientKey::from(format!("key-{salt}-{i}")))
}

fn owners(t: &Topology, count: usize, salt: u64, k: usize) -> Vec<Ranked> {
    keys(count, salt).map(|key| t.rank(&key, SEED, k)).collect()
}

/// Both layouts, the skeleton with few groups so that small property-test
/// sizes exercise several members per group.
fn layouts() -> impl Strategy<Value = Ranking> {
    prop_oneof![
        Just(Ranking::Flat),
        (1usize..5, 1usize..3).prop_map(|(fanout, depth)| Ranking::Skeleton { fanout, depth }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn ranking_is_deterministic_distinct_and_order_free(
        ranking in layouts(),
        n in 1usize..40,
        k in 1usize..5,
        salt in any::<u64>(),
    ) {
        let a = topology(ranking, uniform(n));
        let b = topology(ranking, uniform(n).into_iter().rev());
        for key in keys(300, salt) {
            let ranked = a.rank(&key, SEED, k);
            prop_assert_eq!(ranked.len(), k.min(n));
            prop_assert_eq!(&ranked, &a.rank(&key, SEED, k));
            prop_assert_eq!(&ranked, &b.rank(&key, SEED, k));
            let mut unique = ranked.to_vec();
            unique.sort();
            unique.dedup();
            prop_assert_eq!(unique.len(), ranked.len());
        }
    }

    #[test]
    fn adding_an_instance_moves_keys_only_to_it(
        ranking in layouts(),
        n in 2usize..40,
        weighted in any::<bool>(),
        salt in any::<u64>(),
    ) {
        let specs: Vec<_> = uniform(n)
            .into_iter()
            .enumerate()
            .map(|(i, s)| if weighted { s.with_weight(1.0 + (i % 3) as f64) } else { s })
            .collect();
        let t = topology(ranking, specs);
        let before = owners(&t, 4000, salt, 2);
        let newcomer = InstanceId::from("newcomer");
        t.insert(InstanceSpec::new(newcomer.clone())).unwrap();
        let after = owners(&t, 4000, salt, 2);
        let mut moved = 0;
        for (old, new) in before.iter().zip(&after) {
            if old[0] != new[0] {
                moved += 1;
                prop_assert_eq!(&new[0], &newcomer);
                // The old owner is now the secondary: its warm copy stays useful.
                prop_assert_eq!(&new[1], &old[0]);
            }
        }
        let expected = t.load().share(&newcomer).unwrap() * 4000.0;
        prop_assert!((moved as f64 - expected).abs() <= 4.0 * expected.sqrt() + 4.0,
            "moved {} expected {}", moved, expected);
    }

    #[test]
    fn removing_an_instance_moves_only_its_keys_to_their_secondary(
        ranking in layouts(),
        n in 2usize..40,
        victim in any::<prop::sample::Index>(),
        salt in any::<u64>(),
    ) {
        let t = topology(ranking, uniform(n));
        let victim = InstanceId::from(format!("node-{}", victim.index(n)));
        let before = owners(&t, 4000, salt, 2);
        t.remove(&victim);
        let after = owners(&t, 4000, salt, 2);
        for (old, new) in before.iter().zip(&after) {
            if old[0] == victim {
                prop_assert_eq!(&new[0], &old[1]);
            } else {
                prop_assert_eq!(&new[0], &old[0]);
            }
        }
    }
}

fn sampled_shares(t: &Topology, count: usize) -> HashMap<InstanceId, f64> {
    let mut counts: HashMap<InstanceId, usize> = HashMap::new();
    for key in keys(count, 1) {
        *counts.entry(t.rank(&key, SEED, 1)[0].clone()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(id, c)| (id, c as f64 / count as f64))
        .collect()
}

fn assert_weighted_shares(ranking: Ranking, n: usize) {
    let specs: Vec<_> = uniform(n)
        .into_iter()
        .enumerate()
        .map(|(i, s)| s.with_weight([1.0, 2.0, 3.0, 4.0][i % 4]))
        .collect();
    let total: f64 = specs.iter().map(|s| s.weight).sum();
    let t = topology(ranking, specs.clone());
    let shares = sampled_shares(&t, 1_000_000);
    for spec in &specs {
        let want = spec.weight / total;
        let got = shares.get(&spec.id).copied().unwrap_or(0.0);
        assert!(
            (got - want).abs() <= 0.02 * want,
            "{ranking:?}: {} has share {got:.5}, weight says {want:.5}",
            spec.id
        );
        let exact = t.load().share(&spec.id).unwrap();
        assert!((exact - want).abs() <= 1e-9 * want.max(1.0) || ranking != Ranking::Flat);
    }
}

#[test]
fn flat_shares_follow_weights_over_a_million_keys() {
    assert_weighted_shares(Ranking::Flat, 8);
}

#[test]
fn skeleton_shares_follow_weights_over_a_million_keys() {
    assert_weighted_shares(
        Ranking::Skeleton {
            fanout: 2,
            depth: 1,
        },
        8,
    );
    assert_weighted_shares(
        Ranking::Skeleton {
            fanout: 2,
            depth: 2,
        },
        16,
    );
}

#[test]
fn skeleton_layout_is_balanced_at_scale() {
    for n in [1024, 3000, 4096, 4100] {
        let t = topology(Ranking::Auto, uniform(n));
        let members = t.load();
        let shares: Vec<f64> = members
            .iter()
            .map(|i| members.share(i.id()).unwrap())
            .collect();
        let sum: f64 = shares.iter().sum();
        assert!((sum - 1.0).abs() < 1e-9, "shares sum to {sum}");
        let mean = 1.0 / n as f64;
        let max = shares.iter().cloned().fold(0.0, f64::max);
        assert!(max / mean <= 1.01, "n={n}: max/mean {}", max / mean);
    }
}

#[test]
fn auto_picks_the_skeleton_for_large_sets_only() {
    assert!(matches!(Ranking::Auto.resolve(100), Ranking::Flat));
    assert_eq!(
        Ranking::Auto.resolve(4096),
        Ranking::Skeleton {
            fanout: 32,
            depth: 1
        }
    );
    assert_eq!(
        Ranking::Auto.resolve(512),
        Ranking::Skeleton {
            fanout: 4,
            depth: 1
        }
    );
    assert_eq!(
        Ranking::Auto.resolve(100_000),
        Ranking::Skeleton {
            fanout: 28,
            depth: 2
        }
    );
    assert_eq!(
        Ranking::Skeleton {
            fanout: 0,
            depth: 9
        }
        .resolve(10),
        Ranking::Skeleton {
            fanout: 1,
            depth: 4
        }
    );
}

#[test]
fn skeleton_at_scale_keeps_minimal_disruption() {
    let t = topology(Ranking::Auto, uniform(2048));
    let before = owners(&t, 20_000, 9, 2);
    t.insert(InstanceSpec::new("joiner")).unwrap();
    let after = owners(&t, 20_000, 9, 2);
    let moved = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a[0] != b[0])
        .count();
    for (a, b) in before.iter().zip(&after) {
        if a[0] != b[0] {
            assert_eq!(b[0].as_str(), "joiner");
        }
    }
    // About 1/(n+1) of the keys: 20_000 / 2049 ≈ 9.8.
    assert!(moved <= 30, "moved {moved}");
}

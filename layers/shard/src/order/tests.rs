use std::time::Duration;

use foresight_core::rank::BoundedLoad;
use foresight_core::{HealthState, InstanceId, InstanceSpec, Topology};

use super::{Ordering, rank};

fn topology(ids: &[&str]) -> Topology {
    Topology::from_instances(ids.iter().map(|id| InstanceSpec::new(*id))).unwrap()
}

fn hashes() -> impl Iterator<Item = u64> {
    (0..4000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555)
}

fn first(t: &Topology, hash: u64, order: Ordering) -> InstanceId {
    rank(&t.load(), hash, 2, order).0[0].clone()
}

#[test]
fn a_draining_instance_takes_no_new_sessions_and_only_its_keys_move() {
    let t = topology(&["a", "b", "c", "d", "e"]);
    let none = Ordering::default();
    let before: Vec<_> = hashes().map(|h| rank(&t.load(), h, 2, none).0).collect();
    assert!(t.set_draining(&"c".into(), true));
    assert!(!t.set_draining(&"zz".into(), true), "not a member");
    let mut moved = 0;
    for (h, old) in hashes().zip(&before) {
        let (new, _) = rank(&t.load(), h, 2, none);
        assert_ne!(new[0], InstanceId::from("c"));
        if old[0] == InstanceId::from("c") {
            moved += 1;
            assert_eq!(new[0], old[1], "a drained key goes to its named secondary");
        } else {
            assert_eq!(new[0], old[0], "a key not on the draining instance stays");
        }
    }
    assert!(moved > 600, "c held about a fifth of 4000 keys: {moved}");
    t.set_draining(&"c".into(), false);
    let after: Vec<_> = hashes().map(|h| rank(&t.load(), h, 2, none).0).collect();
    assert_eq!(before, after, "undraining restores every route");
}

#[test]
fn bounded_loads_never_pick_a_draining_instance_while_another_is_left() {
    let t = topology(&["a", "b", "c"]);
    let order = Ordering {
        bounded: Some(BoundedLoad::new(1.25)),
        slow_start: None,
    };
    let members = t.load();
    // a and b are far above the cap; c, draining, is idle.
    let _held: Vec<_> = ["a", "b"]
        .iter()
        .flat_map(|id| {
            let slot = members
                .get(&InstanceId::from(*id))
                .unwrap()
                .health()
                .clone();
            (0..50).map(move |_| slot.track())
        })
        .collect();
    drop(members);
    t.set_draining(&"c".into(), true);
    for h in hashes().take(500) {
        assert_ne!(first(&t, h, order), InstanceId::from("c"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_joining_instance_ramps_up_and_each_key_moves_once() {
    let t = topology(&["a", "b", "c", "d"]);
    let order = Ordering {
        bounded: None,
        slow_start: Some(Duration::from_secs(10)),
    };
    t.insert(InstanceSpec::new("e")).unwrap();
    let e = InstanceId::from("e");
    let full: Vec<bool> = hashes()
        .map(|h| first(&t, h, Ordering::default()) == e)
        .collect();
    let eventual = full.iter().filter(|x| **x).count();
    assert!(eventual > 600, "e's full share of 4000 keys: {eventual}");
    let mut on_e = vec![false; full.len()];
    let mut counts = Vec::new();
    for _second in 0..=11 {
        for (i, h) in hashes().enumerate() {
            let now = first(&t, h, order) == e;
            assert!(!now || full[i], "only e's own keys move to it");
            assert!(now || !on_e[i], "a key that moved to e stays there");
            on_e[i] = now;
        }
        counts.push(on_e.iter().filter(|x| **x).count());
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(counts[0], 0, "nothing at the start of the ramp");
    let half = counts[5] as f64 / eventual as f64;
    assert!((0.4..0.6).contains(&half), "half way: {half} ({counts:?})");
    assert_eq!(counts[10], eventual, "all of it at the end: {counts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_readmitted_instance_ramps_up_again() {
    let t = topology(&["a", "b", "c"]);
    let order = Ordering {
        bounded: None,
        slow_start: Some(Duration::from_secs(10)),
    };
    let b = InstanceId::from("b");
    let owned = hashes().filter(|&h| first(&t, h, order) == b).count();
    let slot = t.health(&b).unwrap();
    slot.set_state(HealthState::Ejected);
    slot.set_state(HealthState::Probing);
    assert!(slot.transition(HealthState::Probing, HealthState::Healthy));
    assert_eq!(hashes().filter(|&h| first(&t, h, order) == b).count(), 0);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        hashes().filter(|&h| first(&t, h, order) == b).count(),
        owned
    );
}

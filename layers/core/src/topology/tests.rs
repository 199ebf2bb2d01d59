use super::*;

fn specs(n: usize) -> Vec<InstanceSpec> {
    (0..n).map(|i| InstanceSpec::new(format!("i{i}"))).collect()
}

#[test]
fn rejects_bad_weights_and_duplicates() {
    let bad = Topology::from_instances([InstanceSpec::new("a").with_weight(f64::NAN)]);
    assert!(matches!(bad, Err(TopologyError::InvalidWeight { .. })));
    let zero = Topology::from_instances([InstanceSpec::new("a").with_weight(0.0)]);
    assert!(matches!(zero, Err(TopologyError::InvalidWeight { .. })));
    let dup = Topology::from_instances([InstanceSpec::new("a"), InstanceSpec::new("a")]);
    assert_eq!(dup.unwrap_err(), TopologyError::DuplicateId("a".into()));
    let t = Topology::from_instances(specs(2)).unwrap();
    assert!(t.insert(InstanceSpec::new("x").with_weight(-1.0)).is_err());
    assert_eq!(t.load().len(), 2);
}

#[test]
fn replace_swaps_the_whole_set_at_once_and_keeps_the_health_of_members_that_stay() {
    let t = Topology::from_instances(specs(3)).unwrap();
    let kept = t.health(&"i1".into()).unwrap();
    kept.set_state(crate::HealthState::Degraded);
    let changes = t.subscribe();
    let epoch = t.epoch();
    t.replace([
        InstanceSpec::new("i1").with_weight(2.0),
        InstanceSpec::new("new"),
    ])
    .unwrap();
    assert_eq!(t.epoch(), epoch + 1, "one snapshot for the whole change");
    assert!(changes.has_changed().unwrap());
    let mut ids: Vec<String> = t.instances().iter().map(|s| s.id.to_string()).collect();
    ids.sort();
    assert_eq!(ids, ["i1", "new"]);
    assert_eq!(t.load().get(&"i1".into()).unwrap().spec().weight, 2.0);
    assert!(Arc::ptr_eq(&t.health(&"i1".into()).unwrap(), &kept));

    // An invalid list changes nothing.
    let dup = t.replace([InstanceSpec::new("a"), InstanceSpec::new("a")]);
    assert_eq!(dup.unwrap_err(), TopologyError::DuplicateId("a".into()));
    let bad = t.replace([InstanceSpec::new("a").with_weight(0.0)]);
    assert!(matches!(bad, Err(TopologyError::InvalidWeight { .. })));
    assert_eq!(t.epoch(), epoch + 1);
    assert_eq!(t.load().len(), 2);
}

#[test]
fn empty_topology_ranks_nothing() {
    let t = Topology::from_instances([]).unwrap();
    assert!(t.rank(&ClientKey::from("k"), 0, 2).is_empty());
}

#[test]
fn health_slot_survives_weight_updates_but_not_removal() {
    let t = Topology::from_instances(specs(3)).unwrap();
    let id = InstanceId::from("i1");
    let slot = t.health(&id).unwrap();
    t.insert(InstanceSpec::new("i1").with_weight(3.0)).unwrap();
    assert!(Arc::ptr_eq(&slot, &t.health(&id).unwrap()));
    t.remove(&id);
    assert!(t.health(&id).is_none());
    t.insert(InstanceSpec::new("i1")).unwrap();
    assert!(!Arc::ptr_eq(&slot, &t.health(&id).unwrap()));
}

#[test]
fn changes_bump_the_epoch_and_notify() {
    let t = Topology::from_instances(specs(2)).unwrap();
    let rx = t.subscribe();
    assert_eq!(t.epoch(), 0);
    t.insert(InstanceSpec::new("new")).unwrap();
    assert_eq!(t.epoch(), 1);
    assert_eq!(*rx.borrow(), 1);
    assert!(t.remove(&"missing".into()).is_none());
    assert_eq!(t.epoch(), 1);
}

#[test]
fn list_order_does_not_matter() {
    for n in [5, 600] {
        let a = Topology::from_instances(specs(600).into_iter().take(n)).unwrap();
        let b = Topology::from_instances(specs(600).into_iter().take(n).rev()).unwrap();
        for k in 0..1000u32 {
            let key = ClientKey::from(k.to_string());
            assert_eq!(a.rank(&key, 7, 2), b.rank(&key, 7, 2));
        }
    }
}

#[tokio::test]
async fn follows_a_discover_stream() {
    let t = Topology::from_instances([]).unwrap();
    let changes = tokio_stream::iter(vec![
        Ok::<_, std::convert::Infallible>(Change::Insert("a".into(), InstanceSpec::new("ignored"))),
        Ok(Change::Insert(
            "b".into(),
            InstanceSpec::new("b").with_weight(2.0),
        )),
        Ok(Change::Insert(
            "bad".into(),
            InstanceSpec::new("bad").with_weight(0.0),
        )),
        Ok(Change::Remove("a".into())),
    ]);
    t.follow(changes).await.unwrap();
    let ids: Vec<_> = t.instances().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![InstanceId::from("b")]);
}

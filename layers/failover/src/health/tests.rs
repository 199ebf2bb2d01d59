use std::sync::atomic::AtomicBool;

use foresight_core::signal::HealthSignal;
use foresight_core::{ClientKey, InstanceSpec, Ranked, Route};

use super::*;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;

fn tracker_with(config: Config) -> Tracker {
    let topology = Topology::from_instances(["a", "b", "c"].map(InstanceSpec::new)).unwrap();
    Tracker::new(topology, config)
}

/// The default settings, but slow responses degrade however close
/// together they come: the tests below put them a millisecond apart. The
/// span is tested on its own.
fn unspanned() -> Config {
    Config {
        slow_span: Duration::ZERO,
        ..Config::default()
    }
}

fn tracker() -> Tracker {
    tracker_with(unspanned())
}

fn route(ids: &[&str]) -> Route {
    let ranked: Ranked = ids.iter().map(|&id| InstanceId::from(id)).collect();
    Route::primary(ClientKey::from("k"), ranked).unwrap()
}

fn keyed_route(key: String, ids: &[&str]) -> Route {
    let ranked: Ranked = ids.iter().map(|&id| InstanceId::from(id)).collect();
    Route::primary(ClientKey::from(key), ranked).unwrap()
}

fn stats(t: &Tracker, id: &str) -> Arc<InstanceStats> {
    t.instance(&id.into()).unwrap()
}

fn state(t: &Tracker, id: &str) -> HealthState {
    stats(t, id).state()
}

/// Records one attempt on `id` that took `latency` and ended at `at`.
fn record(t: &Tracker, id: &str, outcome: Outcome, latency: u64, at: u64) {
    let s = stats(t, id);
    t.start(&s);
    t.finish(&s, outcome, false, at - latency, at);
}

fn fail(t: &Tracker, id: &str, at: u64) {
    record(t, id, Outcome::Failure, MS, at);
}

fn ok(t: &Tracker, id: &str, latency: u64, at: u64) {
    record(t, id, Outcome::Success, latency, at);
}

fn chosen(t: &Tracker, route: &Route, replayable: bool, now: u64) -> Option<(String, bool)> {
    t.choose(route, replayable, now)
        .map(|p| (p.stats.id.to_string(), p.probe))
}

#[test]
fn three_consecutive_failures_eject() {
    let t = tracker();
    fail(&t, "a", 10 * MS);
    fail(&t, "a", 11 * MS);
    assert_eq!(state(&t, "a"), HealthState::Healthy);
    fail(&t, "a", 12 * MS);
    assert_eq!(state(&t, "a"), HealthState::Ejected);
    assert_eq!(t.stats().ejections, 1);
    assert_eq!(
        chosen(&t, &route(&["a", "b"]), true, 13 * MS),
        Some(("b".into(), false))
    );
}

#[test]
fn a_success_breaks_the_streak() {
    let t = tracker();
    fail(&t, "a", 10 * MS);
    fail(&t, "a", 11 * MS);
    ok(&t, "a", MS, 12 * MS);
    fail(&t, "a", 13 * MS);
    fail(&t, "a", 14 * MS);
    assert_eq!(state(&t, "a"), HealthState::Healthy);
}

#[test]
fn two_failures_spanning_the_failure_window_eject() {
    let t = tracker();
    fail(&t, "a", 10 * MS);
    fail(&t, "a", 60 * MS);
    assert_eq!(state(&t, "a"), HealthState::Healthy);
    let t = tracker();
    fail(&t, "a", 10 * MS);
    fail(&t, "a", 110 * MS);
    assert_eq!(state(&t, "a"), HealthState::Ejected);
}

#[test]
fn error_ratio_over_the_window_ejects() {
    let t = tracker();
    let mut at = 10 * MS;
    // Alternating results never make three consecutive failures.
    for _ in 0..9 {
        ok(&t, "a", MS, at);
        fail(&t, "a", at + MS);
        at += 2 * MS;
    }
    assert_eq!(state(&t, "a"), HealthState::Healthy);
    assert!(stats(&t, "a").slot.error_ratio() > 0.4);
    ok(&t, "a", MS, at);
    fail(&t, "a", at + MS);
    assert_eq!(state(&t, "a"), HealthState::Ejected);
}

#[test]
fn at_most_the_maximum_share_is_ejected() {
    let t = tracker();
    for i in 0..3 {
        fail(&t, "a", (10 + i) * MS);
        fail(&t, "b", (10 + i) * MS);
    }
    assert_eq!(state(&t, "a"), HealthState::Ejected);
    assert_eq!(state(&t, "b"), HealthState::Healthy);
    assert!(t.stats().ejections_suppressed >= 1);
}

#[test]
fn every_candidate_out_means_no_target() {
    let t = tracker_with(Config {
        max_ejected_share: 1.0,
        ..unspanned()
    });
    for i in 0..3 {
        fail(&t, "a", (10 + i) * MS);
        fail(&t, "b", (10 + i) * MS);
    }
    let r = route(&["a", "b"]);
    assert!(t.choose(&r, true, 20 * MS).is_none());
    let after = t.retry_after(&r, 20 * MS);
    assert!(after <= Duration::from_secs(1) && after > Duration::from_millis(900));
}

/// The probe of an Ejected instance tests that it is back: an answer that
/// waited out the outage (a stopped instance resumed) readmits it. The
/// probe of a Degraded instance tests that it is fast again: a slow answer
/// keeps it out.
#[test]
fn a_slow_answer_readmits_an_ejected_instance_but_not_a_degraded_one() {
    let t = tracker();
    // A fleet baseline of 1 ms.
    for i in 0..5 {
        ok(&t, "b", MS, (1 + i) * MS);
        ok(&t, "c", MS, (1 + i) * MS);
    }
    for i in 0..3 {
        fail(&t, "a", (10 + i) * MS);
    }
    assert_eq!(state(&t, "a"), HealthState::Ejected);
    let r = route(&["a", "b"]);
    let due = 12 * MS + SEC;
    let probe = t.choose(&r, true, due).unwrap();
    assert!(probe.probe);
    assert_eq!(probe.stats.id.as_str(), "a");
    // It answers 800 ms later, 800 times the baseline.
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, due, due + 800 * MS);
    assert_eq!(state(&t, "a"), HealthState::Healthy);
    assert_eq!(t.stats().readmissions, 1);

    // "b" degrades on latency; its probe answers as slowly and it stays
    // out.
    let now = due + 900 * MS;
    for i in 0..5 {
        ok(&t, "b", 100 * MS, now + i * MS);
    }
    assert_eq!(state(&t, "b"), HealthState::Degraded);
    let later = now + 2 * SEC;
    let probe = t.choose(&route(&["b", "c"]), true, later).unwrap();
    assert!(probe.probe);
    assert_eq!(probe.stats.id.as_str(), "b");
    t.start(&probe.stats);
    t.finish(
        &probe.stats,
        Outcome::Success,
        true,
        later,
        later + 800 * MS,
    );
    assert_eq!(state(&t, "b"), HealthState::Degraded);
    assert_eq!(t.stats().readmissions, 1);
}

#[test]
fn an_ejected_instance_is_probed_after_its_backoff_and_readmitted() {
    let t = tracker();
    for i in 0..3 {
        fail(&t, "a", (10 + i) * MS);
    }
    let r = route(&["a", "b"]);
    let ejected_at = 12 * MS;
    // Before the backoff: the secondary.
    assert_eq!(
        chosen(&t, &r, true, ejected_at + SEC - MS),
        Some(("b".into(), false))
    );
    // After it: only a replayable request may be the probe.
    assert_eq!(
        chosen(&t, &r, false, ejected_at + SEC),
        Some(("b".into(), false))
    );
    let probe = t.choose(&r, true, ejected_at + SEC).unwrap();
    assert!(probe.probe);
    assert_eq!(probe.stats.id.as_str(), "a");
    assert_eq!(state(&t, "a"), HealthState::Probing);
    // One probe at a time.
    assert_eq!(
        chosen(&t, &r, true, ejected_at + SEC),
        Some(("b".into(), false))
    );
    t.start(&probe.stats);
    t.finish(
        &probe.stats,
        Outcome::Success,
        true,
        ejected_at + SEC,
        ejected_at + SEC + MS,
    );
    assert_eq!(state(&t, "a"), HealthState::Healthy);
    assert_eq!(t.stats().readmissions, 1);
    assert_eq!(
        chosen(&t, &r, true, ejected_at + SEC + 2 * MS),
        Some(("a".into(), false))
    );
}

#[test]
fn a_failed_probe_doubles_the_backoff() {
    let t = tracker();
    for i in 0..3 {
        fail(&t, "a", (10 + i) * MS);
    }
    let r = route(&["a", "b"]);
    let at = 12 * MS + SEC;
    let probe = t.choose(&r, true, at).unwrap();
    assert!(probe.probe);
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Failure, true, at, at + MS);
    assert_eq!(state(&t, "a"), HealthState::Ejected);
    // Second ejection: 2 s.
    assert_eq!(
        chosen(&t, &r, true, at + MS + 2 * SEC - MS),
        Some(("b".into(), false))
    );
    assert_eq!(
        chosen(&t, &r, true, at + MS + 2 * SEC),
        Some(("a".into(), true))
    );
}

#[test]
fn backoff_is_capped() {
    let t = tracker_with(Config {
        base_ejection: Duration::from_secs(1),
        max_ejection: Duration::from_secs(3),
        ..unspanned()
    });
    let r = route(&["a", "b"]);
    let mut at = 10 * MS;
    for i in 0..3 {
        fail(&t, "a", at + i * MS);
    }
    at += 2 * MS;
    for expected in [1, 2, 3, 3] {
        let due = at + expected * SEC;
        assert_eq!(chosen(&t, &r, true, due - MS), Some(("b".into(), false)));
        let probe = t.choose(&r, true, due).unwrap();
        assert!(probe.probe, "probe due after {expected} s");
        t.start(&probe.stats);
        t.finish(&probe.stats, Outcome::Failure, true, due, due);
        at = due;
    }
}

#[test]
fn a_cancelled_probe_frees_its_turn() {
    let t = tracker();
    for i in 0..3 {
        fail(&t, "a", (10 + i) * MS);
    }
    let r = route(&["a", "b"]);
    let at = 12 * MS + SEC;
    let probe = t.choose(&r, true, at).unwrap();
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Cancelled, true, at, at + MS);
    assert_eq!(state(&t, "a"), HealthState::Probing);
    assert_eq!(chosen(&t, &r, true, at + MS), Some(("a".into(), true)));
}

#[test]
fn a_readmitted_instance_is_on_probation() {
    let t = tracker();
    for i in 0..3 {
        fail(&t, "a", (10 + i) * MS);
    }
    let r = route(&["a", "b"]);
    let at = 12 * MS + SEC;
    let probe = t.choose(&r, true, at).unwrap();
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, at, at + MS);
    assert_eq!(state(&t, "a"), HealthState::Healthy);
    // One failure soon after readmission ejects again.
    fail(&t, "a", at + 100 * MS);
    assert_eq!(state(&t, "a"), HealthState::Ejected);
    assert_eq!(t.stats().ejections, 2);
}

/// b and c answer in 1 ms, so the baseline is 1 ms.
fn warm(t: &Tracker, at: u64) {
    for i in 0..5 {
        ok(t, "b", MS, at + i * MS);
        ok(t, "c", MS, at + i * MS);
    }
}

#[test]
fn consecutive_slow_responses_degrade() {
    let t = tracker();
    warm(&t, 10 * MS);
    for i in 0..4 {
        ok(&t, "a", 20 * MS, 40 * MS + i * MS);
    }
    assert_eq!(state(&t, "a"), HealthState::Healthy);
    // One normal answer starts the count over.
    ok(&t, "a", MS, 45 * MS);
    for i in 0..4 {
        ok(&t, "a", 20 * MS, 50 * MS + i * MS);
    }
    assert_eq!(state(&t, "a"), HealthState::Healthy);
    ok(&t, "a", 20 * MS, 60 * MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    assert_eq!(t.stats().degradations, 1);
}

/// Slow responses bunched within a few milliseconds (what a short stall
/// leaves) do not degrade an instance; the same run spread over the span
/// does.
#[test]
fn slow_responses_degrade_only_over_the_slow_span() {
    let t = tracker_with(Config::default());
    warm(&t, 10 * MS);
    for i in 0..20 {
        ok(&t, "a", 20 * MS, 40 * MS + i * MS);
    }
    assert_eq!(state(&t, "a"), HealthState::Healthy);
    // A fast answer ends the run; the next one starts its own span.
    ok(&t, "a", MS, 60 * MS);
    for i in 0..4 {
        ok(&t, "a", 20 * MS, 70 * MS + i * 25 * MS);
    }
    assert_eq!(state(&t, "a"), HealthState::Healthy);
    ok(&t, "a", 20 * MS, 170 * MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
}

#[test]
fn latency_under_the_floor_is_never_slow() {
    let t = tracker();
    for i in 0..5 {
        ok(&t, "b", MS / 10, 10 * MS + i * MS);
    }
    for i in 0..20 {
        ok(&t, "a", 4 * MS, 20 * MS + i * MS);
    }
    assert_eq!(state(&t, "a"), HealthState::Healthy);
}

#[test]
fn keys_drain_from_a_degraded_instance_gradually() {
    let t = tracker();
    warm(&t, 10 * MS);
    let degraded_at = 60 * MS;
    for i in 0..5 {
        ok(&t, "a", 20 * MS, degraded_at - 4 * MS + i * MS);
    }
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    let routes: Vec<Route> = (0..400)
        .map(|k| keyed_route(k.to_string(), &["a", "b"]))
        .collect();
    let moved = |now| {
        routes
            .iter()
            .filter(|r| chosen(&t, r, false, now).unwrap().0 == "b")
            .count()
    };
    assert_eq!(moved(degraded_at), 0);
    let half = moved(degraded_at + 125 * MS);
    assert!(
        (100..300).contains(&half),
        "{half} of 400 moved at half the drain"
    );
    assert_eq!(moved(degraded_at + 250 * MS), 400);
}

#[test]
fn a_degraded_instance_comes_back_only_below_the_recovery_ratio() {
    let t = tracker();
    warm(&t, 10 * MS);
    let degraded_at = 60 * MS;
    for i in 0..5 {
        ok(&t, "a", 20 * MS, degraded_at - 4 * MS + i * MS);
    }
    let r = route(&["a", "b"]);
    let due = degraded_at + SEC;
    assert_eq!(chosen(&t, &r, true, due - MS), Some(("b".into(), false)));
    // A probe at 3x the baseline: under the degradation ratio, above the
    // recovery ratio. It stays Degraded (no flapping).
    let probe = t.choose(&r, true, due).unwrap();
    assert!(probe.probe);
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, due, due + 3 * MS);
    // The floor (5 ms) hides a 3 ms answer; use a lower floor to see it.
    let t = tracker_with(Config {
        latency_floor: Duration::ZERO,
        ..unspanned()
    });
    warm(&t, 10 * MS);
    for i in 0..5 {
        ok(&t, "a", 20 * MS, degraded_at - 4 * MS + i * MS);
    }
    let probe = t.choose(&r, true, due).unwrap();
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, due, due + 3 * MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    let again = due + 3 * MS + SEC;
    let probe = t.choose(&r, true, again).unwrap();
    assert!(probe.probe);
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, again, again + MS);
    assert_eq!(state(&t, "a"), HealthState::Healthy);
}

struct Predict(AtomicBool);

impl HealthSignal for Predict {
    fn predicted_degradation(&self, instance: &InstanceId, _within: Duration) -> Option<Duration> {
        (instance.as_str() == "a" && self.0.load(Relaxed)).then_some(Duration::from_millis(500))
    }
}

#[test]
fn a_predicted_degradation_acts_before_any_slowness() {
    let signal = Arc::new(Predict(AtomicBool::new(false)));
    let t = tracker_with(Config {
        signal: Some(signal.clone()),
        ..unspanned()
    });
    let r = route(&["a", "b"]);
    assert_eq!(chosen(&t, &r, true, 10 * MS), Some(("a".into(), false)));
    signal.0.store(true, Relaxed);
    // Asked at most every 50 ms.
    assert_eq!(chosen(&t, &r, true, 20 * MS), Some(("a".into(), false)));
    let _ = t.choose(&r, false, 70 * MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    // A fast probe does not readmit while the prediction stands.
    let due = 70 * MS + SEC;
    let probe = t.choose(&r, true, due).unwrap();
    assert!(probe.probe);
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, due, due + MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    signal.0.store(false, Relaxed);
    let again = due + MS + SEC;
    let probe = t.choose(&r, true, again).unwrap();
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, again, again + MS);
    assert_eq!(state(&t, "a"), HealthState::Healthy);
}

#[test]
fn replays_go_to_untried_live_candidates() {
    let t = tracker();
    let r = route(&["a", "b", "c"]);
    assert_eq!(t.next_candidate(&r, 0b001).unwrap().stats.id.as_str(), "b");
    for i in 0..3 {
        fail(&t, "b", (10 + i) * MS);
    }
    assert_eq!(t.next_candidate(&r, 0b001).unwrap().stats.id.as_str(), "c");
    assert!(t.next_candidate(&r, 0b101).is_none());
}

#[test]
fn cancelled_attempts_count_in_flight_until_dropped_and_raise_latency() {
    let t = tracker();
    let a = stats(&t, "a");
    t.start(&a);
    assert_eq!(a.in_flight(), 1);
    t.finish(&a, Outcome::Cancelled, false, 10 * MS, 510 * MS);
    assert_eq!(a.in_flight(), 0);
    assert!((a.latency() - 0.5).abs() < 1e-9);
}

#[test]
fn membership_changes_keep_the_figures_of_members() {
    let t = tracker();
    fail(&t, "a", 10 * MS);
    let before = stats(&t, "a");
    t.topology.insert(InstanceSpec::new("d")).unwrap();
    let after = stats(&t, "a");
    assert!(Arc::ptr_eq(&before, &after));
    assert!(t.instance(&"d".into()).is_some());
    t.topology.remove(&"a".into());
    assert!(t.instance(&"a".into()).is_none());
}

#[test]
fn a_degraded_instance_under_probe_still_serves_as_a_last_resort() {
    let t = tracker();
    warm(&t, 10 * MS);
    let degraded_at = 60 * MS;
    for i in 0..5 {
        ok(&t, "a", 20 * MS, degraded_at - 4 * MS + i * MS);
    }
    for i in 0..3 {
        fail(&t, "b", (70 + i) * MS);
    }
    assert_eq!(state(&t, "b"), HealthState::Ejected);
    let r = route(&["a", "b"]);
    let probe = t.choose(&r, true, degraded_at + SEC).unwrap();
    assert!(probe.probe);
    // The probe is in flight and b is out: a still takes the request.
    assert_eq!(
        chosen(&t, &r, true, degraded_at + SEC),
        Some(("a".into(), false))
    );
    assert_eq!(t.next_candidate(&r, 0b10).unwrap().stats.id.as_str(), "a");
}

#[test]
fn non_replayable_traffic_alone_still_readmits() {
    let t = tracker();
    for i in 0..3 {
        fail(&t, "a", (10 + i) * MS);
    }
    let r = route(&["a", "b"]);
    let ejected_at = 12 * MS;
    let due = ejected_at + 2 * SEC;
    assert_eq!(chosen(&t, &r, false, due - MS), Some(("b".into(), false)));
    let probe = t.choose(&r, false, due).unwrap();
    assert!(probe.probe);
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, due, due + MS);
    assert_eq!(state(&t, "a"), HealthState::Healthy);
}

#[test]
fn a_degraded_instance_is_probed_by_any_request() {
    let t = tracker();
    warm(&t, 10 * MS);
    let degraded_at = 60 * MS;
    for i in 0..5 {
        ok(&t, "a", 20 * MS, degraded_at - 4 * MS + i * MS);
    }
    let r = route(&["a", "b"]);
    assert_eq!(
        chosen(&t, &r, false, degraded_at + SEC),
        Some(("a".into(), true))
    );
}

#[test]
fn when_every_candidate_is_degraded_the_fastest_serves() {
    let t = tracker();
    warm(&t, 10 * MS);
    // a degrades very slow, then b degrades less slow (the extra load, say).
    for i in 0..5 {
        ok(&t, "a", 80 * MS, 200 * MS + i * MS);
    }
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    for i in 0..5 {
        ok(&t, "b", 20 * MS, 210 * MS + i * MS);
    }
    assert_eq!(state(&t, "b"), HealthState::Degraded);
    assert!(stats(&t, "b").latency() < stats(&t, "a").latency());
    // Both drained: whatever the rank order, the faster one serves.
    let now = 700 * MS;
    for ranked in [["a", "b"], ["b", "a"]] {
        for k in 0..50 {
            let r = keyed_route(k.to_string(), &ranked);
            assert_eq!(chosen(&t, &r, false, now).unwrap().0, "b", "{ranked:?}");
        }
    }
}

mod predict;

//! Predicted degradation: the hold against an oscillating prediction, the
//! drain that a probe does not restart, and the feed of the recorder.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use foresight_core::signal::{HealthRecorder, HealthSignal};

use super::*;
use crate::DEFAULT_SIGNAL_HOLD;

/// Predicts a degradation of `a` while set.
struct Switch(AtomicBool);

impl Switch {
    fn set(&self, on: bool) {
        self.0.store(on, Relaxed);
    }
}

impl HealthSignal for Switch {
    fn predicted_degradation(&self, instance: &InstanceId, _within: Duration) -> Option<Duration> {
        (instance.as_str() == "a" && self.0.load(Relaxed)).then_some(Duration::from_millis(500))
    }
}

fn predicted_tracker(signal: &Arc<Switch>) -> Tracker {
    tracker_with(Config {
        signal: Some(signal.clone()),
        ..unspanned()
    })
}

/// Sends one request of each of `keys` (primary `a`, secondary `b`) at
/// `now`; a probe answers in 1 ms. Returns where each served, probes left
/// out.
fn round(t: &Tracker, keys: usize, now: u64) -> Vec<Option<String>> {
    (0..keys)
        .map(|k| {
            let r = keyed_route(k.to_string(), &["a", "b"]);
            let pick = t.choose(&r, true, now)?;
            t.start(&pick.stats);
            if pick.probe {
                t.finish(&pick.stats, Outcome::Success, true, now, now + MS);
                return None;
            }
            t.finish(&pick.stats, Outcome::Success, false, now, now + MS);
            Some(pick.stats.id.to_string())
        })
        .collect()
}

#[test]
fn a_prediction_that_flips_faster_than_the_hold_moves_each_key_once() {
    let signal = Arc::new(Switch(AtomicBool::new(false)));
    let t = predicted_tracker(&signal);
    const KEYS: usize = 50;
    let mut last: Vec<Option<String>> = vec![None; KEYS];
    let mut moves = vec![0u32; KEYS];
    let mut now = 10 * MS;
    // On for 100 ms, off for 100 ms, for 6 s: a forecast hovering at the
    // threshold.
    for tick in 0..600u64 {
        signal.set((tick / 10) % 2 == 0);
        for (k, served) in round(&t, KEYS, now).into_iter().enumerate() {
            let Some(served) = served else { continue };
            if last[k].as_ref().is_some_and(|l| *l != served) {
                moves[k] += 1;
            }
            last[k] = Some(served);
        }
        now += 10 * MS;
    }
    assert_eq!(t.stats().degradations, 1);
    assert_eq!(t.stats().readmissions, 0, "readmitted between two flips");
    assert!(t.stats().probes >= 4, "{:?}", t.stats());
    assert!(moves.iter().all(|&m| m == 1), "{moves:?}");
    assert_eq!(state(&t, "a"), HealthState::Degraded);

    // Clear for good: readmitted by the first probe after the hold.
    signal.set(false);
    let cleared = now;
    while state(&t, "a") != HealthState::Healthy {
        round(&t, KEYS, now);
        now += 10 * MS;
        assert!(now < cleared + 5 * SEC, "never readmitted");
    }
    assert!(now - cleared >= nanos(DEFAULT_SIGNAL_HOLD));
    assert_eq!(t.stats().readmissions, 1);
    assert!(
        round(&t, KEYS, now)
            .iter()
            .all(|s| s.as_deref() == Some("a"))
    );
}

#[test]
fn a_cleared_prediction_readmits_only_on_a_fast_probe_after_the_hold() {
    let signal = Arc::new(Switch(AtomicBool::new(true)));
    let t = predicted_tracker(&signal);
    warm(&t, 10 * MS);
    let r = route(&["a", "b"]);
    let _ = t.choose(&r, true, 20 * MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    // Still predicted 100 ms before the probe (a Degraded instance is
    // still asked), then cleared: not for the hold yet.
    let due = 20 * MS + SEC;
    assert_eq!(
        chosen(&t, &r, true, due - 100 * MS),
        Some(("b".into(), false))
    );
    signal.set(false);
    let probe = t.choose(&r, true, due).unwrap();
    assert!(probe.probe);
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, due, due + MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    // Clear for the hold, but the probe is still slow (> 2 × the 1 ms
    // baseline): the latency has not recovered.
    let slow = due + MS + SEC;
    let probe = t.choose(&r, true, slow).unwrap();
    assert!(probe.probe);
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, slow, slow + 10 * MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    // Clear, and fast: back.
    let fast = slow + 10 * MS + SEC;
    let probe = t.choose(&r, true, fast).unwrap();
    assert!(probe.probe);
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, fast, fast + MS);
    assert_eq!(state(&t, "a"), HealthState::Healthy);
    assert_eq!(t.stats().readmissions, 1);
}

#[test]
fn a_prediction_gone_for_lack_of_traffic_is_not_a_recovery() {
    let signal = Arc::new(Switch(AtomicBool::new(true)));
    let t = predicted_tracker(&signal);
    warm(&t, 10 * MS);
    let r = route(&["a", "b"]);
    // Moved out while the fleet answers in 1 ms.
    let _ = t.choose(&r, true, 200 * MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    signal.set(false);
    // The rest of the fleet slows to 20 ms (the host is busy): twice the
    // baseline is now 40 ms.
    for i in 0..5 {
        ok(&t, "b", 20 * MS, 400 * MS + i * MS);
        ok(&t, "c", 20 * MS, 400 * MS + i * MS);
    }
    // Long after the prediction cleared, a 10 ms probe is fast for the
    // fleet of now, not for the fleet a was moved out of.
    let due = 200 * MS + 2 * SEC;
    let probe = t.choose(&r, true, due).unwrap();
    assert!(probe.probe);
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, due, due + 10 * MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    let again = due + 10 * MS + SEC;
    let probe = t.choose(&r, true, again).unwrap();
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, again, again + MS);
    assert_eq!(state(&t, "a"), HealthState::Healthy);
}

#[test]
fn a_latency_still_above_where_the_episode_began_is_not_a_recovery() {
    let signal = Arc::new(Switch(AtomicBool::new(false)));
    let t = predicted_tracker(&signal);
    // The fleet answers in 10 ms, a in 12 ms, and a is predicted to degrade.
    for i in 0..5 {
        ok(&t, "b", 10 * MS, 20 * MS + i * MS);
        ok(&t, "c", 10 * MS, 20 * MS + i * MS);
        ok(&t, "a", 12 * MS, 20 * MS + i * MS);
    }
    signal.set(true);
    let r = route(&["a", "b"]);
    let _ = t.choose(&r, true, 200 * MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    signal.set(false);
    // Cleared for long, and 15 ms is under twice the baseline (20 ms), but
    // above the 12 ms a answered in when it was moved out.
    let due = 200 * MS + 2 * SEC;
    let probe = t.choose(&r, true, due).unwrap();
    assert!(probe.probe);
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, due, due + 15 * MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    let again = due + 15 * MS + SEC;
    let probe = t.choose(&r, true, again).unwrap();
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, again, again + 11 * MS);
    assert_eq!(state(&t, "a"), HealthState::Healthy);
}

#[test]
fn a_probe_that_finds_the_instance_still_degraded_does_not_bring_its_keys_back() {
    let t = tracker();
    warm(&t, 10 * MS);
    let degraded_at = 60 * MS;
    for i in 0..5 {
        ok(&t, "a", 20 * MS, degraded_at - 4 * MS + i * MS);
    }
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    let due = degraded_at + SEC;
    let r = route(&["a", "b"]);
    let probe = t.choose(&r, true, due).unwrap();
    assert!(probe.probe);
    t.start(&probe.stats);
    t.finish(&probe.stats, Outcome::Success, true, due, due + 20 * MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
    // Right after the slow probe, every key stays on its secondary.
    let after = due + 21 * MS;
    for k in 0..100 {
        let r = keyed_route(k.to_string(), &["a", "b"]);
        assert_eq!(chosen(&t, &r, false, after), Some(("b".into(), false)));
    }
}

/// Predicts every instance to degrade.
struct Everyone;

impl HealthSignal for Everyone {
    fn predicted_degradation(&self, _: &InstanceId, _: Duration) -> Option<Duration> {
        Some(Duration::from_millis(200))
    }
}

#[test]
fn a_slowdown_predicted_for_the_whole_fleet_moves_one_instance_at_most() {
    let t = tracker_with(Config {
        signal: Some(Arc::new(Everyone)),
        ..unspanned()
    });
    for (i, ranked) in [["a", "b"], ["b", "c"], ["c", "a"]].iter().enumerate() {
        let _ = t.choose(&route(ranked), true, (10 + i as u64) * MS);
    }
    let out: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .filter(|id| state(&t, id) != HealthState::Healthy)
        .collect();
    // Three instances, at most half of them out: one.
    assert_eq!(out, ["a"]);
    assert_eq!(t.stats().degradations, 1);
}

#[test]
fn an_instance_out_for_slowness_does_not_block_a_prediction() {
    let signal = Arc::new(Switch(AtomicBool::new(false)));
    let t = predicted_tracker(&signal);
    warm(&t, 10 * MS);
    // b degrades on its own latency, not on a prediction.
    for i in 0..5 {
        ok(&t, "b", 20 * MS, 200 * MS + i * MS);
    }
    assert_eq!(state(&t, "b"), HealthState::Degraded);
    signal.set(true);
    let _ = t.choose(&route(&["a", "c"]), true, 300 * MS);
    assert_eq!(state(&t, "a"), HealthState::Degraded);
}

/// Keeps what it is told, up to a bound.
#[derive(Default)]
struct Recorded(Mutex<Vec<(String, Duration, bool)>>);

impl HealthRecorder for Recorded {
    fn record_attempt(&self, instance: &InstanceId, latency: Duration, failed: bool) {
        let mut seen = self.0.lock().unwrap();
        if seen.len() < 16 {
            seen.push((instance.to_string(), latency, failed));
        }
    }
}

#[test]
fn every_attempt_reaches_the_recorder_cancelled_ones_too() {
    let recorder = Arc::new(Recorded::default());
    let t = tracker_with(Config {
        recorder: Some(recorder.clone()),
        ..unspanned()
    });
    ok(&t, "a", 3 * MS, 10 * MS);
    fail(&t, "b", 20 * MS);
    record(&t, "c", Outcome::Cancelled, 7 * MS, 30 * MS);
    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("a".into(), Duration::from_millis(3), false),
            ("b".into(), Duration::from_millis(1), true),
            ("c".into(), Duration::from_millis(7), false),
        ]
    );
}

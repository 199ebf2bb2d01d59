//! Prefetch scheduling with paused time: a peak predicted at T gives
//! refreshes spread over [T − lead, T), none during the peak, and every
//! client holds a valid token throughout, even with the issuer down during
//! the peak. The scenario is `support::peak`.

mod support;

use support::peak::{MIN, run};

#[tokio::test(start_paused = true)]
async fn refreshes_are_spread_before_the_peak_and_none_fall_inside() {
    let o = run(true, false, false).await;
    assert_eq!(o.expired, 0, "every client holds a valid token");
    let lead_start = o.peak - 10 * MIN;
    let peak_end = o.peak + 10 * MIN;
    let prefetched: Vec<_> = o.log.iter().filter(|(_, l, _)| *l > 5 * MIN).collect();
    assert_eq!(prefetched.len(), 40, "one prefetch per session");
    for (at, lifetime, _) in &prefetched {
        assert!(
            *at >= lead_start && *at < o.peak,
            "prefetch at {:?}",
            *at - o.start
        );
        // It outlasts the peak, within the bound.
        let expires = *at + *lifetime;
        assert!(
            expires >= peak_end,
            "expires {:?} before the peak ends",
            expires - o.start
        );
        assert!(*lifetime <= 65 * MIN);
    }
    // Spread: every 2-minute window of the lead holds some of them.
    for k in 0..5 {
        let from = lead_start + 2 * MIN * k;
        let n = prefetched
            .iter()
            .filter(|(at, _, _)| *at >= from && *at < from + 2 * MIN)
            .count();
        assert!((2..=20).contains(&n), "{n} prefetches in window {k}");
    }
    let in_peak = o
        .log
        .iter()
        .filter(|(at, _, _)| *at >= o.peak && *at < peak_end)
        .count();
    assert_eq!(in_peak, 0, "no refresh during the peak");
    assert_eq!(o.failures, 0, "no request failed out of {}", o.requests);
}

#[tokio::test(start_paused = true)]
async fn merged_refreshes_issue_fewer_tokens_and_still_none_in_the_peak() {
    let spread = run(true, false, false).await;
    assert_eq!(spread.expired, 0, "every client holds a valid token");
    let merged = run(true, false, true).await;
    assert_eq!(merged.expired, 0, "every client holds a valid token");
    let lead_start = merged.peak - 10 * MIN;
    let peak_end = merged.peak + 10 * MIN;
    let long: Vec<_> = merged.log.iter().filter(|(_, l, _)| *l > 5 * MIN).collect();
    assert_eq!(long.len(), 40, "one long-lived token per session");
    assert!(
        long.iter()
            .all(|(at, _, _)| *at >= lead_start && *at < merged.peak)
    );
    assert!(long.iter().all(|(at, l, _)| *at + *l >= peak_end));
    assert!(
        !merged
            .log
            .iter()
            .any(|(at, _, _)| *at >= merged.peak && *at < peak_end)
    );
    assert!(
        merged.log.len() < spread.log.len(),
        "{} issues merged, {} spread",
        merged.log.len(),
        spread.log.len()
    );
    assert_eq!(merged.failures, 0);
}

#[tokio::test(start_paused = true)]
async fn clients_carry_on_with_prefetched_tokens_while_the_issuer_is_down() {
    let o = run(true, true, true).await;
    assert_eq!(o.expired, 0, "every client holds a valid token");
    let peak_end = o.peak + 10 * MIN;
    let attempts_in_peak = o
        .log
        .iter()
        .filter(|(at, _, _)| *at >= o.peak && *at < peak_end)
        .count();
    assert_eq!(attempts_in_peak, 0);
    assert_eq!(o.failures, 0, "no request failed out of {}", o.requests);
}

#[tokio::test(start_paused = true)]
async fn the_reactive_baseline_refreshes_during_the_peak() {
    let o = run(false, false, true).await;
    assert_eq!(o.expired, 0, "every client holds a valid token");
    let peak_end = o.peak + 10 * MIN;
    let in_peak = o
        .log
        .iter()
        .filter(|(at, _, _)| *at >= o.peak && *at < peak_end)
        .count();
    assert!(
        in_peak >= 40,
        "{in_peak} reactive refreshes during the peak"
    );
    assert_eq!(o.failures, 0);
}

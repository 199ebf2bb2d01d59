//! Planning prefetches: when the load signal predicts a peak, the tracked
//! sessions whose tokens expire before its end get a refresh spread over
//! the window before it (see [`PrefetchPolicy`](crate::PrefetchPolicy)).

use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::schedule::Scheduled;
use super::state::TokenHandle;
use crate::bucket::micros;
use crate::metrics::PREFETCH_PLANNED;
use crate::policy::RefreshMode;
use crate::sessions::{Candidate, Planned};

impl TokenHandle {
    /// Consults the load signal and schedules prefetches for a predicted
    /// peak; returns how many were scheduled. Does nothing in reactive mode.
    pub fn plan(&self) -> usize {
        let RefreshMode::Predictive(policy) = &self.shared.mode else {
            return 0;
        };
        let Some(signal) = &self.shared.signal else {
            return 0;
        };
        let _span = tracing::debug_span!("foresight_token.plan").entered();
        let now = self.shared.verifier.clock().unix();
        *self
            .shared
            .last_plan
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(now.as_secs());
        let step = policy.scan_step.max(Duration::from_secs(1));
        let Some(until) =
            crate::onset::next_onset(&**signal, policy.threshold, policy.horizon, step)
        else {
            return 0;
        };
        let mut ahead = until;
        while ahead < until + policy.max_extension {
            let next = ahead + step;
            match signal.forecast(next) {
                Some(f) if f.mean >= policy.threshold => ahead = next,
                _ => break,
            }
        }
        let peak_start = now + until;
        let peak_end = now + ahead + step;
        let mut candidates = self
            .shared
            .sessions
            .prefetch_candidates(peak_end.as_secs() + 1, now.as_secs());
        if candidates.is_empty() {
            return 0;
        }
        let start = peak_start.saturating_sub(policy.lead).max(now);
        // A refresh runs at the first driver tick after it is due: the
        // window ends one tick before the peak, so that tick is still before
        // it.
        let tick = Duration::from_micros(self.shared.driver_tick_micros.load(Ordering::Relaxed));
        let end = peak_start.saturating_sub(tick).max(start);
        let lifetime = self.shared.lifetime;
        let max_lifetime = lifetime + policy.max_extension;
        if let Some(bound) = policy.cost_bound {
            // A token due mid-window covers until the peak's end (plus the
            // margin after it), at most the longest lifetime.
            let middle = start + (end - start) / 2;
            let covered = (peak_end + policy.after_peak)
                .min(middle + max_lifetime)
                .saturating_sub(middle);
            let offered = candidates.len();
            let (kept, left_out) = within_cost(candidates, now.as_secs(), lifetime, covered, bound);
            // The sessions left out stay candidates for the next plan: a
            // cutoff of 0 is outlasted by any token, which clears the mark.
            for c in &left_out {
                self.shared.sessions.prefetch_turn(&c.sid, 0);
            }
            candidates = kept;
            tracing::debug!(offered, kept = candidates.len(), "prefetch wave bounded");
        }
        if candidates.is_empty() {
            return 0;
        }
        candidates.sort_by_key(|c| c.exp);
        let n = candidates.len() as u32;
        let mut schedule = self
            .shared
            .schedule
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Into the gaps left by the refreshes already scheduled, so the
        // whole schedule stays even however the sessions trickle in; the
        // issue rate is held by the driver's token bucket.
        let dues = crate::spread::spread(
            micros(start),
            micros(end),
            schedule.iter().map(|Reverse(s)| s.due_micros),
            candidates.len(),
            |len| {
                let bound = i64::try_from(len / 8).unwrap_or(i64::MAX);
                if bound == 0 {
                    0
                } else {
                    rand::random_range(-bound..=bound)
                }
            },
        );
        for (c, due) in candidates.into_iter().zip(dues) {
            // Tokens expiring before their slot are kept alive by reactive
            // refreshes until then; the earliest expiries get the earliest
            // slots.
            let due = Duration::from_micros(due).max(now);
            let target_exp =
                peak_end + policy.after_peak + policy.jitter.mul_f64(rand::random::<f64>());
            let lifetime = target_exp.saturating_sub(due).clamp(lifetime, max_lifetime);
            self.shared.sessions.set_planned(
                &c.sid,
                Planned {
                    exp: (due + lifetime).as_secs(),
                    window_start: start.as_secs(),
                    merge_before: policy.merge_due_refreshes.then_some(due.as_secs()),
                },
            );
            schedule.push(Reverse(Scheduled {
                due_micros: micros(due),
                seq: self.shared.seq.fetch_add(1, Ordering::Relaxed) as u64,
                sid: c.sid,
                subject: c.subject,
                lifetime_secs: lifetime.as_secs(),
                cutoff: peak_end.as_secs() + 1,
            }));
        }
        metrics::counter!(PREFETCH_PLANNED).increment(u64::from(n));
        tracing::debug!(
            sessions = n,
            peak_in = ?until,
            peak_len = ?(peak_end - peak_start),
            "prefetch planned"
        );
        n as usize
    }
}

/// Splits a wave's `candidates` into those prefetched and those left out,
/// so that the wave costs at most `bound` times the reactive refreshes it
/// replaces.
///
/// A session is active when its token was issued or expired within the
/// last `lifetime` (expiry in `(now − lifetime, now + lifetime]`), or when
/// one of its requests was seen within the last `lifetime`: active
/// sessions are always kept. The others are idle: a token that lapsed
/// longer ago was refreshed by nobody, and one valid beyond a lifetime (an
/// earlier wave's) on a session not seen lately does not show that it is
/// in use. An active session refreshes at most once per `lifetime` over
/// the part of the `covered` span its current token leaves uncovered, so
/// the wave replaces at most the sum of those spans over `lifetime`; idle
/// sessions are kept, those whose token lapsed most recently first, then
/// the holders of the longest tokens, until the wave issues `bound` times
/// that. A forecast peak that does not come then costs at most that much;
/// a long one (many lifetimes covered) still covers every session.
///
/// Counting a session seen lately as active matters when an earlier
/// wave's long tokens lapse inside a peak that is still on: their holders
/// are in use, and left out they would each refresh reactively (or wait)
/// at the lapse and again when the next wave picks them up.
pub(crate) fn within_cost(
    candidates: Vec<Candidate>,
    now: u64,
    lifetime: Duration,
    covered: Duration,
    bound: f64,
) -> (Vec<Candidate>, Vec<Candidate>) {
    let life = lifetime.as_secs().max(1);
    let (mut kept, mut idle): (Vec<_>, Vec<_>) = candidates
        .into_iter()
        .partition(|c| (c.exp + life > now && c.exp <= now + life) || c.last_seen + life > now);
    // The span each active session's own token leaves to be refreshed: a
    // token valid for a while yet covers its part of the span itself.
    let replaced: f64 = kept
        .iter()
        .map(|c| {
            let own = c.exp.saturating_sub(now + life) as f64;
            (covered.as_secs_f64() - own).max(0.0) / life as f64
        })
        .sum();
    let budget = (bound.max(0.0) * replaced).floor();
    let extra = if budget >= (kept.len() + idle.len()) as f64 {
        idle.len()
    } else {
        (budget as usize).saturating_sub(kept.len())
    };
    idle.sort_by_key(|c| (c.exp > now, Reverse(c.exp)));
    let left_out = idle.split_off(extra);
    kept.extend(idle);
    (kept, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn session(i: usize, exp: u64) -> Candidate {
        Candidate {
            sid: format!("s{i}"),
            subject: "u".into(),
            exp,
            last_seen: 0,
        }
    }

    fn sids(v: &[Candidate]) -> Vec<&str> {
        v.iter().map(|c| c.sid.as_str()).collect()
    }

    #[test]
    fn idle_sessions_are_kept_only_up_to_the_refreshes_the_active_ones_save() {
        let now = 10_000;
        // Two active sessions (tokens ending within a lifetime of now), six
        // idle ones expired 2 to 7 minutes ago.
        let mut all = vec![session(0, now + 30), session(1, now - 30)];
        all.extend((2..8).map(|i| session(i, now - 60 * i as u64)));
        // A 3-lifetime span saves 2 refreshes per active session: 4 idle
        // sessions, the most recently expired.
        let (kept, left) = within_cost(all, now, MIN, 3 * MIN, 1.0);
        assert_eq!(sids(&kept), ["s0", "s1", "s2", "s3", "s4", "s5"]);
        assert_eq!(sids(&left), ["s6", "s7"]);
    }

    #[test]
    fn a_short_predicted_peak_prefetches_only_active_sessions() {
        let now = 10_000;
        let all = vec![session(0, now + 60), session(1, now - 600), session(2, 0)];
        // Covering one lifetime saves nothing beyond the prefetch itself.
        let (kept, left) = within_cost(all, now, MIN, MIN, 1.0);
        assert_eq!(sids(&kept), ["s0"]);
        assert_eq!(sids(&left), ["s1", "s2"]);
    }

    #[test]
    fn a_long_predicted_peak_prefetches_everyone() {
        let now = 10_000;
        let mut all = vec![session(0, now)];
        all.extend((1..40).map(|i| session(i, now - 3600)));
        let (kept, left) = within_cost(all, now, MIN, 48 * MIN, 1.0);
        assert_eq!(kept.len(), 40);
        assert!(left.is_empty());
    }

    /// Load 1.0 from 300 s to 360 s ahead, 0.0 elsewhere.
    #[derive(Debug)]
    struct ShortPeak;

    impl foresight_core::signal::LoadSignal for ShortPeak {
        fn forecast(&self, h: Duration) -> Option<foresight_core::signal::Forecast> {
            let mean = f64::from(u8::from((300..360).contains(&h.as_secs())));
            Some(foresight_core::signal::Forecast {
                mean,
                lower: mean,
                upper: mean,
            })
        }

        fn will_exceed(&self, _threshold: f64, within: Duration) -> Option<Duration> {
            (within >= 5 * MIN).then_some(5 * MIN)
        }
    }

    /// A predictive handle with 60 s tokens on `clock`, and the issuer of
    /// its tokens.
    fn predictive(
        clock: &crate::ManualClock,
        cost_bound: Option<f64>,
    ) -> (TokenHandle, crate::LocalIssuer) {
        predictive_with(
            clock,
            crate::policy::PrefetchPolicy {
                threshold: 0.5,
                margin: Duration::from_secs(10),
                after_peak: Duration::ZERO,
                jitter: Duration::ZERO,
                cost_bound,
                ..crate::policy::PrefetchPolicy::default()
            },
        )
    }

    /// A handle under `policy` with 60 s tokens on `clock`, the load signal
    /// [`ShortPeak`], and the issuer of its tokens.
    fn predictive_with(
        clock: &crate::ManualClock,
        policy: crate::policy::PrefetchPolicy,
    ) -> (TokenHandle, crate::LocalIssuer) {
        use crate::handle::HandleConfig;
        use crate::keys::{KeyRing, SigningKey};
        use crate::policy::SessionBinding;
        let clock: crate::SharedClock = std::sync::Arc::new(clock.clone());
        let ring = KeyRing::new(SigningKey::hs256("k1", &[7; 32]).unwrap(), clock.clone());
        let issuer = crate::LocalIssuer::new(ring.clone(), "iss", "aud", clock.clone());
        let verifier = crate::Verifier::builder(ring, "iss", "aud")
            .with_clock(clock)
            .build();
        let handle = TokenHandle::new(HandleConfig {
            verifier,
            issuer: std::sync::Arc::new(issuer.clone()),
            signal: Some(std::sync::Arc::new(ShortPeak)),
            mode: RefreshMode::Predictive(policy),
            lifetime: MIN,
            binding: SessionBinding::None,
            max_sessions: 64,
            idle_ttl: Duration::from_secs(3600),
            max_reactive_in_flight: 4,
        });
        (handle, issuer)
    }

    /// Five sessions idle for ten minutes and one that just logged in.
    async fn sessions(
        clock: &crate::ManualClock,
        handle: &TokenHandle,
        issuer: &crate::LocalIssuer,
    ) -> Vec<crate::Subscription> {
        use crate::issuer::{TokenIssuer as _, TokenRequest};
        let mut out = Vec::new();
        for i in 0..6 {
            if i == 5 {
                clock.advance(10 * MIN);
            }
            let token = issuer
                .issue(TokenRequest::new("u", format!("s{i}"), MIN))
                .await
                .unwrap();
            let claims = handle.verifier().verify(&token.token).unwrap();
            out.push(handle.subscribe(&claims, 4).unwrap().0);
        }
        out
    }

    #[tokio::test]
    async fn a_short_predicted_peak_does_not_prefetch_every_idle_session() {
        let clock = crate::ManualClock::new(Duration::from_secs(1_000_000));
        let (handle, issuer) = predictive(&clock, Some(1.0));
        let _subscriptions = sessions(&clock, &handle, &issuer).await;
        // The peak ends 360 s ahead; a token due in the middle of the
        // window [0, 300 s) covers 210 s, 3.5 lifetimes: the active session
        // saves 2.5 refreshes, which pays for 2 idle ones.
        assert_eq!(handle.plan(), 3);
        assert_eq!(handle.scheduled(), 3);
        // The 3 left out are candidates again, and still not worth it.
        let now = crate::Clock::unix(&clock).as_secs();
        let left = handle.shared.sessions.prefetch_candidates(now + 1000, now);
        assert_eq!(left.len(), 3);
        for c in &left {
            handle.shared.sessions.prefetch_turn(&c.sid, 0);
        }
        assert_eq!(handle.plan(), 0);
        // Without the bound, every session gets one.
        let clock = crate::ManualClock::new(Duration::from_secs(1_000_000));
        let (handle, issuer) = predictive(&clock, None);
        let _subscriptions = sessions(&clock, &handle, &issuer).await;
        assert_eq!(handle.plan(), 6);
    }

    #[tokio::test]
    async fn refreshes_ahead_of_their_slot_keep_to_the_prefetch_rate_and_stop_in_a_surge() {
        use crate::issuer::{TokenIssuer as _, TokenRequest};
        let clock = crate::ManualClock::new(Duration::from_secs(1_000_000));
        let (handle, issuer) = predictive_with(
            &clock,
            crate::policy::PrefetchPolicy {
                threshold: 0.5,
                margin: Duration::from_secs(10),
                max_issue_rate: 1.0,
                cost_bound: None,
                ..crate::policy::PrefetchPolicy::default()
            },
        );
        // Eight sessions on one-minute tokens; the window before the peak
        // is 300 s, so most slots come after their tokens end.
        let mut claims = Vec::new();
        let mut subscriptions = Vec::new();
        for i in 0..8 {
            let token = issuer
                .issue(TokenRequest::new("u", format!("s{i}"), MIN))
                .await
                .unwrap();
            let c = handle.verifier().verify(&token.token).unwrap();
            subscriptions.push(handle.subscribe(&c, 4).unwrap().0);
            claims.push(c);
        }
        assert_eq!(handle.plan(), 8);
        // Two minutes of steady traffic, eight requests a second.
        let now = crate::Clock::unix(&clock).as_secs();
        for second in now - 119..=now {
            for _ in 0..8 {
                handle.shared.recent_requests.record(second);
            }
        }
        // Every session sends a request a second into the window, far from
        // its margin: one second of the prefetch rate (one refresh) is
        // issued ahead of its slot, the others wait.
        clock.advance(Duration::from_secs(1));
        let ahead = |handle: &TokenHandle| {
            claims
                .iter()
                .filter(|c| handle.observe(c).refresh.is_some())
                .count()
        };
        assert_eq!(ahead(&handle), 1);
        // A second later, one more.
        handle.wait_idle(Duration::from_secs(5)).await;
        clock.advance(Duration::from_secs(1));
        assert_eq!(ahead(&handle), 1);
        // A surge (ten times the rate over the last 10 s): none, though the
        // bucket has refilled.
        handle.wait_idle(Duration::from_secs(5)).await;
        clock.advance(Duration::from_secs(5));
        let now = crate::Clock::unix(&clock).as_secs();
        for second in now - 9..=now {
            for _ in 0..80 {
                handle.shared.recent_requests.record(second);
            }
        }
        assert_eq!(ahead(&handle), 0);
    }

    #[test]
    fn no_active_session_means_no_idle_prefetch() {
        let now = 10_000;
        // Nobody active: nothing pays for the idle sessions, nor for those
        // holding an earlier wave's long token.
        let idle = vec![session(0, now - 120), session(1, now + 900)];
        let (kept, left) = within_cost(idle, now, MIN, 48 * MIN, 1.0);
        assert!(kept.is_empty());
        assert_eq!(sids(&left), ["s0", "s1"]);
        let holders: Vec<_> = (0..3).map(|i| session(i, now + 600 + i as u64)).collect();
        let (kept, left) = within_cost(holders, now, MIN, 48 * MIN, 1.0);
        assert!(kept.is_empty());
        assert_eq!(left.len(), 3);
    }

    #[test]
    fn a_holder_seen_within_a_lifetime_is_active() {
        let now = 10_000;
        // Two holders of an earlier wave's long token, lapsing in 5 and 10
        // minutes inside a 48-minute span: one was seen 30 s ago, one an
        // hour ago; one session lapsed 2 minutes ago.
        let mut seen = session(0, now + 300);
        seen.last_seen = now - 30;
        let mut unseen = session(1, now + 600);
        unseen.last_seen = now - 3600;
        let lapsed = session(2, now - 120);
        let (kept, left) = within_cost(vec![seen, unseen, lapsed], now, MIN, 48 * MIN, 1.0);
        // The seen holder is kept; it leaves 48 − 4 = 44 minutes of the
        // span to refresh, which pays for both idle sessions.
        assert_eq!(sids(&kept), ["s0", "s2", "s1"]);
        assert!(left.is_empty());
        // Its token, valid 4 minutes beyond a lifetime, leaves 2 minutes of
        // a 6-minute span: 2 refreshes replaced, which pay for itself and
        // the most recently lapsed idle session at a bound of 1.
        let mut seen = session(0, now + 300);
        seen.last_seen = now - 30;
        let lapsed = session(2, now - 120);
        let (kept, left) = within_cost(
            vec![seen, lapsed, session(3, now - 180)],
            now,
            MIN,
            6 * MIN,
            1.0,
        );
        assert_eq!(sids(&kept), ["s0", "s2"]);
        assert_eq!(sids(&left), ["s3"]);
    }

    #[test]
    fn holders_do_not_pay_and_come_after_recently_lapsed_sessions() {
        let now = 10_000;
        let all = vec![
            session(0, now + 10),
            session(1, now - 120),
            session(2, now + 900),
            session(3, now + 600),
        ];
        // One active session, 3 lifetimes covered: 3 refreshes replaced,
        // 2 more sessions: the lapsed one, then the longest token.
        let (kept, left) = within_cost(all, now, MIN, 3 * MIN, 1.0);
        assert_eq!(sids(&kept), ["s0", "s1", "s2"]);
        assert_eq!(sids(&left), ["s3"]);
    }
}

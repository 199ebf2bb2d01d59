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
        candidates.sort_by_key(|c| c.exp);
        let start = peak_start.saturating_sub(policy.lead).max(now);
        // A refresh runs at the first driver tick after it is due: the
        // window ends one tick before the peak, so that tick is still before
        // it.
        let tick = Duration::from_micros(self.shared.driver_tick_micros.load(Ordering::Relaxed));
        let end = peak_start.saturating_sub(tick).max(start);
        let n = candidates.len() as u32;
        let lifetime = self.shared.lifetime;
        let max_lifetime = lifetime + policy.max_extension;
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
            self.shared
                .sessions
                .set_planned(&c.sid, (due + lifetime).as_secs(), start.as_secs());
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

//! Refreshes outside the prefetch plan: reactive ones, started when a
//! request arrives with its token near expiry, and those asked for with
//! [`TokenHandle::refresh_now`]. Both deliver the new token the same way.
//!
//! A reactive refresh holds one of `max_reactive_in_flight` permits and
//! counts in [`TokenHandle::in_flight`] through guards that its future
//! owns: however it ends, completed or cancelled, both are given back.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;

use super::state::{InFlight, TokenHandle};
use crate::claims::Claims;
use crate::issuer::{IssuedToken, TokenRequest};
use crate::metrics::{REFRESH_ERRORS, REFRESH_SKIPPED, REFRESHES, WS_DROPPED};
use crate::policy::RefreshMode;
use crate::sessions::{Observation, Push};

impl TokenHandle {
    pub(crate) fn observe(&self, claims: &Claims) -> Observation {
        let verifier = &self.shared.verifier;
        let now = verifier.clock().unix_secs();
        let margin = self.shared.mode.margin().as_secs();
        self.shared.recent_requests.record(now);
        let observation =
            self.shared
                .sessions
                .observe(claims, now, Some(margin), verifier.leeway_secs());
        if observation.reuse {
            self.revoke_reused(&claims.sid);
            return observation;
        }
        if observation.ahead_of_slot {
            // Ahead of its slot, the planned token counts against the
            // prefetch rate like the scheduled one it replaces. It follows
            // the clients' requests, so none while they surge beyond what
            // the forecast announced. Otherwise the session waits for its
            // margin or its slot.
            let surging = self.shared.recent_requests.surging(now);
            let mut bucket = self.shared.bucket.lock().unwrap_or_else(|e| e.into_inner());
            if surging || bucket.try_take(verifier.clock().unix()).is_err() {
                drop(bucket);
                self.shared.sessions.cancel(&claims.sid);
                return Observation {
                    refresh: None,
                    planned_exp: None,
                    ..observation
                };
            }
        }
        if let Some(subject) = &observation.refresh {
            // Inside the spreading window, a session with a prefetch planned
            // gets the planned lifetime now: its refresh is due anyway, and
            // the scheduled one is then skipped.
            let lifetime = match (&self.shared.mode, observation.planned_exp) {
                (RefreshMode::Predictive(p), Some(exp)) if p.merge_due_refreshes => {
                    Duration::from_secs(exp.saturating_sub(now))
                        .clamp(self.shared.lifetime, self.shared.lifetime + p.max_extension)
                }
                _ => self.shared.lifetime,
            };
            self.spawn_reactive(claims.sid.clone(), subject.clone(), lifetime);
        }
        observation
    }

    fn spawn_reactive(&self, sid: String, subject: Arc<str>, lifetime: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Outside a runtime there is nothing to run the refresh on; the
            // next request in one retries.
            self.shared.sessions.cancel(&sid);
            return;
        };
        let Ok(permit) = self.shared.reactive_permits.clone().try_acquire_owned() else {
            self.shared.sessions.cancel(&sid);
            metrics::counter!(REFRESH_SKIPPED).increment(1);
            return;
        };
        let in_flight = InFlight::enter(&self.shared);
        metrics::counter!(REFRESHES, "kind" => "reactive").increment(1);
        let request = TokenRequest {
            subject: subject.to_string(),
            session: sid,
            lifetime,
        };
        runtime.spawn(self.clone().reactive(request, permit, in_flight));
    }

    /// The task of one reactive refresh; the permit and the in-flight count
    /// go back when it ends or is dropped.
    async fn reactive(
        self,
        request: TokenRequest,
        permit: OwnedSemaphorePermit,
        in_flight: InFlight,
    ) {
        self.refresh(request, false).await;
        drop(permit);
        drop(in_flight);
    }

    pub(super) async fn refresh(
        &self,
        request: TokenRequest,
        prefetch: bool,
    ) -> Option<IssuedToken> {
        use tracing::Instrument as _;
        let sid = request.session.clone();
        let span = tracing::debug_span!(
            "foresight_token.refresh",
            sid = %sid,
            prefetch,
            lifetime = ?request.lifetime
        );
        match self.shared.issuer.issue(request).instrument(span).await {
            Ok(token) => {
                if let Some(channel) = self.shared.sessions.complete(&sid, prefetch, Some(&token))
                    && channel.try_send(Push::Token(token.clone())).is_err()
                {
                    metrics::counter!(WS_DROPPED).increment(1);
                }
                Some(token)
            }
            Err(error) => {
                tracing::debug!(%error, sid, "token refresh failed");
                metrics::counter!(REFRESH_ERRORS).increment(1);
                self.shared.sessions.complete(&sid, prefetch, None);
                None
            }
        }
    }

    /// Issues a replacement token for a session now and delivers it (by
    /// WebSocket, and by header on the session's next request).
    pub async fn refresh_now(&self, subject: &str, sid: &str) -> Option<IssuedToken> {
        let _in_flight = InFlight::enter(&self.shared);
        self.refresh(TokenRequest::new(subject, sid, self.shared.lifetime), false)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    use super::*;
    use crate::handle::HandleConfig;
    use crate::issuer::{IssueFuture, TokenIssuer};
    use crate::keys::{KeyRing, SigningKey};
    use crate::policy::SessionBinding;
    use crate::{ManualClock, SharedClock, Verifier};

    /// An issuer whose answers never come.
    #[derive(Debug)]
    struct Stalled;

    impl TokenIssuer for Stalled {
        fn issue(&self, _request: TokenRequest) -> IssueFuture<'_> {
            Box::pin(std::future::pending())
        }
    }

    fn handle(max_reactive_in_flight: usize) -> TokenHandle {
        let clock: SharedClock = Arc::new(ManualClock::new(Duration::from_secs(1_000)));
        let ring = KeyRing::new(SigningKey::hs256("k1", &[7; 32]).unwrap(), clock.clone());
        let verifier = Verifier::builder(ring, "iss", "aud")
            .with_clock(clock)
            .build();
        TokenHandle::new(HandleConfig {
            verifier,
            issuer: Arc::new(Stalled),
            signal: None,
            mode: RefreshMode::Reactive {
                margin: Duration::from_secs(60),
            },
            lifetime: Duration::from_secs(300),
            binding: SessionBinding::None,
            max_sessions: 16,
            idle_ttl: Duration::from_secs(3600),
            max_reactive_in_flight,
        })
    }

    fn poll_once(future: impl Future) {
        let mut future = pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
    }

    #[test]
    fn a_cancelled_reactive_refresh_gives_its_permit_and_count_back() {
        let handle = handle(2);
        let permits = &handle.shared.reactive_permits;
        let permit = permits.clone().try_acquire_owned().unwrap();
        let in_flight = InFlight::enter(&handle.shared);
        let request = TokenRequest::new("alice", "s1", Duration::from_secs(300));
        let refresh = handle.clone().reactive(request, permit, in_flight);
        assert_eq!(permits.available_permits(), 1);
        assert_eq!(handle.in_flight(), 1);
        // Started, waiting on the issuer, then dropped.
        poll_once(refresh);
        assert_eq!(permits.available_permits(), 2);
        assert_eq!(handle.in_flight(), 0);
    }

    #[test]
    fn a_cancelled_refresh_now_is_no_longer_in_flight() {
        let handle = handle(2);
        poll_once(handle.refresh_now("alice", "s1"));
        assert_eq!(handle.in_flight(), 0);
    }
}

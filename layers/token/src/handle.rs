//! The state a [`TokenPrefetchLayer`](crate::TokenPrefetchLayer) shares with
//! its services, its WebSocket endpoint and its prefetch driver.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use foresight_core::signal::LoadSignal;
use futures_util::StreamExt as _;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use tokio::sync::{Notify, Semaphore};

use crate::claims::Claims;
use crate::error::{RevocationError, TokenError};
use crate::issuer::{IssuedToken, TokenIssuer, TokenRequest};
use crate::revoke::Revocation;
use crate::sessions::{Observation, PrefetchTurn, Push, SessionTable};
use crate::verify::Verifier;

/// When tokens are refreshed.
#[derive(Clone, Debug)]
pub enum RefreshMode {
    /// The baseline: a token is refreshed when a request arrives with less
    /// than `margin` left, as every token library does.
    Reactive {
        /// Margin before expiry.
        margin: Duration,
    },
    /// Reactive refreshes, plus prefetching ahead of predicted peaks.
    Predictive(PrefetchPolicy),
}

/// How refreshes ahead of a predicted peak are planned.
///
/// Every `plan_interval`, the layer asks the load signal whether `threshold`
/// will be exceeded within `horizon`. A peak already under way is not
/// planned again: the planner looks past it (scanning the forecast in
/// `scan_step`s) for the next onset within `horizon`, so that a forecast
/// that moves the end of the current peak later never turns into a burst of
/// refreshes inside it. If the next peak is predicted at `T`, it
/// scans the forecast forward (in `scan_step`s, at most `max_extension` past
/// `T`) for the end of the peak `E`, and selects the tracked sessions whose
/// tokens all expire before `E`. Their refreshes are spread evenly over
/// `[max(now, T − lead), T − tick)` with jitter inside each slot, where
/// `tick` is the period of the driver started by
/// [`TokenHandle::spawn_driver`] (a refresh runs at the first tick after it
/// is due, so the last one still runs before `T`) (earliest expiry
/// first, at most `max_issue_rate` per second; a token that expires before
/// its slot is kept alive by reactive refreshes until then), and the new
/// tokens expire at `E +
/// after_peak + U(0, jitter)`: they outlast the peak, and their own
/// refreshes do not all fall due at once. A lifetime is never more than
/// `max_extension` above the base token lifetime.
#[derive(Clone, Debug)]
pub struct PrefetchPolicy {
    /// Reactive margin, kept as the fallback outside predicted peaks.
    pub margin: Duration,
    /// Load threshold that defines a peak.
    pub threshold: f64,
    /// How far ahead to look for a peak.
    pub horizon: Duration,
    /// Longest spreading window before a peak.
    pub lead: Duration,
    /// Longest lifetime extension above the base lifetime.
    pub max_extension: Duration,
    /// Margin after the predicted end of the peak.
    pub after_peak: Duration,
    /// Spread of the expiries of prefetched tokens.
    pub jitter: Duration,
    /// Most prefetch refreshes per second.
    pub max_issue_rate: f64,
    /// How often the forecast is consulted.
    pub plan_interval: Duration,
    /// Resolution of the scan for the end of a peak.
    pub scan_step: Duration,
    /// Whether a reactive refresh of a session that has a prefetch planned
    /// and falls inside the spreading window issues the planned, longer
    /// token at once (the scheduled prefetch is then skipped). It saves one
    /// request per session whose token expires inside the window; without
    /// it the scheduled refreshes are spread evenly whatever the expiries.
    pub merge_due_refreshes: bool,
}

impl Default for PrefetchPolicy {
    /// Margin 60 s, threshold 0.8, horizon 30 min, lead 30 min, extension
    /// up to 2 h, 5 min after the peak plus up to 10 min jitter, 200
    /// refreshes/s, planning every 10 s, peak-end scan in 1 min steps,
    /// merging due refreshes.
    fn default() -> Self {
        Self {
            margin: Duration::from_secs(60),
            threshold: 0.8,
            horizon: Duration::from_secs(30 * 60),
            lead: Duration::from_secs(30 * 60),
            max_extension: Duration::from_secs(2 * 3600),
            after_peak: Duration::from_secs(5 * 60),
            jitter: Duration::from_secs(10 * 60),
            max_issue_rate: 200.0,
            plan_interval: Duration::from_secs(10),
            scan_step: Duration::from_secs(60),
            merge_due_refreshes: true,
        }
    }
}

impl RefreshMode {
    fn margin(&self) -> Duration {
        match self {
            Self::Reactive { margin } => *margin,
            Self::Predictive(p) => p.margin,
        }
    }
}

/// How a request names its session, so that a token of another session is
/// refused.
#[derive(Clone, Debug)]
pub enum SessionBinding {
    /// No binding.
    None,
    /// The session id is in this header, when present.
    Header(http::HeaderName),
    /// The session id is in this cookie, when present.
    Cookie(String),
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    due_micros: u64,
    seq: u64,
    sid: String,
    subject: Arc<str>,
    lifetime_secs: u64,
    cutoff: u64,
}

pub(crate) struct Shared {
    pub(crate) verifier: Verifier,
    pub(crate) issuer: Arc<dyn TokenIssuer>,
    pub(crate) signal: Option<Arc<dyn LoadSignal>>,
    pub(crate) mode: RefreshMode,
    pub(crate) lifetime: Duration,
    pub(crate) binding: SessionBinding,
    pub(crate) sessions: SessionTable,
    schedule: Mutex<BinaryHeap<Reverse<Scheduled>>>,
    seq: AtomicUsize,
    in_flight: AtomicUsize,
    idle: Notify,
    reactive_permits: Semaphore,
    bucket: Mutex<(f64, u64)>,
    last_plan: Mutex<Option<u64>>,
    /// Period of the prefetch driver, in microseconds (0: none started).
    driver_tick_micros: AtomicU64,
}

/// Shared handle of a [`TokenPrefetchLayer`](crate::TokenPrefetchLayer):
/// planning, the prefetch driver, revocation and the WebSocket endpoint.
/// Clones share the state.
#[derive(Clone)]
pub struct TokenHandle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for TokenHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenHandle")
            .field("mode", &self.shared.mode)
            .field("lifetime", &self.shared.lifetime)
            .field("sessions", &self.shared.sessions.len())
            .field("in_flight", &self.shared.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The verified claims of a request, in its extensions.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Arc<Claims>);

#[allow(clippy::too_many_arguments)]
impl TokenHandle {
    pub(crate) fn new(
        verifier: Verifier,
        issuer: Arc<dyn TokenIssuer>,
        signal: Option<Arc<dyn LoadSignal>>,
        mode: RefreshMode,
        lifetime: Duration,
        binding: SessionBinding,
        max_sessions: usize,
        idle_ttl: Duration,
        max_reactive_in_flight: usize,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                verifier,
                issuer,
                signal,
                mode,
                lifetime,
                binding,
                sessions: SessionTable::new(max_sessions, idle_ttl.as_secs()),
                schedule: Mutex::default(),
                seq: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
                reactive_permits: Semaphore::new(max_reactive_in_flight),
                bucket: Mutex::new((0.0, 0)),
                last_plan: Mutex::new(None),
                driver_tick_micros: AtomicU64::new(0),
            }),
        }
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.shared.verifier
    }

    /// Sessions tracked.
    pub fn tracked_sessions(&self) -> usize {
        self.shared.sessions.len()
    }

    /// Prefetch refreshes scheduled and not run yet.
    pub fn scheduled(&self) -> usize {
        self.shared
            .schedule
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Refreshes running now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// Waits until no refresh is running, for at most `limit`; returns
    /// whether it got there.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.idle.notified();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }

    /// Authenticates the `Authorization: Bearer` token of a request.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, TokenError> {
        let value = headers.get(AUTHORIZATION).ok_or(TokenError::Missing)?;
        let token = bearer(value.as_bytes()).ok_or(TokenError::NotBearer)?;
        let claims = self.shared.verifier.verify(token)?;
        let bound = match &self.shared.binding {
            SessionBinding::None => None,
            SessionBinding::Header(name) => headers.get(name).map(|v| v.as_bytes()),
            SessionBinding::Cookie(name) => cookie(headers, name),
        };
        if let Some(sid) = bound
            && sid != claims.sid.as_bytes()
        {
            return Err(TokenError::WrongSession);
        }
        Ok(claims)
    }

    pub(crate) fn observe(&self, claims: &Claims) -> Observation {
        let now = self.shared.verifier.clock().unix_secs();
        let margin = self.shared.mode.margin().as_secs();
        let observation = self.shared.sessions.observe(claims, now, Some(margin));
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
        let Ok(permit) = self.shared.reactive_permits.try_acquire() else {
            self.shared.sessions.cancel(&sid);
            metrics::counter!("foresight_token_refresh_skipped_total").increment(1);
            return;
        };
        permit.forget();
        let this = self.clone();
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        metrics::counter!("foresight_token_refreshes_total", "kind" => "reactive").increment(1);
        runtime.spawn(async move {
            let request = TokenRequest {
                subject: subject.to_string(),
                session: sid,
                lifetime,
            };
            this.refresh(request, false).await;
            this.shared.reactive_permits.add_permits(1);
            this.finish_one();
        });
    }

    fn finish_one(&self) {
        if self.shared.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.idle.notify_waiters();
        }
    }

    async fn refresh(&self, request: TokenRequest, prefetch: bool) -> Option<IssuedToken> {
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
                    metrics::counter!("foresight_token_ws_dropped_total").increment(1);
                }
                Some(token)
            }
            Err(error) => {
                tracing::debug!(%error, sid, "token refresh failed");
                metrics::counter!("foresight_token_refresh_errors_total").increment(1);
                self.shared.sessions.complete(&sid, prefetch, None);
                None
            }
        }
    }

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
        metrics::counter!("foresight_token_prefetch_planned_total").increment(u64::from(n));
        tracing::debug!(
            sessions = n,
            peak_in = ?until,
            peak_len = ?(peak_end - peak_start),
            "prefetch planned"
        );
        n as usize
    }

    /// Runs the prefetches that are due (at most `max_issue_rate` per
    /// second, 64 at once) and waits for them; returns how many ran.
    pub async fn run_due(&self) -> usize {
        let now = self.shared.verifier.clock().unix();
        let rate = match &self.shared.mode {
            RefreshMode::Predictive(p) => p.max_issue_rate,
            RefreshMode::Reactive { .. } => return 0,
        };
        let due = {
            let mut bucket = self.shared.bucket.lock().unwrap_or_else(|e| e.into_inner());
            let now_micros = micros(now);
            let elapsed = now_micros.saturating_sub(bucket.1) as f64 / 1e6;
            let burst = rate.max(1.0);
            bucket.0 = (bucket.0 + elapsed * rate).min(burst);
            bucket.1 = now_micros;
            let mut schedule = self
                .shared
                .schedule
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let mut due = Vec::new();
            let mut later = Vec::new();
            while bucket.0 >= 1.0 {
                match schedule.peek() {
                    Some(Reverse(s)) if s.due_micros <= now_micros => {}
                    _ => break,
                }
                let Some(Reverse(s)) = schedule.pop() else {
                    break;
                };
                match self.shared.sessions.prefetch_turn(&s.sid, s.cutoff) {
                    PrefetchTurn::Run => {
                        bucket.0 -= 1.0;
                        due.push(s);
                    }
                    PrefetchTurn::Skip => {}
                    PrefetchTurn::Later => later.push(s),
                }
            }
            // Asked again a second from now, after the session's reactive
            // refresh has likely landed.
            for mut s in later {
                s.due_micros = now_micros + 1_000_000;
                schedule.push(Reverse(s));
            }
            due
        };
        let n = due.len();
        if n == 0 {
            return 0;
        }
        self.shared.in_flight.fetch_add(n, Ordering::AcqRel);
        metrics::counter!("foresight_token_refreshes_total", "kind" => "prefetch")
            .increment(n as u64);
        futures_util::stream::iter(due)
            .for_each_concurrent(64, |s| async move {
                let request = TokenRequest {
                    subject: s.subject.to_string(),
                    session: s.sid,
                    lifetime: Duration::from_secs(s.lifetime_secs),
                };
                self.refresh(request, true).await;
                self.finish_one();
            })
            .await;
        n
    }

    /// One step of the driver: plan if `plan_interval` has passed, then run
    /// what is due.
    pub async fn tick(&self) -> usize {
        if let RefreshMode::Predictive(policy) = &self.shared.mode {
            let now = self.shared.verifier.clock().unix_secs();
            let last = *self
                .shared
                .last_plan
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|last| last + policy.plan_interval.as_secs() <= now) {
                self.plan();
            }
        }
        self.run_due().await
    }

    /// Spawns the prefetch driver: a [`tick`](Self::tick) every `period`
    /// (1 s is a good value). It stops when every other handle, layer and
    /// service is dropped.
    pub fn spawn_driver(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        self.shared.driver_tick_micros.store(
            u64::try_from(period.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(shared) = weak.upgrade() else { break };
                TokenHandle { shared }.tick().await;
            }
        })
    }

    /// Revokes every token of a session, tells its WebSocket connection and
    /// forgets it.
    pub async fn revoke_session(&self, sid: &str) -> Result<(), RevocationError> {
        let verifier = &self.shared.verifier;
        let until = verifier.clock().unix_secs()
            + crate::verify::DEFAULT_MAX_LIFETIME.as_secs()
            + verifier.leeway_secs();
        verifier
            .revocations()
            .revoke(Revocation::Session(sid.to_owned()), until)
            .await?;
        if let Some(channel) = self.shared.sessions.remove(sid) {
            let _ = channel.try_send(Push::Revoked);
        }
        metrics::counter!("foresight_token_revocations_total", "what" => "session").increment(1);
        Ok(())
    }

    /// Revokes one token (by `jti`, until its `exp`); the session keeps its
    /// other tokens.
    pub async fn revoke_token(
        &self,
        sid: &str,
        jti: &str,
        exp: u64,
    ) -> Result<(), RevocationError> {
        let verifier = &self.shared.verifier;
        verifier
            .revocations()
            .revoke(
                Revocation::Token(jti.to_owned()),
                exp + verifier.leeway_secs(),
            )
            .await?;
        self.shared.sessions.forget_next(sid, jti);
        metrics::counter!("foresight_token_revocations_total", "what" => "token").increment(1);
        Ok(())
    }

    /// Issues a replacement token for a session now and delivers it (by
    /// WebSocket, and by header on the session's next request).
    pub async fn refresh_now(&self, subject: &str, sid: &str) -> Option<IssuedToken> {
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        let token = self
            .refresh(TokenRequest::new(subject, sid, self.shared.lifetime), false)
            .await;
        self.finish_one();
        token
    }
}

/// The messages pushed to one session, from
/// [`TokenHandle::subscribe`]: the transport-independent part of the
/// WebSocket endpoint. Dropping it detaches the session's connection.
#[derive(Debug)]
pub struct Subscription {
    receiver: tokio::sync::mpsc::Receiver<Push>,
    sender: tokio::sync::mpsc::Sender<Push>,
    sid: String,
    handle: TokenHandle,
}

impl Subscription {
    /// The next message; `None` once the session is forgotten.
    pub async fn recv(&mut self) -> Option<Push> {
        self.receiver.recv().await
    }

    /// The next message if one is waiting.
    pub fn try_recv(&mut self) -> Option<Push> {
        self.receiver.try_recv().ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.handle.shared.sessions.detach(&self.sid, &self.sender);
    }
}

impl TokenHandle {
    /// Attaches a connection to the session of `claims` (already
    /// verified), replacing any previous one, with a queue of `queue`
    /// messages. Returns the subscription and the pre-fetched token the
    /// session already has, if any. `None` if the session table is full.
    pub fn subscribe(
        &self,
        claims: &Claims,
        queue: usize,
    ) -> Option<(Subscription, Option<IssuedToken>)> {
        let (sender, receiver) = tokio::sync::mpsc::channel(queue.max(1));
        let now = self.shared.verifier.clock().unix_secs();
        let pending = self.shared.sessions.attach(claims, now, sender.clone())?;
        Some((
            Subscription {
                receiver,
                sender,
                sid: claims.sid.clone(),
                handle: self.clone(),
            },
            pending,
        ))
    }
}

/// The token of an `Authorization: Bearer` value.
pub(crate) fn bearer(value: &[u8]) -> Option<&str> {
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    std::str::from_utf8(token).ok().map(str::trim)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let (k, v) = pair.split_at_checked(name.len())?;
            (k == name.as_bytes() && v.first() == Some(&b'=')).then(|| &v[1..])
        })
}

/// A clock reading in whole microseconds.
fn micros(at: Duration) -> u64 {
    u64::try_from(at.as_micros()).unwrap_or(u64::MAX)
}

//! What a cache shares between its clones and its background tasks: the
//! entries, the epoch that guards fills, and the proof that announcements
//! still arrive (the heartbeat).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use moka::sync::Cache;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::barrier::Barrier;
use super::bus::{Beat, BusEvent, InvalidationBus};
use super::peers::Peers;
use crate::{SessionData, SessionId, Versioned};

/// A cached session and the instant the store would expire it if nothing
/// touched it (never later than the store's own deadline).
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) session: Versioned<SessionData>,
    pub(super) expires_at: Instant,
}

/// Lets moka forget an entry when its session expires in the store, so
/// that expired entries leave memory even if never read again. Reads check
/// `expires_at` themselves as well, since moka's clock is not tokio's
/// (paused time).
struct UntilExpiry;

impl moka::Expiry<SessionId, Arc<Entry>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _id: &SessionId,
        entry: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(entry.expires_at.saturating_duration_since(Instant::now()))
    }

    fn expire_after_update(
        &self,
        id: &SessionId,
        entry: &Arc<Entry>,
        updated_at: std::time::Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(id, entry, updated_at)
    }
}

/// Milliseconds since `base` of the last proof that announcements arrive;
/// `NEVER` when there is none.
const NEVER: u64 = u64::MAX;

/// Stripes of the per-session epochs. An announcement moves only its
/// session's stripe, so a fill is dropped for an event about its own
/// session (or one of the 1/`STRIPES` that share its stripe), not for an
/// event about any session: under a write load spread over many sessions,
/// one global epoch dropped most fills.
const STRIPES: usize = 1024;

/// What a fill compares before and after it reads: the epoch of the whole
/// cache (resets, trust withdrawn or restored) and its session's stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Epoch {
    all: u64,
    session: u64,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) cache: Cache<SessionId, Arc<Entry>>,
    pub(super) origin: u64,
    /// Bumped by every reset received, and when trust is withdrawn or
    /// restored; a fill whose [`Epoch`] moved while it ran is dropped
    /// (checked again after the insert).
    epoch: AtomicU64,
    /// Bumped by every announcement, in its session's stripe.
    stripes: Box<[AtomicU64]>,
    base: Instant,
    last_proof: AtomicU64,
    /// How long a proof stays valid.
    pub(super) proof_timeout: Duration,
    /// Numbers this cache's heartbeats and tells writers when theirs came
    /// back.
    pub(super) barrier: Arc<Barrier>,
    /// Other caches and what they acknowledged (acknowledged writes).
    pub(super) peers: Peers,
    /// Where acknowledgements of other caches' heartbeats are queued for
    /// sending; `None` unless this cache acknowledges.
    acks_out: Option<tokio::sync::mpsc::Sender<(u64, u64)>>,
}

impl State {
    pub(super) fn new(
        capacity: u64,
        ttl: Duration,
        proof_timeout: Duration,
        acks_out: Option<tokio::sync::mpsc::Sender<(u64, u64)>>,
    ) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .expire_after(UntilExpiry)
                .build(),
            origin: rand::random(),
            epoch: AtomicU64::new(0),
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            base: Instant::now(),
            last_proof: AtomicU64::new(NEVER),
            proof_timeout,
            barrier: Arc::new(Barrier::new()),
            peers: Peers::new(),
            acks_out,
        }
    }

    fn stripe(&self, id: SessionId) -> &AtomicU64 {
        // Ids are 128 random bits: their low bits spread evenly.
        &self.stripes[(id.as_u128() % STRIPES as u128) as usize]
    }

    /// The epoch a fill of `id` starts from.
    pub(super) fn epoch(&self, id: SessionId) -> Epoch {
        Epoch {
            all: self.epoch.load(Ordering::SeqCst),
            session: self.stripe(id).load(Ordering::SeqCst),
        }
    }

    /// The whole cache's epoch alone, for a session that has no id yet.
    pub(super) fn epoch_of_all(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The epoch of a fill of `id` that started at the whole cache's epoch
    /// `all`, with `id`'s stripe as it is now.
    pub(super) fn epoch_since(&self, all: u64, id: SessionId) -> Epoch {
        Epoch {
            all,
            session: self.stripe(id).load(Ordering::SeqCst),
        }
    }

    /// Moves the whole cache's epoch: every fill in progress is dropped.
    fn bump_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn millis(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.base).as_millis() as u64
    }

    /// Records that announcements arrive now.
    pub(super) fn proven(&self) {
        self.proven_at(Instant::now());
    }

    /// Records that everything published up to `at` has arrived.
    fn proven_at(&self, at: Instant) {
        self.last_proof.store(self.millis(at), Ordering::SeqCst);
    }

    /// Whether this cache acknowledges other caches' heartbeats and counts
    /// its proof from when its heartbeat was sent.
    pub(super) fn acknowledges(&self) -> bool {
        self.acks_out.is_some()
    }

    /// Withdraws the proof: nothing is answered from memory until the next
    /// heartbeat comes back.
    pub(super) fn distrust(&self) {
        self.last_proof.store(NEVER, Ordering::SeqCst);
        self.bump_all();
    }

    /// Whether announcements were proven to arrive within the timeout.
    pub(super) fn proven_recently(&self) -> bool {
        let last = self.last_proof.load(Ordering::SeqCst);
        last != NEVER
            && self.millis(Instant::now()).saturating_sub(last)
                <= self.proof_timeout.as_millis() as u64
    }

    /// Fills the cache with `entry` unless an event about `id` (or the
    /// whole cache) arrived since `epoch` was read; if one arrives during
    /// the insert, the entry is dropped again. Either way no older entry of
    /// `id` survives: it may be older than `entry` (after a save, it is).
    pub(super) fn fill(&self, id: SessionId, entry: Entry, epoch: Epoch) {
        if self.epoch(id) != epoch {
            self.cache.invalidate(&id);
            metrics::counter!("foresight_store_cache_fills_dropped_total").increment(1);
            return;
        }
        self.cache.insert(id, Arc::new(entry));
        if self.epoch(id) != epoch {
            self.cache.invalidate(&id);
            metrics::counter!("foresight_store_cache_fills_dropped_total").increment(1);
        }
    }

    fn apply(&self, event: BusEvent) {
        // Before anything else, so that a fill in progress sees it. A
        // heartbeat changes nothing cached, unless it restores trust (below).
        match &event {
            BusEvent::Invalidate(inv) => {
                self.stripe(inv.id).fetch_add(1, Ordering::SeqCst);
            }
            BusEvent::Reset => self.bump_all(),
            BusEvent::Heartbeat(_) | BusEvent::Ack { .. } => {}
        }
        match event {
            BusEvent::Invalidate(inv) if inv.origin == self.origin => {}
            BusEvent::Invalidate(inv) => {
                let newer = match (self.cache.get(&inv.id), inv.version) {
                    (Some(cached), Some(v)) => cached.session.version >= v,
                    _ => false,
                };
                if !newer {
                    self.cache.invalidate(&inv.id);
                    metrics::counter!("foresight_store_cache_invalidations_total").increment(1);
                }
            }
            BusEvent::Heartbeat(Beat { origin, seq, .. }) if origin == self.origin => {
                if !self.proven_recently() {
                    // Announcements may have been lost while unproven.
                    self.cache.invalidate_all();
                    self.bump_all();
                }
                match self.barrier.sent_at(seq) {
                    // Everything published before it was sent has arrived.
                    Some(sent) => self.proven_at(sent),
                    // Too old to know when it left: proves nothing to a
                    // cache whose peers rely on its lease.
                    None if self.acknowledges() => {}
                    None => self.proven(),
                }
                // Last: the writers it releases must see everything above.
                self.barrier.arrived(seq);
            }
            BusEvent::Heartbeat(Beat {
                origin,
                seq,
                acknowledges,
            }) => {
                // Only a cache that acknowledges waits for acknowledgements.
                if let Some(out) = &self.acks_out
                    && acknowledges
                {
                    self.peers.heard(origin, self.proof_timeout);
                    // A dropped acknowledgement only makes the writer wait
                    // for this cache's lease to run out.
                    let _ = out.try_send((origin, seq));
                }
            }
            BusEvent::Ack { to, seq, from } => {
                if to == self.origin && self.acknowledges() {
                    self.peers.acked(from, seq, self.proof_timeout);
                }
            }
            BusEvent::Reset => {
                self.cache.invalidate_all();
                self.bump_all();
                if self.acknowledges() {
                    // Writers stop waiting for a cache they have not heard
                    // for a lease, as after a disconnection: only a
                    // heartbeat sent from now on may start its lease again.
                    self.distrust();
                    self.barrier.register();
                } else {
                    // The subscription was just (re)established.
                    self.proven();
                }
            }
        }
    }
}

/// Applies every event of `bus` to the state, until the state is dropped.
pub(super) fn spawn_listener(bus: &dyn InvalidationBus, state: Weak<State>) {
    let mut events = bus.subscribe();
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(RecvError::Lagged(_)) => BusEvent::Reset,
                Err(RecvError::Closed) => return,
            };
            let Some(state) = state.upgrade() else { return };
            state.apply(event);
        }
    });
}

/// Sends the acknowledgements queued by the listener, until the queue's
/// sender (in the state) is dropped.
pub(super) fn spawn_acknowledger(
    bus: Arc<dyn InvalidationBus>,
    origin: u64,
    mut queue: tokio::sync::mpsc::Receiver<(u64, u64)>,
) {
    tokio::spawn(async move {
        while let Some((to, seq)) = queue.recv().await {
            if let Err(e) = bus.acknowledge(to, seq, origin).await {
                tracing::debug!(error = %e, "session cache acknowledgement not published");
                metrics::counter!("foresight_store_cache_ack_errors_total").increment(1);
            }
        }
    });
}

/// Publishes this cache's heartbeat every `interval`, and as soon as a
/// writer waits at the barrier, until the state is dropped.
pub(super) fn spawn_heartbeat(
    bus: Arc<dyn InvalidationBus>,
    state: Weak<State>,
    interval: Duration,
) {
    let Some(barrier) = state.upgrade().map(|s| s.barrier.clone()) else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if !barrier.is_wanted() {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = barrier.demanded() => {}
                }
            }
            let Some((origin, acknowledges)) =
                state.upgrade().map(|s| (s.origin, s.acknowledges()))
            else {
                return;
            };
            let beat = Beat {
                origin,
                seq: barrier.next(),
                acknowledges,
            };
            match bus.heartbeat(beat).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "session cache heartbeat not published");
                    metrics::counter!("foresight_store_cache_heartbeat_errors_total").increment(1);
                    // Not a tight loop while the bus refuses.
                    tick.tick().await;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(3);

    fn state(acknowledges: bool) -> State {
        let acks_out = acknowledges.then(|| tokio::sync::mpsc::channel(1).0);
        State::new(16, Duration::from_secs(60), LEASE, acks_out)
    }

    /// The cache sends a heartbeat and hears it back from the bus.
    fn own_heartbeat_returns(state: &State) {
        let seq = state.barrier.next();
        state.apply(BusEvent::Heartbeat(Beat {
            origin: state.origin,
            seq,
            acknowledges: true,
        }));
    }

    #[tokio::test(start_paused = true)]
    async fn a_resubscribed_cache_that_acknowledges_waits_for_its_own_heartbeat() {
        let state = state(true);
        own_heartbeat_returns(&state);
        assert!(state.proven_recently());
        // Back after a disconnection: writers may have stopped waiting for
        // this cache meanwhile, so the bus's word does not restore trust.
        state.apply(BusEvent::Reset);
        assert!(!state.proven_recently(), "trusted on the bus's word");
        assert!(state.barrier.is_wanted(), "no heartbeat asked for");
        own_heartbeat_returns(&state);
        assert!(state.proven_recently());
    }

    #[tokio::test(start_paused = true)]
    async fn a_resubscribed_bus_only_cache_trusts_the_bus() {
        let state = state(false);
        state.apply(BusEvent::Reset);
        assert!(state.proven_recently());
    }
}

//! Test doubles around real stores and buses: a store that counts the loads
//! reaching it, a bus that can go silent or fail its publishes, and one
//! that delivers late to its subscriber.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use foresight_store::{
    Beat, BusEvent, Expiry, Invalidation, InvalidationBus, Loaded, LocalBus, SessionData,
    SessionId, SessionStore, StoreError, StoreFuture, Version, Versioned,
};
use tokio::sync::{Notify, broadcast};

/// Counts `load` / `load_with_ttl` calls that reach `inner`; optionally
/// holds each load (`hold`) or save (`hold_saves`), after it reached the
/// store, notifying the first `Notify` and waiting for the second.
#[derive(Clone, Debug)]
pub struct Counting<S> {
    pub inner: S,
    pub loads: Arc<AtomicUsize>,
    pub hold: Option<(Arc<Notify>, Arc<Notify>)>,
    pub hold_saves: Option<(Arc<Notify>, Arc<Notify>)>,
}

impl<S> Counting<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            loads: Arc::default(),
            hold: None,
            hold_saves: None,
        }
    }

    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

impl<S: SessionStore> SessionStore for Counting<S> {
    fn create<'a>(&'a self, data: &'a SessionData, expiry: Expiry) -> StoreFuture<'a, SessionId> {
        self.inner.create(data, expiry)
    }

    fn load(&self, id: SessionId) -> StoreFuture<'_, Option<Versioned<SessionData>>> {
        Box::pin(async move { Ok(self.load_with_ttl(id).await?.map(|l| l.session)) })
    }

    fn load_with_ttl(&self, id: SessionId) -> StoreFuture<'_, Option<Loaded>> {
        Box::pin(async move {
            self.loads.fetch_add(1, Ordering::SeqCst);
            let loaded = self.inner.load_with_ttl(id).await?;
            if let Some((read, release)) = &self.hold {
                read.notify_one();
                release.notified().await;
            }
            Ok(loaded)
        })
    }

    fn version(&self, id: SessionId) -> StoreFuture<'_, Option<Version>> {
        self.inner.version(id)
    }

    fn save<'a>(
        &'a self,
        id: SessionId,
        data: &'a SessionData,
        expected: Version,
    ) -> StoreFuture<'a, Version> {
        Box::pin(async move {
            let saved = self.inner.save(id, data, expected).await;
            if let Some((done, release)) = &self.hold_saves {
                done.notify_one();
                release.notified().await;
            }
            saved
        })
    }

    fn delete(&self, id: SessionId, expected: Option<Version>) -> StoreFuture<'_, bool> {
        self.inner.delete(id, expected)
    }

    fn touch(&self, id: SessionId, idle: Duration) -> StoreFuture<'_, bool> {
        self.inner.touch(id, idle)
    }
}

/// A [`LocalBus`] that can go silent (a half-open connection: it still
/// says it is connected, publishing "succeeds", nothing arrives) or fail
/// every publish and heartbeat outright.
#[derive(Clone, Debug, Default)]
pub struct FaultyBus {
    pub inner: LocalBus,
    pub silent: Arc<AtomicBool>,
    pub failing: Arc<AtomicBool>,
}

impl FaultyBus {
    fn send(&self, event: impl FnOnce(&LocalBus) -> StoreFuture<'_, ()>) -> StoreFuture<'_, ()> {
        if self.failing.load(Ordering::SeqCst) {
            return Box::pin(async { Err(StoreError::unavailable("publish refused")) });
        }
        if self.silent.load(Ordering::SeqCst) {
            return Box::pin(async { Ok(()) });
        }
        event(&self.inner)
    }
}

impl InvalidationBus for FaultyBus {
    fn publish(&self, invalidation: Invalidation) -> StoreFuture<'_, ()> {
        self.send(|bus| bus.publish(invalidation))
    }

    fn heartbeat(&self, beat: Beat) -> StoreFuture<'_, ()> {
        self.send(|bus| bus.heartbeat(beat))
    }

    fn orders_heartbeats(&self) -> bool {
        self.inner.orders_heartbeats()
    }

    fn acknowledge(&self, to: u64, seq: u64, from: u64) -> StoreFuture<'_, ()> {
        self.send(|bus| bus.acknowledge(to, seq, from))
    }

    fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.inner.subscribe()
    }

    fn is_connected(&self) -> bool {
        true
    }
}

/// A [`LocalBus`] whose subscriber receives every message `delay` late,
/// in order: a slow peer. What it sends reaches the others at once.
#[derive(Clone, Debug)]
pub struct Lagging {
    pub inner: LocalBus,
    pub delay: Duration,
}

impl InvalidationBus for Lagging {
    fn publish(&self, invalidation: Invalidation) -> StoreFuture<'_, ()> {
        self.inner.publish(invalidation)
    }

    fn heartbeat(&self, beat: Beat) -> StoreFuture<'_, ()> {
        self.inner.heartbeat(beat)
    }

    fn orders_heartbeats(&self) -> bool {
        self.inner.orders_heartbeats()
    }

    fn acknowledge(&self, to: u64, seq: u64, from: u64) -> StoreFuture<'_, ()> {
        self.inner.acknowledge(to, seq, from)
    }

    fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        let mut from = self.inner.subscribe();
        let (to, receiver) = broadcast::channel(4096);
        let delay = self.delay;
        tokio::spawn(async move {
            loop {
                let event = match from.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(_)) => BusEvent::Reset,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                tokio::time::sleep(delay).await;
                if to.send(event).is_err() {
                    return;
                }
            }
        });
        receiver
    }

    fn is_connected(&self) -> bool {
        true
    }
}

//! `EtcdBus`: invalidations from an etcd watch on the session keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{EventType, WatchOptions, WatchResponse};
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc, watch};

use super::record;
use super::{EtcdError, EtcdStore};
use crate::cache::{Beat, BusEvent, Invalidation, InvalidationBus};
use crate::store::StoreFuture;
use crate::{SessionId, StoreError};

/// Heartbeats waiting for their proof, at most.
const PENDING_HEARTBEATS: usize = 64;

/// An [`InvalidationBus`] over an etcd watch on every session key.
///
/// The announcements are the writes themselves: etcd sends every change of
/// a key under the store's prefix (save, touch, delete, expiry) to the
/// watch, in revision order, so nothing has to be published and no write
/// can go unannounced because a publish failed ([`publish`](InvalidationBus::publish)
/// does nothing). Events are announced with origin 0, no cache's own.
///
/// **Heartbeat.** [`heartbeat`](InvalidationBus::heartbeat) asks etcd for a
/// progress notification on the watch stream. etcd sends one only when the
/// watch has delivered every event up to the current revision, and it
/// travels on the same stream as the events, so its arrival proves the
/// watch is connected *and* caught up; the bus then hands the cache its
/// [`BusEvent::Heartbeat`]. A stream that is half-open, lagging or cut from
/// the quorum answers nothing, and the cache fails closed after its
/// heartbeat timeout.
///
/// While the watch is down, [`is_connected`](InvalidationBus::is_connected)
/// is false; each (re)connection sends [`BusEvent::Reset`].
///
/// Made by [`EtcdStore::invalidation_bus`]. Cloning shares the watch; it
/// ends when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct EtcdBus {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    sender: broadcast::Sender<BusEvent>,
    connected: AtomicBool,
    heartbeats: mpsc::Sender<Beat>,
    _stop: watch::Sender<()>,
}

impl EtcdStore {
    /// A bus watching this store's keys, for
    /// [`CachedStoreBuilder::with_bus`](crate::CachedStoreBuilder::with_bus). Spawns the
    /// watch task on the current tokio runtime.
    pub fn invalidation_bus(&self) -> EtcdBus {
        let (stop, stopped) = watch::channel(());
        let (heartbeats, requests) = mpsc::channel(PENDING_HEARTBEATS);
        let shared = Arc::new(Shared {
            sender: broadcast::channel(4096).0,
            connected: AtomicBool::new(false),
            heartbeats,
            _stop: stop,
        });
        tokio::spawn(watch_loop(
            self.clone(),
            Arc::downgrade(&shared),
            requests,
            stopped,
        ));
        EtcdBus { shared }
    }
}

impl EtcdBus {
    /// Waits until the watch is established, at most `timeout`. Returns
    /// whether it is.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_connected() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

impl InvalidationBus for EtcdBus {
    fn publish(&self, _invalidation: Invalidation) -> StoreFuture<'_, ()> {
        // The watch carries the write itself.
        Box::pin(async { Ok(()) })
    }

    fn heartbeat(&self, beat: Beat) -> StoreFuture<'_, ()> {
        let sent = self.shared.heartbeats.try_send(beat);
        Box::pin(async move {
            sent.map_err(|_| {
                StoreError::unavailable(EtcdError::Unexpected("watch task not taking heartbeats"))
            })
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.shared.sender.subscribe()
    }

    fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }
}

/// The invalidations a watch response carries.
fn invalidations(prefix: &str, response: &WatchResponse) -> Vec<Invalidation> {
    response
        .events()
        .iter()
        .filter_map(|event| {
            let kv = event.kv()?;
            let id: SessionId = std::str::from_utf8(kv.key())
                .ok()?
                .strip_prefix(prefix)?
                .parse()
                .ok()?;
            let version = match event.event_type() {
                // Undecodable: announced as gone, which drops any copy.
                EventType::Put => record::decode_header(kv.value())
                    .ok()
                    .map(|(header, _)| header.version),
                EventType::Delete => None,
            };
            Some(Invalidation {
                origin: 0,
                id,
                version,
            })
        })
        .collect()
}

async fn watch_loop(
    store: EtcdStore,
    shared: std::sync::Weak<Shared>,
    mut requests: mpsc::Receiver<Beat>,
    mut stopped: watch::Receiver<()>,
) {
    let prefix = store.prefix.clone();
    loop {
        let mut client = store.client.clone();
        let options = WatchOptions::new().with_prefix();
        let started = tokio::select! {
            _ = stopped.changed() => return,
            r = tokio::time::timeout(Duration::from_secs(2), client.watch(&*prefix, Some(options))) => r,
        };
        match started {
            Ok(Ok(stream)) => {
                let (mut sender, mut responses) = stream.split();
                let mut pending: Vec<Beat> = Vec::new();
                loop {
                    tokio::select! {
                        _ = stopped.changed() => return,
                        request = requests.recv() => {
                            let Some(request) = request else { return };
                            if pending.len() < PENDING_HEARTBEATS {
                                pending.push(request);
                            }
                            if sender.request_progress().await.is_err() {
                                break;
                            }
                        }
                        response = responses.next() => {
                            let Some(Ok(response)) = response else { break };
                            let Some(shared) = shared.upgrade() else { return };
                            if response.canceled() {
                                tracing::warn!(reason = response.cancel_reason(), "session watch canceled");
                                break;
                            }
                            if response.created() {
                                let _ = shared.sender.send(BusEvent::Reset);
                                shared.connected.store(true, Ordering::SeqCst);
                                tracing::debug!("session watch established");
                            } else if response.events().is_empty() {
                                // A progress notification: every event up to
                                // now has been delivered.
                                for beat in pending.drain(..) {
                                    let _ = shared.sender.send(BusEvent::Heartbeat(beat));
                                }
                            } else {
                                for invalidation in invalidations(&prefix, &response) {
                                    let _ = shared.sender.send(BusEvent::Invalidate(invalidation));
                                }
                            }
                        }
                    }
                }
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                shared.connected.store(false, Ordering::SeqCst);
                let _ = shared.sender.send(BusEvent::Reset);
                tracing::warn!("session watch lost; reconnecting");
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "session watch cannot start"),
            Err(_) => tracing::debug!("session watch start timed out"),
        }
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

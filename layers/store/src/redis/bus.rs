//! `RedisBus`: invalidations over Redis pub/sub.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_redis::redis;
use futures_util::StreamExt;
use tokio::sync::{broadcast, watch};

use super::RedisStore;
use crate::cache::{Beat, BusEvent, Invalidation, InvalidationBus};
use crate::store::StoreFuture;

/// An [`InvalidationBus`] over Redis pub/sub: announcements are published
/// with the store's connection and received on a dedicated subscriber
/// connection, which fails over to the next node URL when its node goes
/// away. On a Redis Cluster a `PUBLISH` reaches the subscribers of every
/// node, so one subscription per instance suffices.
///
/// While the subscriber is disconnected, [`is_connected`](InvalidationBus::is_connected)
/// is false (caches are bypassed); each (re)connection sends
/// [`BusEvent::Reset`].
///
/// Made by [`RedisStore::invalidation_bus`]. Cloning shares the
/// subscription; it closes when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct RedisBus {
    store: RedisStore,
    channel: Arc<str>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    sender: broadcast::Sender<BusEvent>,
    connected: AtomicBool,
    _stop: watch::Sender<()>,
}

impl RedisStore {
    /// A bus on channel `<key prefix>invalidate`, for
    /// [`CachedStoreBuilder::with_bus`](crate::CachedStoreBuilder::with_bus). Spawns the
    /// subscriber task on the current tokio runtime.
    pub fn invalidation_bus(&self) -> RedisBus {
        let channel: Arc<str> = format!("{}invalidate", self.prefix).into();
        let (stop, stopped) = watch::channel(());
        let shared = Arc::new(Shared {
            sender: broadcast::channel(4096).0,
            connected: AtomicBool::new(false),
            _stop: stop,
        });
        tokio::spawn(subscribe_loop(
            self.urls.clone(),
            channel.clone(),
            Arc::downgrade(&shared),
            stopped,
        ));
        RedisBus {
            store: self.clone(),
            channel,
            shared,
        }
    }
}

impl RedisBus {
    /// Waits until the subscription is established, at most `timeout`.
    /// Returns whether it is.
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

impl RedisBus {
    async fn send(&self, payload: String) -> Result<(), crate::StoreError> {
        let channel = self.channel.clone();
        self.store
            .run(|mut conn| async move {
                redis::cmd("PUBLISH")
                    .arg(&*channel)
                    .arg(payload)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await?;
        Ok(())
    }
}

impl InvalidationBus for RedisBus {
    fn publish(&self, invalidation: Invalidation) -> StoreFuture<'_, ()> {
        Box::pin(self.send(invalidation.encode()))
    }

    fn heartbeat(&self, beat: Beat) -> StoreFuture<'_, ()> {
        Box::pin(self.send(BusEvent::encode_heartbeat(beat)))
    }

    fn orders_heartbeats(&self) -> bool {
        // One Redis server delivers messages in the order it ran their
        // PUBLISHes. A cluster forwards a PUBLISH to the other nodes over
        // its bus, and the messages of two nodes may arrive in either order.
        !self.store.is_cluster()
    }

    fn acknowledge(&self, to: u64, seq: u64, from: u64) -> StoreFuture<'_, ()> {
        Box::pin(self.send(BusEvent::encode_ack(to, seq, from)))
    }

    fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.shared.sender.subscribe()
    }

    fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }
}

async fn subscribe_loop(
    urls: Arc<[String]>,
    channel: Arc<str>,
    shared: std::sync::Weak<Shared>,
    mut stopped: watch::Receiver<()>,
) {
    let mut attempt = 0usize;
    loop {
        let url = &urls[attempt % urls.len()];
        attempt += 1;
        let connect = async {
            let client = redis::Client::open(url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&*channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let connected = tokio::select! {
            _ = stopped.changed() => return,
            r = tokio::time::timeout(Duration::from_secs(2), connect) => r,
        };
        match connected {
            Ok(Ok(pubsub)) => {
                {
                    let Some(shared) = shared.upgrade() else {
                        return;
                    };
                    let _ = shared.sender.send(BusEvent::Reset);
                    shared.connected.store(true, Ordering::SeqCst);
                    tracing::debug!(%url, "session invalidation subscriber connected");
                }
                let mut messages = pubsub.into_on_message();
                loop {
                    let message = tokio::select! {
                        _ = stopped.changed() => return,
                        m = messages.next() => m,
                    };
                    let Some(message) = message else { break };
                    let Some(shared) = shared.upgrade() else {
                        return;
                    };
                    let payload = String::from_utf8_lossy(message.get_payload_bytes());
                    match BusEvent::decode(&payload) {
                        Some(event) => {
                            let _ = shared.sender.send(event);
                        }
                        None => tracing::warn!("malformed session invalidation ignored"),
                    }
                }
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                shared.connected.store(false, Ordering::SeqCst);
                let _ = shared.sender.send(BusEvent::Reset);
                tracing::warn!(%url, "session invalidation subscriber disconnected");
            }
            Ok(Err(e)) => {
                tracing::debug!(%url, error = %e, "invalidation subscriber cannot connect")
            }
            Err(_) => tracing::debug!(%url, "invalidation subscriber connect timed out"),
        }
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

//! Announcements of session changes between instances.

use std::fmt;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::store::StoreFuture;
use crate::{SessionId, Version};

/// "Session `id` is now at `version`" (`None`: deleted), sent by the
/// instance `origin` after a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalidation {
    /// Random id of the sending [`CachedStore`](crate::CachedStore).
    pub origin: u64,
    /// The session.
    pub id: SessionId,
    /// Its new version, `None` when deleted.
    pub version: Option<Version>,
}

impl Invalidation {
    /// Wire form: `origin:id:version` in hexadecimal / decimal, version 0
    /// for a deletion.
    pub fn encode(&self) -> String {
        format!(
            "{:016x}:{}:{}",
            self.origin,
            self.id,
            self.version.map_or(0, Version::get)
        )
    }

    /// Parses the wire form.
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        let origin = u64::from_str_radix(parts.next()?, 16).ok()?;
        let id = parts.next()?.parse().ok()?;
        let version: u64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            origin,
            id,
            version: (version > 0).then_some(Version::new(version)),
        })
    }
}

/// What a subscriber of an [`InvalidationBus`] receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusEvent {
    /// A session changed.
    Invalidate(Invalidation),
    /// Announcements may have been missed (the subscription dropped and
    /// came back, or the subscriber lagged): forget everything cached.
    Reset,
    /// A cache's proof that the channel carries its messages; each cache
    /// listens for its own. Sent every heartbeat interval, and as the
    /// marker of a read barrier.
    Heartbeat {
        /// Random id of the sending [`CachedStore`](crate::CachedStore).
        origin: u64,
        /// The sender's count of heartbeats, so that it knows which one
        /// came back (0 from senders that do not count).
        seq: u64,
    },
}

/// Wire form of a heartbeat: this prefix, the origin in hexadecimal, then
/// `:` and the sequence number in decimal (absent means 0). No invalidation
/// starts with it (theirs start with a hexadecimal digit).
const HEARTBEAT_PREFIX: &str = "hb:";

impl BusEvent {
    /// Wire form of heartbeat `seq` from `origin`.
    pub fn encode_heartbeat(origin: u64, seq: u64) -> String {
        format!("{HEARTBEAT_PREFIX}{origin:016x}:{seq}")
    }

    /// Parses the wire form of an invalidation or a heartbeat.
    pub fn decode(text: &str) -> Option<Self> {
        match text.strip_prefix(HEARTBEAT_PREFIX) {
            Some(rest) => {
                let (origin, seq) = match rest.split_once(':') {
                    Some((origin, seq)) => (origin, seq.parse().ok()?),
                    None => (rest, 0),
                };
                Some(BusEvent::Heartbeat {
                    origin: u64::from_str_radix(origin, 16).ok()?,
                    seq,
                })
            }
            None => Invalidation::decode(text).map(BusEvent::Invalidate),
        }
    }
}

/// Transport of [`Invalidation`]s between the caches of several instances.
pub trait InvalidationBus: Send + Sync + fmt::Debug + 'static {
    /// Announces a change to every subscriber, this instance's included.
    fn publish(&self, invalidation: Invalidation) -> StoreFuture<'_, ()>;

    /// Sends [`BusEvent::Heartbeat`] `seq` from `origin` to every
    /// subscriber, over the same path as announcements, so that receiving
    /// it proves announcements arrive.
    fn heartbeat(&self, origin: u64, seq: u64) -> StoreFuture<'_, ()>;

    /// Whether a heartbeat is a *barrier*: when a subscriber receives one
    /// sent after a write's [`publish`](InvalidationBus::publish) returned,
    /// it has received that write's announcement before it. True of a bus
    /// that orders every message through one server (one Redis, one
    /// process); false (the default) where messages of different senders
    /// may overtake each other, as between the nodes of a Redis Cluster.
    /// [`CachedStoreBuilder::with_read_barrier`](crate::CachedStoreBuilder::with_read_barrier)
    /// relies on it.
    fn orders_heartbeats(&self) -> bool {
        false
    }

    /// A new subscription to every announcement.
    fn subscribe(&self) -> broadcast::Receiver<BusEvent>;

    /// Whether announcements are being received right now. A cache must not
    /// answer from memory while this is false, since it could miss that a
    /// session changed elsewhere.
    fn is_connected(&self) -> bool;
}

/// An in-process bus, for several caches in one process (tests, or
/// instances sharing a [`MemoryStore`](crate::MemoryStore)).
///
/// Cloning shares the bus.
#[derive(Clone, Debug)]
pub struct LocalBus {
    sender: Arc<broadcast::Sender<BusEvent>>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBus {
    /// A bus with room for 4096 pending announcements per subscriber.
    pub fn new() -> Self {
        Self {
            sender: Arc::new(broadcast::channel(4096).0),
        }
    }
}

impl InvalidationBus for LocalBus {
    fn publish(&self, invalidation: Invalidation) -> StoreFuture<'_, ()> {
        // No subscriber is not an error.
        let _ = self.sender.send(BusEvent::Invalidate(invalidation));
        Box::pin(async { Ok(()) })
    }

    fn heartbeat(&self, origin: u64, seq: u64) -> StoreFuture<'_, ()> {
        let _ = self.sender.send(BusEvent::Heartbeat { origin, seq });
        Box::pin(async { Ok(()) })
    }

    fn orders_heartbeats(&self) -> bool {
        // One broadcast channel carries everything in send order.
        true
    }

    fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.sender.subscribe()
    }

    fn is_connected(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_round_trips() {
        for version in [None, Some(Version::new(42))] {
            let inv = Invalidation {
                origin: 7,
                id: SessionId::random(),
                version,
            };
            assert_eq!(Invalidation::decode(&inv.encode()), Some(inv));
        }
        assert_eq!(Invalidation::decode("zz:1:2"), None);
        let beat = BusEvent::Heartbeat {
            origin: 0xfeed,
            seq: 42,
        };
        assert_eq!(
            BusEvent::decode(&BusEvent::encode_heartbeat(0xfeed, 42)),
            Some(beat)
        );
        assert_eq!(
            BusEvent::decode("hb:000000000000feed"),
            Some(BusEvent::Heartbeat {
                origin: 0xfeed,
                seq: 0
            })
        );
        assert_eq!(BusEvent::decode("hb:zz"), None);
        assert_eq!(BusEvent::decode("hb:feed:x"), None);
        assert_eq!(Invalidation::decode("1:2"), None);
    }
}

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
    /// marker of a barrier.
    Heartbeat(Beat),
    /// Cache `from` has applied every message that came before heartbeat
    /// `seq` of cache `to`: its announcements included.
    Ack {
        /// The cache whose heartbeat is acknowledged.
        to: u64,
        /// That heartbeat's number.
        seq: u64,
        /// The acknowledging cache.
        from: u64,
    },
}

/// One heartbeat of a cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Beat {
    /// Random id of the sending [`CachedStore`](crate::CachedStore).
    pub origin: u64,
    /// The sender's count of heartbeats, so that it knows which one came
    /// back (0 from senders that do not count).
    pub seq: u64,
    /// Whether the sender acknowledges other caches' heartbeats
    /// ([`BusEvent::Ack`]): writers with acknowledged writes wait for it.
    pub acknowledges: bool,
}

/// Wire form of a heartbeat: this prefix, the origin in hexadecimal, then
/// `:` and the sequence number in decimal (absent means 0), then `:a` if
/// the sender acknowledges. No invalidation starts with it (theirs start
/// with a hexadecimal digit).
const HEARTBEAT_PREFIX: &str = "hb:";

/// Wire form of an acknowledgement: this prefix, then `to:seq:from`
/// (origins in hexadecimal, the number in decimal).
const ACK_PREFIX: &str = "ack:";

impl BusEvent {
    /// Wire form of a heartbeat.
    pub fn encode_heartbeat(beat: Beat) -> String {
        let Beat {
            origin,
            seq,
            acknowledges,
        } = beat;
        let flag = if acknowledges { ":a" } else { "" };
        format!("{HEARTBEAT_PREFIX}{origin:016x}:{seq}{flag}")
    }

    /// Wire form of [`BusEvent::Ack`].
    pub fn encode_ack(to: u64, seq: u64, from: u64) -> String {
        format!("{ACK_PREFIX}{to:016x}:{seq}:{from:016x}")
    }

    /// Parses the wire form of an invalidation, a heartbeat or an
    /// acknowledgement.
    pub fn decode(text: &str) -> Option<Self> {
        if let Some(rest) = text.strip_prefix(ACK_PREFIX) {
            let mut parts = rest.split(':');
            let to = u64::from_str_radix(parts.next()?, 16).ok()?;
            let seq = parts.next()?.parse().ok()?;
            let from = u64::from_str_radix(parts.next()?, 16).ok()?;
            return parts
                .next()
                .is_none()
                .then_some(BusEvent::Ack { to, seq, from });
        }
        match text.strip_prefix(HEARTBEAT_PREFIX) {
            Some(rest) => {
                let mut parts = rest.split(':');
                let origin = u64::from_str_radix(parts.next()?, 16).ok()?;
                let seq = parts.next().map_or(Some(0), |s| s.parse().ok())?;
                let acknowledges = match parts.next() {
                    None => false,
                    Some("a") => true,
                    Some(_) => return None,
                };
                parts.next().is_none().then_some(BusEvent::Heartbeat(Beat {
                    origin,
                    seq,
                    acknowledges,
                }))
            }
            None => Invalidation::decode(text).map(BusEvent::Invalidate),
        }
    }
}

/// Transport of [`Invalidation`]s between the caches of several instances.
pub trait InvalidationBus: Send + Sync + fmt::Debug + 'static {
    /// Announces a change to every subscriber, this instance's included.
    fn publish(&self, invalidation: Invalidation) -> StoreFuture<'_, ()>;

    /// Sends [`BusEvent::Heartbeat`] to every subscriber, over the same
    /// path as announcements, so that receiving it proves announcements
    /// arrive.
    fn heartbeat(&self, beat: Beat) -> StoreFuture<'_, ()>;

    /// Whether a heartbeat is a *barrier*: when a subscriber receives one
    /// sent after a write's [`publish`](InvalidationBus::publish) returned,
    /// it has received that write's announcement before it. True of a bus
    /// that orders every message through one server (one Redis, one
    /// process); false (the default) where messages of different senders
    /// may overtake each other, as between the nodes of a Redis Cluster.
    /// [`CachedStoreBuilder::with_acknowledged_writes`](crate::CachedStoreBuilder::with_acknowledged_writes)
    /// relies on it.
    fn orders_heartbeats(&self) -> bool {
        false
    }

    /// Sends [`BusEvent::Ack`] to every subscriber. Needed by
    /// [`CachedStoreBuilder::with_acknowledged_writes`](crate::CachedStoreBuilder::with_acknowledged_writes);
    /// the default refuses.
    fn acknowledge(&self, to: u64, seq: u64, from: u64) -> StoreFuture<'_, ()> {
        let _ = (to, seq, from);
        Box::pin(async {
            Err(crate::StoreError::unavailable(
                "this bus carries no acknowledgements",
            ))
        })
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

    fn heartbeat(&self, beat: Beat) -> StoreFuture<'_, ()> {
        let _ = self.sender.send(BusEvent::Heartbeat(beat));
        Box::pin(async { Ok(()) })
    }

    fn orders_heartbeats(&self) -> bool {
        // One broadcast channel carries everything in send order.
        true
    }

    fn acknowledge(&self, to: u64, seq: u64, from: u64) -> StoreFuture<'_, ()> {
        let _ = self.sender.send(BusEvent::Ack { to, seq, from });
        Box::pin(async { Ok(()) })
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
        for acknowledges in [false, true] {
            let beat = Beat {
                origin: 0xfeed,
                seq: 42,
                acknowledges,
            };
            assert_eq!(
                BusEvent::decode(&BusEvent::encode_heartbeat(beat)),
                Some(BusEvent::Heartbeat(beat))
            );
        }
        assert_eq!(
            BusEvent::decode("hb:000000000000feed"),
            Some(BusEvent::Heartbeat(Beat {
                origin: 0xfeed,
                seq: 0,
                acknowledges: false,
            }))
        );
        assert_eq!(BusEvent::decode("hb:zz"), None);
        assert_eq!(BusEvent::decode("hb:feed:1:b"), None);
        assert_eq!(BusEvent::decode("hb:feed:1:a:"), None);
        assert_eq!(BusEvent::decode("hb:feed:x"), None);
        assert_eq!(Invalidation::decode("1:2"), None);
    }
}

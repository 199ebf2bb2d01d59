//! Revocations shared through a [`SessionStore`](foresight_store::SessionStore)
//! (feature `store`), so that every instance sees them.
//!
//! The list is one record of the store (its id is created once with
//! [`StoreRevocations::create`] and given to every instance with
//! [`StoreRevocations::open`]), keyed `t:<jti>` and `s:<sid>`, each with the
//! Unix second until which it holds. Every write is a compare-and-set on the
//! record's version, retried on conflict, and purges expired entries; the
//! record's size limit bounds the list. Checks are answered from a local
//! snapshot, refreshed by [`sync`](StoreRevocations::sync) (or
//! [`spawn_sync`](StoreRevocations::spawn_sync)) and by every local write: a
//! revocation made on another instance is seen within one sync period.
//!
//! ```
//! use std::sync::Arc;
//! use foresight_store::{MemoryStore, SharedStore};
//! use foresight_token::store::StoreRevocations;
//! use foresight_token::{Revocation, Revocations, TokioClock};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store: SharedStore = Arc::new(MemoryStore::new());
//! let a = StoreRevocations::create(store.clone(), TokioClock::shared()).await.unwrap();
//! let b = StoreRevocations::open(store, a.id(), TokioClock::shared());
//! a.revoke(Revocation::Session("s1".into()), u64::MAX / 2).await.unwrap();
//! b.sync().await.unwrap();
//! assert!(b.is_session_revoked("s1"));
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use foresight_store::{Expiry, SessionData, SessionId, SharedStore, StoreError};

use crate::clock::SharedClock;
use crate::error::RevocationError;
use crate::revoke::{MemoryRevocations, Revocation, RevocationFuture, Revocations};

/// Compare-and-set attempts per revocation before giving up.
const MAX_ATTEMPTS: usize = 16;
/// Capacity of the local snapshot.
const LOCAL_CAPACITY: usize = 1_000_000;

fn store_error(e: impl std::error::Error + Send + Sync + 'static) -> RevocationError {
    RevocationError::Store {
        source: Box::new(e),
    }
}

/// A revocation list kept in a session store; see the [module docs](self).
/// Clones share the local snapshot.
#[derive(Clone)]
pub struct StoreRevocations {
    store: SharedStore,
    id: SessionId,
    local: Arc<arc_swap::ArcSwap<MemoryRevocations>>,
    clock: SharedClock,
}

impl fmt::Debug for StoreRevocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreRevocations")
            .field("id", &self.id)
            .field("local", &self.local.load())
            .finish_non_exhaustive()
    }
}

/// The record lives as long as tokens can: it is touched on every sync.
fn expiry() -> Expiry {
    Expiry::new(
        Duration::from_secs(30 * 24 * 3600),
        Duration::from_secs(10 * 365 * 24 * 3600),
    )
}

fn key(what: &Revocation) -> String {
    match what {
        Revocation::Token(jti) => format!("t:{jti}"),
        Revocation::Session(sid) => format!("s:{sid}"),
    }
}

impl StoreRevocations {
    /// Creates an empty list in `store`; give [`id`](Self::id) to the other
    /// instances.
    pub async fn create(store: SharedStore, clock: SharedClock) -> Result<Self, RevocationError> {
        let id = store
            .create(&SessionData::new(), expiry())
            .await
            .map_err(store_error)?;
        Ok(Self::open(store, id, clock))
    }

    /// Opens the list with record `id`; call [`sync`](Self::sync) before
    /// relying on it.
    pub fn open(store: SharedStore, id: SessionId, clock: SharedClock) -> Self {
        Self {
            local: Arc::new(arc_swap::ArcSwap::from_pointee(MemoryRevocations::new(
                LOCAL_CAPACITY,
                clock.clone(),
            ))),
            store,
            id,
            clock,
        }
    }

    /// The record id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    fn snapshot(&self, data: &SessionData) {
        let now = self.clock.unix_secs();
        let local = MemoryRevocations::new(LOCAL_CAPACITY, self.clock.clone());
        for (key, value) in data.iter() {
            let Some(until) = value.as_u64().filter(|u| *u > now) else {
                continue;
            };
            let what = match key.split_once(':') {
                Some(("t", jti)) => Revocation::Token(jti.to_owned()),
                Some(("s", sid)) => Revocation::Session(sid.to_owned()),
                _ => continue,
            };
            let _ = local.insert(what, until);
        }
        self.local.store(Arc::new(local));
    }

    /// Reloads the local snapshot from the store.
    pub async fn sync(&self) -> Result<(), RevocationError> {
        let record = self.store.load(self.id).await.map_err(store_error)?;
        let Some(record) = record else {
            return Err(store_error(StoreError::Corrupt(
                "the revocation record is missing".into(),
            )));
        };
        self.snapshot(&record.value);
        let _ = self.store.touch(self.id, expiry().idle).await;
        Ok(())
    }

    /// Syncs every `period` until every clone is dropped.
    pub fn spawn_sync(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.local);
        let (store, id, clock) = (self.store.clone(), self.id, self.clock.clone());
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(local) = weak.upgrade() else { break };
                let this = StoreRevocations {
                    store: store.clone(),
                    id,
                    local,
                    clock: clock.clone(),
                };
                if let Err(error) = this.sync().await {
                    tracing::warn!(%error, "revocation sync failed");
                }
            }
        })
    }

    async fn write(&self, what: Revocation, until: u64) -> Result<(), RevocationError> {
        let key = key(&what);
        for _ in 0..MAX_ATTEMPTS {
            let record = self.store.load(self.id).await.map_err(store_error)?;
            let Some(record) = record else {
                return Err(store_error(StoreError::Corrupt(
                    "the revocation record is missing".into(),
                )));
            };
            let now = self.clock.unix_secs();
            let mut data = record.value.clone();
            let expired: Vec<String> = data
                .iter()
                .filter(|(_, v)| v.as_u64().is_none_or(|u| u <= now))
                .map(|(k, _)| k.clone())
                .collect();
            for k in &expired {
                data.remove(k);
            }
            let until = data
                .get::<u64>(&key)
                .ok()
                .flatten()
                .map_or(until, |u| u.max(until));
            if data.insert(key.clone(), &until).is_err() {
                return Err(RevocationError::Full);
            }
            match self.store.save(self.id, &data, record.version).await {
                Ok(_) => {
                    self.snapshot(&data);
                    return Ok(());
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(store_error(StoreError::unavailable(
            "too many concurrent revocations",
        )))
    }
}

impl Revocations for StoreRevocations {
    fn is_token_revoked(&self, jti: &str) -> bool {
        self.local.load().is_token_revoked(jti)
    }

    fn is_session_revoked(&self, sid: &str) -> bool {
        self.local.load().is_session_revoked(sid)
    }

    fn is_revoked(&self, jti: &str, sid: &str) -> bool {
        self.local.load().is_revoked(jti, sid)
    }

    fn revoke(&self, what: Revocation, until: u64) -> RevocationFuture<'_> {
        Box::pin(self.write(what, until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use foresight_store::MemoryStore;

    #[tokio::test]
    async fn instances_see_each_others_revocations_and_conflicts_retry() {
        let clock: SharedClock = Arc::new(ManualClock::new(Duration::from_secs(1_000)));
        let store: SharedStore = Arc::new(MemoryStore::new());
        let a = StoreRevocations::create(store.clone(), clock.clone())
            .await
            .unwrap();
        let b = StoreRevocations::open(store.clone(), a.id(), clock.clone());
        let (ra, rb) = tokio::join!(
            a.revoke(Revocation::Token("j1".into()), 2_000),
            b.revoke(Revocation::Session("s1".into()), 2_000),
        );
        ra.unwrap();
        rb.unwrap();
        a.sync().await.unwrap();
        b.sync().await.unwrap();
        for list in [&a, &b] {
            assert!(list.is_token_revoked("j1"));
            assert!(list.is_session_revoked("s1"));
            assert!(!list.is_revoked("j2", "s2"));
        }
        // Expired entries are purged by the next write.
        a.revoke(Revocation::Token("j3".into()), 900).await.unwrap();
        assert!(!a.is_token_revoked("j3"));
    }
}

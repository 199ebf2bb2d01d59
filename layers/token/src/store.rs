//! Revocations shared through a [`SessionStore`](foresight_store::SessionStore)
//! (feature `store`), so that every instance sees them.
//!
//! Each revocation is a record of its own, with its own time to live, so
//! the list has no size ceiling: a record holds one `jti` or session, the
//! Unix second until which it holds, its reason and the id of the record
//! written before it. One more record, the root (its id is created once
//! with [`StoreRevocations::create`] and given to every instance with
//! [`StoreRevocations::open`]), holds only the id of the newest record: a
//! write creates its record pointing at the current newest, then moves the
//! root to it with a compare-and-set on the root's version, retried on
//! conflict (with a fresh record). So the records form one chain, newest
//! first.
//!
//! A record lives in the store until the later of its own end and the
//! ends of the records before it (with ends of now plus one verifier
//! `max_lifetime`, as [`TokenHandle`](crate::TokenHandle) writes them, that
//! is its own end): records expire oldest first and the chain is never cut
//! while an older revocation still holds. The store removes them; no write
//! purges anything.
//!
//! Checks are answered from a local copy, updated at once by every local
//! revocation and by [`sync`](StoreRevocations::sync) (or
//! [`spawn_sync`](StoreRevocations::spawn_sync)), which walks the chain
//! from the newest record down to the newest one it had already read: one
//! load per revocation made elsewhere since the last sync (all of them on
//! the first). A revocation made on another instance is seen within one
//! sync period. The local copy holds at most one million unexpired
//! revocations; beyond that a revocation fails with
//! [`RevocationError::Full`].
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
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use foresight_store::{Expiry, SessionData, SessionId, SharedStore, StoreError};

use crate::clock::SharedClock;
use crate::error::RevocationError;
use crate::revoke::{
    MemoryRevocations, Revocation, RevocationFuture, RevocationReason, Revocations,
};

/// Compare-and-set attempts per revocation before giving up.
const MAX_ATTEMPTS: usize = 16;
/// Capacity of the local copy.
const LOCAL_CAPACITY: usize = 1_000_000;
/// Longest a stored record lives (the store's `Duration`s stay sane
/// whatever `until` a caller gives).
const MAX_RECORD_TTL: u64 = 10 * 365 * 24 * 3600;

fn store_error(e: impl std::error::Error + Send + Sync + 'static) -> RevocationError {
    RevocationError::Store {
        source: Box::new(e),
    }
}

fn corrupt(what: &str) -> RevocationError {
    store_error(StoreError::Corrupt(what.into()))
}

struct Inner {
    store: SharedStore,
    id: SessionId,
    local: MemoryRevocations,
    /// The newest record the last sync read down from.
    cursor: Mutex<Option<SessionId>>,
    clock: SharedClock,
}

/// A revocation list kept in a session store; see the [module docs](self).
/// Clones share the local copy.
#[derive(Clone)]
pub struct StoreRevocations {
    inner: Arc<Inner>,
}

impl fmt::Debug for StoreRevocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreRevocations")
            .field("id", &self.inner.id)
            .field("local", &self.inner.local)
            .finish_non_exhaustive()
    }
}

/// The root lives as long as tokens can: it is touched on every sync.
fn root_expiry() -> Expiry {
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

fn parse_key(key: &str) -> Option<Revocation> {
    match key.split_once(':') {
        Some(("t", jti)) => Some(Revocation::Token(jti.to_owned())),
        Some(("s", sid)) => Some(Revocation::Session(sid.to_owned())),
        _ => None,
    }
}

/// The root's fields: the newest record and the latest end of any record.
fn read_root(data: &SessionData) -> Result<(Option<SessionId>, u64), RevocationError> {
    let head = match data.get::<String>("head") {
        Ok(Some(head)) => Some(
            head.parse::<SessionId>()
                .map_err(|_| corrupt("the revocation root names no record"))?,
        ),
        Ok(None) => None,
        Err(_) => return Err(corrupt("the revocation root is not readable")),
    };
    let until = data.get::<u64>("until").ok().flatten().unwrap_or(0);
    Ok((head, until))
}

/// One stored revocation.
struct Record {
    what: Revocation,
    until: u64,
    reason: RevocationReason,
    prev: Option<SessionId>,
}

impl Record {
    fn encode(&self) -> Result<SessionData, RevocationError> {
        let mut data = SessionData::new();
        // One key, one number and two short strings: only a key too long
        // for a record fails here.
        data.insert("k", &key(&self.what)).map_err(store_error)?;
        data.insert("until", &self.until).map_err(store_error)?;
        data.insert("why", self.reason.as_str())
            .map_err(store_error)?;
        if let Some(prev) = self.prev {
            data.insert("prev", &prev.to_string())
                .map_err(store_error)?;
        }
        Ok(data)
    }

    fn decode(data: &SessionData) -> Option<Self> {
        let what = parse_key(&data.get::<String>("k").ok()??)?;
        let until = data.get::<u64>("until").ok()??;
        let reason = data
            .get::<String>("why")
            .ok()
            .flatten()
            .map_or(RevocationReason::Revoked, |r| {
                RevocationReason::from_name(&r)
            });
        let prev = match data.get::<String>("prev").ok().flatten() {
            Some(prev) => Some(prev.parse().ok()?),
            None => None,
        };
        Some(Self {
            what,
            until,
            reason,
            prev,
        })
    }
}

impl StoreRevocations {
    /// Creates an empty list in `store`; give [`id`](Self::id) to the other
    /// instances.
    pub async fn create(store: SharedStore, clock: SharedClock) -> Result<Self, RevocationError> {
        let id = store
            .create(&SessionData::new(), root_expiry())
            .await
            .map_err(store_error)?;
        Ok(Self::open(store, id, clock))
    }

    /// Opens the list with root `id`; call [`sync`](Self::sync) before
    /// relying on it.
    pub fn open(store: SharedStore, id: SessionId, clock: SharedClock) -> Self {
        Self {
            inner: Arc::new(Inner {
                local: MemoryRevocations::new(LOCAL_CAPACITY, clock.clone()),
                store,
                id,
                cursor: Mutex::new(None),
                clock,
            }),
        }
    }

    /// The root record's id.
    pub fn id(&self) -> SessionId {
        self.inner.id
    }

    /// Reads the revocations written since the last sync (all of them the
    /// first time) into the local copy.
    pub async fn sync(&self) -> Result<(), RevocationError> {
        self.inner.sync().await
    }

    /// Syncs every `period` until every clone is dropped.
    pub fn spawn_sync(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                if let Err(error) = inner.sync().await {
                    tracing::warn!(%error, "revocation sync failed");
                }
            }
        })
    }
}

impl Inner {
    async fn sync(&self) -> Result<(), RevocationError> {
        let root = self.store.load(self.id).await.map_err(store_error)?;
        let Some(root) = root else {
            return Err(corrupt("the revocation root is missing"));
        };
        let (head, _) = read_root(&root.value)?;
        let seen = *self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.unix_secs();
        let mut next = head;
        // Each record is read once per sync; the chain has no cycle, the
        // bound only guards against a corrupt store.
        for _ in 0..=LOCAL_CAPACITY {
            let Some(id) = next.filter(|id| Some(*id) != seen) else {
                break;
            };
            // A missing record has expired, and so have all before it.
            let Some(stored) = self.store.load(id).await.map_err(store_error)? else {
                break;
            };
            let record = Record::decode(&stored.value)
                .ok_or_else(|| corrupt("a revocation record is not readable"))?;
            if record.until > now {
                self.local
                    .insert_because(record.what, record.until, record.reason)?;
            }
            next = record.prev;
        }
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = head;
        let _ = self.store.touch(self.id, root_expiry().idle).await;
        Ok(())
    }

    async fn write(
        &self,
        what: Revocation,
        until: u64,
        reason: RevocationReason,
    ) -> Result<(), RevocationError> {
        for _ in 0..MAX_ATTEMPTS {
            let root = self.store.load(self.id).await.map_err(store_error)?;
            let Some(root) = root else {
                return Err(corrupt("the revocation root is missing"));
            };
            let (head, chain_until) = read_root(&root.value)?;
            let record = Record {
                what: what.clone(),
                until,
                reason,
                prev: head,
            };
            // Alive as long as every record before it, so that the chain
            // reaches them all.
            let end = until.max(chain_until);
            let ttl = end
                .saturating_sub(self.clock.unix_secs())
                .clamp(1, MAX_RECORD_TTL);
            let ttl = Duration::from_secs(ttl);
            let id = self
                .store
                .create(&record.encode()?, Expiry::new(ttl, ttl))
                .await
                .map_err(store_error)?;
            let mut data = root.value.clone();
            data.insert("head", &id.to_string()).map_err(store_error)?;
            data.insert("until", &end).map_err(store_error)?;
            match self.store.save(self.id, &data, root.version).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => {
                    // Another write moved the root: this record points at
                    // a stale head. Drop it and start again.
                    let _ = self.store.delete(id, None).await;
                }
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
        self.inner.local.is_token_revoked(jti)
    }

    fn is_session_revoked(&self, sid: &str) -> bool {
        self.inner.local.is_session_revoked(sid)
    }

    fn session_revocation(&self, sid: &str) -> Option<RevocationReason> {
        self.inner.local.session_revocation(sid)
    }

    fn is_revoked(&self, jti: &str, sid: &str) -> bool {
        self.inner.local.is_revoked(jti, sid)
    }

    fn revoke_because(
        &self,
        what: Revocation,
        until: u64,
        reason: RevocationReason,
    ) -> RevocationFuture<'static> {
        // Local checks see it at once; the store write follows.
        if let Err(error) = self.inner.local.insert_because(what.clone(), until, reason) {
            return Box::pin(async move { Err(error) });
        }
        if until <= self.inner.clock.unix_secs() {
            return Box::pin(async { Ok(()) });
        }
        let inner = self.inner.clone();
        Box::pin(async move { inner.write(what, until, reason).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::revoke::RevocationReason;
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
        // A revocation that has already ended is not kept.
        a.revoke(Revocation::Token("j3".into()), 900).await.unwrap();
        assert!(!a.is_token_revoked("j3"));
    }

    #[tokio::test]
    async fn thousands_of_revocations_have_no_ceiling() {
        let clock: SharedClock = Arc::new(ManualClock::new(Duration::from_secs(1_000)));
        let store: SharedStore = Arc::new(MemoryStore::new());
        let a = StoreRevocations::create(store.clone(), clock.clone())
            .await
            .unwrap();
        let b = StoreRevocations::open(store.clone(), a.id(), clock.clone());
        for i in 0..5_000 {
            let revoked = a
                .revoke(Revocation::Token(format!("jti-{i:05}")), 1_000 + 43_230)
                .await;
            assert!(revoked.is_ok(), "revocation {i}: {revoked:?}");
        }
        a.revoke_because(
            Revocation::Session("s1".into()),
            1_000 + 43_230,
            RevocationReason::TokenReuse,
        )
        .await
        .unwrap();
        b.sync().await.unwrap();
        for i in 0..5_000 {
            let jti = format!("jti-{i:05}");
            assert!(
                a.is_token_revoked(&jti) && b.is_token_revoked(&jti),
                "{jti}"
            );
        }
        assert_eq!(
            b.session_revocation("s1"),
            Some(RevocationReason::TokenReuse)
        );
        assert!(!b.is_revoked("jti-other", "s2"));
        // A later sync reads only what is new.
        a.revoke(Revocation::Token("late".into()), 50_000)
            .await
            .unwrap();
        b.sync().await.unwrap();
        assert!(b.is_token_revoked("late"));
    }

    #[tokio::test(start_paused = true)]
    async fn records_expire_oldest_first_and_the_chain_stays_whole() {
        let clock: SharedClock = crate::clock::TokioClock::shared();
        let store: SharedStore = Arc::new(MemoryStore::new());
        let a = StoreRevocations::create(store.clone(), clock.clone())
            .await
            .unwrap();
        let now = clock.unix_secs();
        // A long one, then a short one: the short record lives as long as
        // the long one so that a reader still reaches it.
        a.revoke(Revocation::Session("long".into()), now + 1_000)
            .await
            .unwrap();
        a.revoke(Revocation::Token("short".into()), now + 10)
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(500)).await;
        let b = StoreRevocations::open(store.clone(), a.id(), clock.clone());
        b.sync().await.unwrap();
        assert!(b.is_session_revoked("long"));
        assert!(!b.is_token_revoked("short"), "ended: not copied");
        tokio::time::advance(Duration::from_secs(600)).await;
        let c = StoreRevocations::open(store, a.id(), clock);
        c.sync().await.unwrap();
        assert!(!c.is_session_revoked("long"));
    }
}

//! Revocation by `jti` and by session.
//!
//! Checks run on every request, so [`Revocations::is_revoked`] answers
//! synchronously from memory; [`Revocations::revoke`] is asynchronous so that
//! an implementation can write through to a shared store that every instance
//! reads. An entry is kept until the latest time a token it covers can still
//! be valid, then forgotten, which bounds the list.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::clock::SharedClock;
use crate::error::RevocationError;

/// Boxed future of [`Revocations::revoke`].
pub type RevocationFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), RevocationError>> + Send + 'a>>;

/// What to revoke.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Revocation {
    /// One token, by `jti`.
    Token(String),
    /// Every token of a session, by `sid`.
    Session(String),
}

/// A revocation list.
pub trait Revocations: Send + Sync + fmt::Debug + 'static {
    /// Whether the token `jti` is revoked. Must not block: answered from
    /// memory.
    fn is_token_revoked(&self, jti: &str) -> bool;

    /// Whether the session `sid` is revoked. Must not block.
    fn is_session_revoked(&self, sid: &str) -> bool;

    /// Whether the token `jti` or the session `sid` is revoked.
    fn is_revoked(&self, jti: &str, sid: &str) -> bool {
        self.is_token_revoked(jti) || self.is_session_revoked(sid)
    }

    /// Records a revocation, kept until Unix second `until` (the latest
    /// expiry of a token it covers).
    fn revoke(&self, what: Revocation, until: u64) -> RevocationFuture<'_>;
}

impl<T: Revocations + ?Sized> Revocations for Arc<T> {
    fn is_token_revoked(&self, jti: &str) -> bool {
        (**self).is_token_revoked(jti)
    }

    fn is_session_revoked(&self, sid: &str) -> bool {
        (**self).is_session_revoked(sid)
    }

    fn revoke(&self, what: Revocation, until: u64) -> RevocationFuture<'_> {
        (**self).revoke(what, until)
    }
}

#[derive(Default)]
struct Lists {
    tokens: HashMap<String, u64>,
    sessions: HashMap<String, u64>,
}

/// An in-process revocation list with a fixed capacity.
///
/// A revocation is never dropped to make room: when the list is full of
/// unexpired entries, [`revoke`](Revocations::revoke) fails with
/// [`RevocationError::Full`]. Clones share the list.
#[derive(Clone)]
pub struct MemoryRevocations {
    lists: Arc<RwLock<Lists>>,
    len: Arc<AtomicUsize>,
    capacity: usize,
    clock: SharedClock,
}

impl fmt::Debug for MemoryRevocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRevocations")
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl MemoryRevocations {
    /// A list holding at most `capacity` unexpired revocations.
    pub fn new(capacity: usize, clock: SharedClock) -> Self {
        Self {
            lists: Arc::default(),
            len: Arc::default(),
            capacity,
            clock,
        }
    }

    /// Records a revocation now.
    pub fn insert(&self, what: Revocation, until: u64) -> Result<(), RevocationError> {
        let now = self.clock.unix_secs();
        let mut lists = self.lists.write().unwrap_or_else(|e| e.into_inner());
        let len = lists.tokens.len() + lists.sessions.len();
        if len >= self.capacity {
            lists.tokens.retain(|_, end| *end > now);
            lists.sessions.retain(|_, end| *end > now);
            if lists.tokens.len() + lists.sessions.len() >= self.capacity {
                return Err(RevocationError::Full);
            }
        }
        let (map, key) = match what {
            Revocation::Token(jti) => (&mut lists.tokens, jti),
            Revocation::Session(sid) => (&mut lists.sessions, sid),
        };
        let end = map.entry(key).or_insert(until);
        *end = (*end).max(until);
        self.len
            .store(lists.tokens.len() + lists.sessions.len(), Ordering::Relaxed);
        Ok(())
    }
}

impl Revocations for MemoryRevocations {
    fn is_token_revoked(&self, jti: &str) -> bool {
        self.len.load(Ordering::Relaxed) != 0
            && self
                .lists
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .tokens
                .contains_key(jti)
    }

    fn is_session_revoked(&self, sid: &str) -> bool {
        self.len.load(Ordering::Relaxed) != 0
            && self
                .lists
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .sessions
                .contains_key(sid)
    }

    fn is_revoked(&self, jti: &str, sid: &str) -> bool {
        if self.len.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let lists = self.lists.read().unwrap_or_else(|e| e.into_inner());
        lists.tokens.contains_key(jti) || lists.sessions.contains_key(sid)
    }

    fn revoke(&self, what: Revocation, until: u64) -> RevocationFuture<'_> {
        let result = self.insert(what, until);
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn bounded_and_expiring() {
        let clock = ManualClock::new(Duration::from_secs(100));
        let list = MemoryRevocations::new(2, Arc::new(clock.clone()));
        list.insert(Revocation::Token("a".into()), 150).unwrap();
        list.insert(Revocation::Session("s".into()), 200).unwrap();
        assert!(list.is_revoked("a", "x"));
        assert!(list.is_revoked("b", "s"));
        assert!(matches!(
            list.insert(Revocation::Token("c".into()), 300),
            Err(RevocationError::Full)
        ));
        clock.advance(Duration::from_secs(60));
        list.insert(Revocation::Token("c".into()), 300).unwrap();
        assert!(!list.is_revoked("a", "x"));
        assert!(list.is_revoked("c", "x"));
    }
}

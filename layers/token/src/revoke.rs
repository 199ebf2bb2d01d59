//! Revocation by `jti` and by session.
//!
//! Checks run on every request, so [`Revocations::is_revoked`] answers
//! synchronously from memory; [`Revocations::revoke`] is asynchronous so that
//! an implementation can write through to a shared store that every instance
//! reads. An entry is kept until the latest time a token it covers can still
//! be valid, then forgotten, which bounds the list.
//!
//! A session revocation carries its [`RevocationReason`]: revoked on
//! purpose, or because a superseded token came back after its successor was
//! used (token reuse, RFC 9700 §4.14.2). Requests of a revoked session get a
//! `401` whose `error_description` names the reason.

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

/// Why a session was revoked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevocationReason {
    /// Revoked on purpose (logout, an administrator, the authentication
    /// server).
    #[default]
    Revoked,
    /// A superseded token was presented after its successor had been
    /// delivered and used: the token was stolen, or the client is broken.
    /// Every token of the session is refused.
    TokenReuse,
}

impl RevocationReason {
    /// The short name stored with the revocation.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::TokenReuse => "reuse",
        }
    }

    /// The reason of a stored name; unknown names are [`Self::Revoked`].
    pub fn from_name(name: &str) -> Self {
        match name {
            "reuse" => Self::TokenReuse,
            _ => Self::Revoked,
        }
    }
}

/// A revocation list.
pub trait Revocations: Send + Sync + fmt::Debug + 'static {
    /// Whether the token `jti` is revoked. Must not block: answered from
    /// memory.
    fn is_token_revoked(&self, jti: &str) -> bool;

    /// Whether the session `sid` is revoked. Must not block.
    fn is_session_revoked(&self, sid: &str) -> bool {
        self.session_revocation(sid).is_some()
    }

    /// Why the session `sid` is revoked, if it is. Must not block.
    fn session_revocation(&self, sid: &str) -> Option<RevocationReason>;

    /// Whether the token `jti` or the session `sid` is revoked.
    fn is_revoked(&self, jti: &str, sid: &str) -> bool {
        self.is_token_revoked(jti) || self.is_session_revoked(sid)
    }

    /// Records a revocation, kept until Unix second `until` (the latest
    /// expiry of a token it covers).
    fn revoke(&self, what: Revocation, until: u64) -> RevocationFuture<'_> {
        self.revoke_because(what, until, RevocationReason::Revoked)
    }

    /// Records a revocation with its reason. It takes effect for the checks
    /// of this instance when the call returns, before the future is polled
    /// (the future, which owns what it needs, writes it through to shared
    /// storage, if any).
    fn revoke_because(
        &self,
        what: Revocation,
        until: u64,
        reason: RevocationReason,
    ) -> RevocationFuture<'static>;
}

impl<T: Revocations + ?Sized> Revocations for Arc<T> {
    fn is_token_revoked(&self, jti: &str) -> bool {
        (**self).is_token_revoked(jti)
    }

    fn is_session_revoked(&self, sid: &str) -> bool {
        (**self).is_session_revoked(sid)
    }

    fn session_revocation(&self, sid: &str) -> Option<RevocationReason> {
        (**self).session_revocation(sid)
    }

    fn is_revoked(&self, jti: &str, sid: &str) -> bool {
        (**self).is_revoked(jti, sid)
    }

    fn revoke(&self, what: Revocation, until: u64) -> RevocationFuture<'_> {
        (**self).revoke(what, until)
    }

    fn revoke_because(
        &self,
        what: Revocation,
        until: u64,
        reason: RevocationReason,
    ) -> RevocationFuture<'static> {
        (**self).revoke_because(what, until, reason)
    }
}

#[derive(Default)]
struct Lists {
    tokens: HashMap<String, u64>,
    sessions: HashMap<String, (u64, RevocationReason)>,
}

/// An in-process revocation list with a fixed capacity. An entry counts
/// until its end, and is purged after it when room is needed.
///
/// A revocation is never dropped to make room: when the list is full of
/// unexpired entries, [`revoke`](Revocations::revoke) fails with
/// [`RevocationError::Full`] (expired entries are purged first). The
/// bound is the capacity given to [`new`](Self::new); size it for the
/// revocations of one verifier `max_lifetime` (each is kept that long), or
/// use `store::StoreRevocations` (feature `store`), which has no
/// ceiling. Clones share the list.
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
        self.insert_because(what, until, RevocationReason::Revoked)
    }

    /// Records a revocation now, with its reason. A session revoked twice
    /// keeps the later end and the reason of token reuse if either has it.
    pub fn insert_because(
        &self,
        what: Revocation,
        until: u64,
        reason: RevocationReason,
    ) -> Result<(), RevocationError> {
        let now = self.clock.unix_secs();
        if until <= now {
            // Nothing it covers is valid any more.
            return Ok(());
        }
        let mut lists = self.lists.write().unwrap_or_else(|e| e.into_inner());
        let len = lists.tokens.len() + lists.sessions.len();
        if len >= self.capacity {
            lists.tokens.retain(|_, end| *end > now);
            lists.sessions.retain(|_, (end, _)| *end > now);
            if lists.tokens.len() + lists.sessions.len() >= self.capacity {
                return Err(RevocationError::Full);
            }
        }
        match what {
            Revocation::Token(jti) => {
                let end = lists.tokens.entry(jti).or_insert(until);
                *end = (*end).max(until);
            }
            Revocation::Session(sid) => {
                let (end, why) = lists.sessions.entry(sid).or_insert((until, reason));
                *end = (*end).max(until);
                if reason == RevocationReason::TokenReuse {
                    *why = reason;
                }
            }
        }
        self.len
            .store(lists.tokens.len() + lists.sessions.len(), Ordering::Relaxed);
        Ok(())
    }
}

impl Revocations for MemoryRevocations {
    fn is_token_revoked(&self, jti: &str) -> bool {
        if self.len.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let now = self.clock.unix_secs();
        self.lists
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .tokens
            .get(jti)
            .is_some_and(|end| *end > now)
    }

    fn session_revocation(&self, sid: &str) -> Option<RevocationReason> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let now = self.clock.unix_secs();
        self.lists
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .sessions
            .get(sid)
            .filter(|(end, _)| *end > now)
            .map(|(_, reason)| *reason)
    }

    fn is_revoked(&self, jti: &str, sid: &str) -> bool {
        if self.len.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let now = self.clock.unix_secs();
        let lists = self.lists.read().unwrap_or_else(|e| e.into_inner());
        lists.tokens.get(jti).is_some_and(|end| *end > now)
            || lists.sessions.get(sid).is_some_and(|(end, _)| *end > now)
    }

    fn revoke_because(
        &self,
        what: Revocation,
        until: u64,
        reason: RevocationReason,
    ) -> RevocationFuture<'static> {
        let result = self.insert_because(what, until, reason);
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

    #[test]
    fn a_session_keeps_the_reason_of_reuse_and_ended_revocations_are_not_kept() {
        let clock = ManualClock::new(Duration::from_secs(100));
        let list = MemoryRevocations::new(4, Arc::new(clock));
        list.insert_because(
            Revocation::Session("s".into()),
            200,
            RevocationReason::TokenReuse,
        )
        .unwrap();
        // A later plain revocation extends it and keeps the reason.
        list.insert(Revocation::Session("s".into()), 300).unwrap();
        assert_eq!(
            list.session_revocation("s"),
            Some(RevocationReason::TokenReuse)
        );
        list.insert(Revocation::Session("t".into()), 300).unwrap();
        assert_eq!(
            list.session_revocation("t"),
            Some(RevocationReason::Revoked)
        );
        list.insert(Revocation::Token("old".into()), 100).unwrap();
        assert!(!list.is_token_revoked("old"));
    }
}

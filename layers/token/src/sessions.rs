//! The bounded table of active sessions the prefetch layer tracks.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::claims::Claims;
use crate::issuer::IssuedToken;

const SHARDS: usize = 16;

/// A message pushed to a session's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Push {
    /// The session's next token.
    Token(IssuedToken),
    /// The session is revoked.
    Revoked,
}

#[derive(Debug)]
pub(crate) struct Entry {
    subject: Arc<str>,
    /// Latest `exp` seen on a token of the session in use.
    active_exp: u64,
    /// The pre-fetched token, not used yet.
    next: Option<IssuedToken>,
    last_seen: u64,
    /// A reactive refresh is in flight.
    pending: bool,
    /// A prefetch is scheduled or in flight.
    scheduled: bool,
    /// A prefetch is in flight: no reactive refresh starts meanwhile.
    prefetching: bool,
    /// Expiry planned for the prefetched token and the start of the
    /// spreading window, for a refresh that runs before the scheduled one.
    planned: Option<(u64, u64)>,
    channel: Option<mpsc::Sender<Push>>,
}

impl Entry {
    fn effective_exp(&self) -> u64 {
        self.next
            .as_ref()
            .map_or(self.active_exp, |n| n.exp.max(self.active_exp))
    }

    fn evictable(&self, now: u64, idle_ttl: u64) -> bool {
        self.channel.as_ref().is_none_or(|c| c.is_closed())
            && (self.effective_exp() <= now || self.last_seen + idle_ttl <= now)
    }
}

/// What the driver does with a scheduled prefetch that is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PrefetchTurn {
    Run,
    Skip,
    /// A reactive refresh of the session is in flight: ask again shortly.
    Later,
}

/// What the request path learned from tracking one request.
#[derive(Debug, Default)]
pub(crate) struct Observation {
    /// The pre-fetched token to deliver in `x-foresight-next-token`.
    pub(crate) next_token: Option<Arc<str>>,
    /// A reactive refresh is due, for this subject.
    pub(crate) refresh: Option<Arc<str>>,
    /// The expiry planned for the session's prefetch, if one is scheduled.
    pub(crate) planned_exp: Option<u64>,
}

/// A session chosen for a prefetch.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub(crate) sid: String,
    pub(crate) subject: Arc<str>,
    pub(crate) exp: u64,
}

/// Sessions by id, sharded, at most `capacity` in all.
#[derive(Debug)]
pub(crate) struct SessionTable {
    shards: Box<[Mutex<HashMap<String, Entry>>]>,
    per_shard: usize,
    hasher: RandomState,
    idle_ttl: u64,
}

impl SessionTable {
    pub(crate) fn new(capacity: usize, idle_ttl: u64) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            idle_ttl,
        }
    }

    fn shard(&self, sid: &str) -> MutexGuard<'_, HashMap<String, Entry>> {
        let i = (self.hasher.hash_one(sid) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Tracks a request authenticated by `claims`. `margin` is the reactive
    /// refresh margin in seconds, if reactive refreshes are on.
    pub(crate) fn observe(&self, claims: &Claims, now: u64, margin: Option<u64>) -> Observation {
        let mut shard = self.shard(&claims.sid);
        if !shard.contains_key(claims.sid.as_str()) {
            if shard.len() >= self.per_shard {
                let idle_ttl = self.idle_ttl;
                shard.retain(|_, e| !e.evictable(now, idle_ttl));
            }
            if shard.len() >= self.per_shard {
                metrics::counter!(crate::metrics::SESSIONS_UNTRACKED).increment(1);
                return Observation::default();
            }
            shard.insert(
                claims.sid.clone(),
                Entry {
                    subject: claims.sub.as_str().into(),
                    active_exp: claims.exp,
                    next: None,
                    last_seen: now,
                    pending: false,
                    scheduled: false,
                    prefetching: false,
                    planned: None,
                    channel: None,
                },
            );
        }
        let Some(entry) = shard.get_mut(claims.sid.as_str()) else {
            return Observation::default();
        };
        if entry.next.as_ref().is_some_and(|n| n.jti == claims.jti) {
            // The client switched to the pre-fetched token.
            entry.active_exp = entry.active_exp.max(claims.exp);
            entry.next = None;
        } else if claims.exp > entry.active_exp {
            entry.active_exp = claims.exp;
        }
        entry.last_seen = now;
        let next_token = entry
            .next
            .as_ref()
            .filter(|n| n.exp >= claims.exp)
            .map(|n| n.token.clone());
        let refresh = match margin {
            Some(margin)
                if !entry.pending
                    && !entry.prefetching
                    && entry.next.is_none()
                    && entry.active_exp <= now.saturating_add(margin) =>
            {
                entry.pending = true;
                Some(entry.subject.clone())
            }
            _ => None,
        };
        Observation {
            next_token,
            planned_exp: refresh
                .as_ref()
                .and(entry.planned)
                .filter(|(_, window_start)| now >= *window_start)
                .map(|(exp, _)| exp),
            refresh,
        }
    }

    /// Records a refresh outcome; returns the channel to deliver on.
    pub(crate) fn complete(
        &self,
        sid: &str,
        prefetch: bool,
        token: Option<&IssuedToken>,
    ) -> Option<mpsc::Sender<Push>> {
        let mut shard = self.shard(sid);
        let entry = shard.get_mut(sid)?;
        if prefetch {
            entry.scheduled = false;
            entry.prefetching = false;
            entry.planned = None;
        } else {
            entry.pending = false;
        }
        let token = token?;
        if token.exp >= entry.effective_exp() {
            entry.next = Some(token.clone());
        }
        entry.channel.clone()
    }

    /// Records the expiry planned for a scheduled prefetch.
    pub(crate) fn set_planned(&self, sid: &str, exp: u64, window_start: u64) {
        if let Some(entry) = self.shard(sid).get_mut(sid) {
            entry.planned = Some((exp, window_start));
        }
    }

    /// Whether a scheduled prefetch runs now. Not when the session's
    /// tokens already outlast `cutoff` (the schedule mark is then cleared);
    /// later when a reactive refresh is in flight (it may be the merged,
    /// long one); otherwise it runs, and no reactive refresh starts until it
    /// completes. One refresh at a time per session, so a session never
    /// gets two long-lived tokens for one peak.
    pub(crate) fn prefetch_turn(&self, sid: &str, cutoff: u64) -> PrefetchTurn {
        let mut shard = self.shard(sid);
        let Some(entry) = shard.get_mut(sid) else {
            return PrefetchTurn::Skip;
        };
        if entry.effective_exp() >= cutoff {
            entry.scheduled = false;
            entry.planned = None;
            return PrefetchTurn::Skip;
        }
        if entry.pending {
            return PrefetchTurn::Later;
        }
        entry.prefetching = true;
        PrefetchTurn::Run
    }

    /// Clears the pending mark of a refresh that was not run.
    pub(crate) fn cancel(&self, sid: &str) {
        if let Some(entry) = self.shard(sid).get_mut(sid) {
            entry.pending = false;
        }
    }

    /// Sessions whose tokens all expire before `cutoff`, that are reachable
    /// (an open connection, or seen within the idle TTL) and have nothing
    /// scheduled. They are marked scheduled.
    pub(crate) fn prefetch_candidates(&self, cutoff: u64, now: u64) -> Vec<Candidate> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (sid, entry) in shard.iter_mut() {
                let reachable = entry.channel.as_ref().is_some_and(|c| !c.is_closed())
                    || entry.last_seen + self.idle_ttl > now;
                if !entry.scheduled && reachable && entry.effective_exp() < cutoff {
                    entry.scheduled = true;
                    out.push(Candidate {
                        sid: sid.clone(),
                        subject: entry.subject.clone(),
                        exp: entry.effective_exp(),
                    });
                }
            }
        }
        out
    }

    /// Attaches a WebSocket channel (replacing any previous one); returns
    /// the pre-fetched token to send first.
    pub(crate) fn attach(
        &self,
        claims: &Claims,
        now: u64,
        channel: mpsc::Sender<Push>,
    ) -> Option<Option<IssuedToken>> {
        let mut shard = self.shard(&claims.sid);
        if !shard.contains_key(claims.sid.as_str()) && shard.len() >= self.per_shard {
            let idle_ttl = self.idle_ttl;
            shard.retain(|_, e| !e.evictable(now, idle_ttl));
        }
        if !shard.contains_key(claims.sid.as_str()) && shard.len() >= self.per_shard {
            metrics::counter!(crate::metrics::SESSIONS_UNTRACKED).increment(1);
            return None;
        }
        let entry = shard.entry(claims.sid.clone()).or_insert_with(|| Entry {
            subject: claims.sub.as_str().into(),
            active_exp: claims.exp,
            next: None,
            last_seen: now,
            pending: false,
            scheduled: false,
            prefetching: false,
            planned: None,
            channel: None,
        });
        entry.active_exp = entry.active_exp.max(claims.exp);
        entry.last_seen = now;
        entry.channel = Some(channel);
        Some(entry.next.clone())
    }

    /// Detaches `channel` if it is still the session's.
    pub(crate) fn detach(&self, sid: &str, channel: &mpsc::Sender<Push>) {
        if let Some(entry) = self.shard(sid).get_mut(sid)
            && entry
                .channel
                .as_ref()
                .is_some_and(|c| c.same_channel(channel))
        {
            entry.channel = None;
        }
    }

    /// Forgets a session; returns its channel.
    pub(crate) fn remove(&self, sid: &str) -> Option<mpsc::Sender<Push>> {
        self.shard(sid).remove(sid).and_then(|e| e.channel)
    }

    /// Drops the pre-fetched token if it is `jti`.
    pub(crate) fn forget_next(&self, sid: &str, jti: &str) {
        if let Some(entry) = self.shard(sid).get_mut(sid)
            && entry.next.as_ref().is_some_and(|n| n.jti == jti)
        {
            entry.next = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Audience;

    fn claims(sid: &str, jti: &str, exp: u64) -> Claims {
        Claims {
            iss: "i".into(),
            sub: "u".into(),
            aud: Audience::One("a".into()),
            sid: sid.into(),
            jti: jti.into(),
            iat: 0,
            nbf: 0,
            exp,
            typ: "access".into(),
        }
    }

    #[test]
    fn bounded_and_evicts_expired_sessions_first() {
        let table = SessionTable::new(16, 3600);
        for i in 0..200 {
            table.observe(&claims(&format!("s{i}"), "j", 100), 10, None);
        }
        assert!(table.len() <= 16);
        // Once those expire, new sessions displace them.
        table.observe(&claims("fresh", "j", 1000), 200, None);
        assert!(table.shard("fresh").contains_key("fresh"));
    }

    #[test]
    fn promotes_the_prefetched_token() {
        let table = SessionTable::new(16, 3600);
        assert!(
            table
                .observe(&claims("s", "a", 100), 10, Some(30))
                .refresh
                .is_none()
        );
        let obs = table.observe(&claims("s", "a", 100), 80, Some(30));
        assert!(obs.refresh.is_some());
        let next = IssuedToken {
            token: "t2".into(),
            jti: "b".into(),
            sid: "s".into(),
            nbf: 80,
            exp: 400,
        };
        table.complete("s", false, Some(&next));
        let obs = table.observe(&claims("s", "a", 100), 81, Some(30));
        assert_eq!(obs.next_token.as_deref(), Some("t2"));
        let obs = table.observe(&claims("s", "b", 400), 82, Some(30));
        assert!(obs.next_token.is_none() && obs.refresh.is_none());
    }
}

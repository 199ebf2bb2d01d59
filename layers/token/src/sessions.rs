//! The bounded table of active sessions the prefetch layer tracks.
//!
//! Each session also records its token chain, for reuse detection (RFC 9700
//! §4.14.2, applied to the successors the layer delivers): the token in use
//! (`active`), the successor delivered and not used yet (`next`), and the
//! tokens it superseded. A request with `next` makes it the token in use
//! and supersedes the previous one. A superseded token presented again
//! after that (beyond [`IN_FLIGHT_GRACE_SECS`], for requests already on the
//! way) is a reuse: the layer revokes the session. Until the successor is
//! used the previous token stays valid, since the client may not have
//! received it. A session keeps at most [`MAX_SUPERSEDED`] superseded
//! tokens, and none past its `exp` plus the leeway (it is refused as
//! expired then); a fifth pushes out the oldest, which is then only
//! refused at its expiry. Tokens of the session the layer did not deliver
//! (from a login, another instance) are accepted and change nothing.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::claims::Claims;
use crate::issuer::IssuedToken;

const SHARDS: usize = 16;
/// Superseded tokens remembered per session.
pub(crate) const MAX_SUPERSEDED: usize = 4;
/// Seconds after a successor's first use during which its predecessor is
/// still accepted (requests sent before the switch, arriving after it).
pub(crate) const IN_FLIGHT_GRACE_SECS: u64 = 2;

/// A token replaced by its successor.
#[derive(Debug)]
struct Superseded {
    jti: String,
    exp: u64,
    /// When the successor was first used.
    since: u64,
}

/// What a token is to its session.
#[derive(Debug, PartialEq, Eq)]
enum Use {
    /// The token in use (or the successor, now in use).
    Current,
    /// Superseded, inside the in-flight grace.
    InFlight,
    /// Superseded, after the successor was used: a reuse.
    Reuse,
    /// Not delivered by this layer.
    Unknown,
}

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
    /// `jti` of the token in use.
    active_jti: String,
    /// `exp` of the token in use.
    active_jti_exp: u64,
    /// Tokens replaced by a successor that was used, oldest first.
    superseded: VecDeque<Superseded>,
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
    /// The prefetch planned for the session, for a refresh that runs
    /// before the scheduled one.
    planned: Option<Planned>,
    channel: Option<mpsc::Sender<Push>>,
}

impl Entry {
    fn new(claims: &Claims, now: u64) -> Self {
        Self {
            subject: claims.sub.as_str().into(),
            active_jti: claims.jti.clone(),
            active_jti_exp: claims.exp,
            superseded: VecDeque::new(),
            active_exp: claims.exp,
            next: None,
            last_seen: now,
            pending: false,
            scheduled: false,
            prefetching: false,
            planned: None,
            channel: None,
        }
    }

    /// Classifies the token of `claims`, switching to it if it is the
    /// delivered successor.
    fn classify(&mut self, claims: &Claims, now: u64, leeway: u64) -> Use {
        if self.active_jti == claims.jti {
            return Use::Current;
        }
        if self.next.as_ref().is_some_and(|n| n.jti == claims.jti) {
            // The client switched to the pre-fetched token.
            self.superseded
                .retain(|s| s.exp.saturating_add(leeway) > now);
            if self.superseded.len() >= MAX_SUPERSEDED {
                self.superseded.pop_front();
            }
            let previous = std::mem::replace(&mut self.active_jti, claims.jti.clone());
            self.superseded.push_back(Superseded {
                jti: previous,
                exp: self.active_jti_exp,
                since: now,
            });
            self.active_jti_exp = claims.exp;
            self.active_exp = self.active_exp.max(claims.exp);
            self.next = None;
            return Use::Current;
        }
        match self.superseded.iter().find(|s| s.jti == claims.jti) {
            Some(s) if now < s.since.saturating_add(IN_FLIGHT_GRACE_SECS) => Use::InFlight,
            Some(_) => Use::Reuse,
            None => Use::Unknown,
        }
    }

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

/// A prefetch planned for a session.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Planned {
    /// Expiry planned for the prefetched token.
    pub(crate) exp: u64,
    /// Start of the spreading window.
    pub(crate) window_start: u64,
    /// When the prefetch is scheduled, if a refresh inside the window may
    /// take its place: a request inside the window whose token ends before
    /// this time may get the planned token at once, since the session needs
    /// a refresh before its slot anyway.
    pub(crate) merge_before: Option<u64>,
}

/// The outcome of [`SessionTable::attach`].
#[derive(Debug)]
pub(crate) enum Attach {
    /// Attached; the pre-fetched token to send first, if any.
    Attached(Option<IssuedToken>),
    /// The table is full.
    Full,
    /// The token is superseded and its successor was used.
    Reuse,
    /// The session has an open connection and the token is not its
    /// current one.
    Taken,
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
    /// A superseded token came back after its successor was used: the
    /// request is refused and the session revoked.
    pub(crate) reuse: bool,
    /// The pre-fetched token to deliver in `x-foresight-next-token`.
    pub(crate) next_token: Option<Arc<str>>,
    /// A reactive refresh is due, for this subject.
    pub(crate) refresh: Option<Arc<str>>,
    /// The expiry planned for the session's prefetch, if one is scheduled.
    pub(crate) planned_exp: Option<u64>,
    /// The refresh is not due by the margin: it takes the place of a
    /// planned prefetch whose slot comes after the token ends.
    pub(crate) ahead_of_slot: bool,
}

/// A session chosen for a prefetch.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub(crate) sid: String,
    pub(crate) subject: Arc<str>,
    pub(crate) exp: u64,
    /// When a request of the session was last seen.
    pub(crate) last_seen: u64,
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
    /// refresh margin in seconds, if reactive refreshes are on; `leeway` the
    /// verifier's.
    pub(crate) fn observe(
        &self,
        claims: &Claims,
        now: u64,
        margin: Option<u64>,
        leeway: u64,
    ) -> Observation {
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
            shard.insert(claims.sid.clone(), Entry::new(claims, now));
        }
        let Some(entry) = shard.get_mut(claims.sid.as_str()) else {
            return Observation::default();
        };
        match entry.classify(claims, now, leeway) {
            Use::Reuse => {
                return Observation {
                    reuse: true,
                    ..Observation::default()
                };
            }
            Use::Unknown if claims.exp > entry.active_exp => entry.active_exp = claims.exp,
            _ => {}
        }
        entry.last_seen = now;
        let next_token = entry
            .next
            .as_ref()
            .filter(|n| n.exp >= claims.exp)
            .map(|n| n.token.clone());
        let in_window = entry.planned.filter(|p| now >= p.window_start);
        let lapses_before_slot = in_window
            .and_then(|p| p.merge_before)
            .is_some_and(|due| entry.active_exp < due);
        let refresh = match margin {
            Some(margin)
                if !entry.pending
                    && !entry.prefetching
                    && entry.next.is_none()
                    && (entry.active_exp <= now.saturating_add(margin) || lapses_before_slot) =>
            {
                entry.pending = true;
                Some(entry.subject.clone())
            }
            _ => None,
        };
        Observation {
            reuse: false,
            next_token,
            planned_exp: refresh.as_ref().and(in_window).map(|p| p.exp),
            ahead_of_slot: refresh.is_some()
                && entry.active_exp > now.saturating_add(margin.unwrap_or(0)),
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

    /// Records the prefetch planned for a session.
    pub(crate) fn set_planned(&self, sid: &str, planned: Planned) {
        if let Some(entry) = self.shard(sid).get_mut(sid) {
            entry.planned = Some(planned);
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
                        last_seen: entry.last_seen,
                    });
                }
            }
        }
        out
    }

    /// Attaches a WebSocket channel; returns the pre-fetched token to send
    /// first. The first attach of a session wins: while its connection is
    /// open, another needs the session's current token (the one in use or
    /// its delivered successor), and then replaces it. A superseded token is
    /// a reuse, as on a request.
    pub(crate) fn attach(
        &self,
        claims: &Claims,
        now: u64,
        leeway: u64,
        channel: mpsc::Sender<Push>,
    ) -> Attach {
        let mut shard = self.shard(&claims.sid);
        if !shard.contains_key(claims.sid.as_str()) && shard.len() >= self.per_shard {
            let idle_ttl = self.idle_ttl;
            shard.retain(|_, e| !e.evictable(now, idle_ttl));
        }
        if !shard.contains_key(claims.sid.as_str()) && shard.len() >= self.per_shard {
            metrics::counter!(crate::metrics::SESSIONS_UNTRACKED).increment(1);
            return Attach::Full;
        }
        let entry = shard
            .entry(claims.sid.clone())
            .or_insert_with(|| Entry::new(claims, now));
        let open = entry.channel.as_ref().is_some_and(|c| !c.is_closed());
        match entry.classify(claims, now, leeway) {
            Use::Reuse => return Attach::Reuse,
            Use::Current => {}
            Use::InFlight | Use::Unknown if open => return Attach::Taken,
            Use::InFlight | Use::Unknown => {}
        }
        entry.active_exp = entry.active_exp.max(claims.exp);
        entry.last_seen = now;
        entry.channel = Some(channel);
        Attach::Attached(entry.next.clone())
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
mod tests;

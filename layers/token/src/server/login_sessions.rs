//! The sessions opened by login: bounded, with an idle and an absolute
//! lifetime.

use std::sync::Mutex;
use std::time::Duration;

use indexmap::IndexMap;

/// Entries examined by the sweep of each login.
const SWEEP_ON_LOGIN: usize = 8;
/// Entries examined when the table is full.
const SWEEP_WHEN_FULL: usize = 256;

#[derive(Debug)]
struct Session {
    sub: String,
    /// Unix second of the login; the session ends `absolute` after it.
    created: u64,
    /// Unix second after which the session is idle: its newest token's
    /// `exp` plus the idle lifetime.
    idle_deadline: u64,
}

impl Session {
    fn deadline(&self, absolute: u64) -> u64 {
        self.idle_deadline
            .min(self.created.saturating_add(absolute))
    }
}

#[derive(Debug, Default)]
struct Table {
    sessions: IndexMap<String, Session>,
    cursor: usize,
}

/// Why a refresh found no session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NoSession;

/// Login sessions: `sid → (sub, created, idle deadline)`.
///
/// A session ends at the first of: its absolute lifetime after login
/// (refreshes never extend it, and a refreshed token never outlives it),
/// or its idle lifetime after the expiry of its newest token. An ended
/// session is removed when it is looked up, and by a sweep (a round-robin
/// cursor over a bounded number of entries) at each login and, wider, when
/// the table is full. At most `max` sessions: a login beyond that is
/// refused, with the time until the soonest end seen by the sweep.
#[derive(Debug)]
pub(crate) struct LoginSessions {
    max: usize,
    idle: u64,
    absolute: u64,
    table: Mutex<Table>,
}

impl LoginSessions {
    pub(crate) fn new(max: usize, idle: Duration, absolute: Duration) -> Self {
        Self {
            max,
            idle: idle.as_secs(),
            absolute: absolute.as_secs(),
            table: Mutex::default(),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lifetime a login may give its first token: `wanted`, cut to the
    /// absolute lifetime.
    pub(crate) fn first_lifetime(&self, wanted: Duration) -> Duration {
        wanted.min(Duration::from_secs(self.absolute))
    }

    /// Opens `sid` for `sub` at `now`, its first token living `lifetime`.
    /// When full, says when to retry.
    pub(crate) fn open(
        &self,
        sid: String,
        sub: String,
        now: u64,
        lifetime: Duration,
    ) -> Result<(), Duration> {
        let mut table = self.table();
        let soonest = self.sweep(&mut table, now, SWEEP_ON_LOGIN);
        if table.sessions.len() >= self.max {
            let soonest = soonest.min(self.sweep(&mut table, now, SWEEP_WHEN_FULL));
            if table.sessions.len() >= self.max {
                let wait = soonest.saturating_sub(now).max(1);
                return Err(Duration::from_secs(wait));
            }
        }
        let session = Session {
            sub,
            created: now,
            idle_deadline: now
                .saturating_add(lifetime.as_secs())
                .saturating_add(self.idle),
        };
        table.sessions.insert(sid, session);
        Ok(())
    }

    /// Renews `sid` of `sub` at `now` for a token of up to `wanted`: the
    /// lifetime granted (cut to the session's absolute end), or
    /// [`NoSession`] when it is unknown, of another subject, or ended (then
    /// it is removed).
    pub(crate) fn renew(
        &self,
        sid: &str,
        sub: &str,
        now: u64,
        wanted: Duration,
    ) -> Result<Duration, NoSession> {
        let mut table = self.table();
        let session = table.sessions.get_mut(sid).ok_or(NoSession)?;
        if now >= session.deadline(self.absolute) {
            table.sessions.swap_remove(sid);
            return Err(NoSession);
        }
        if session.sub != sub {
            return Err(NoSession);
        }
        let left = session.created.saturating_add(self.absolute) - now;
        let granted = wanted.min(Duration::from_secs(left));
        session.idle_deadline = now
            .saturating_add(granted.as_secs())
            .saturating_add(self.idle);
        Ok(granted)
    }

    /// Ends `sid`.
    pub(crate) fn close(&self, sid: &str) {
        self.table().sessions.swap_remove(sid);
    }

    /// Sessions in the table (ended ones not yet swept included).
    pub(crate) fn len(&self) -> usize {
        self.table().sessions.len()
    }

    /// Examines up to `budget` sessions from the cursor, removes the ended
    /// ones, and returns the soonest end among those kept (`u64::MAX` when
    /// none).
    fn sweep(&self, table: &mut Table, now: u64, budget: usize) -> u64 {
        let mut soonest = u64::MAX;
        for _ in 0..budget.min(table.sessions.len()) {
            let len = table.sessions.len();
            if len == 0 {
                break;
            }
            let at = table.cursor % len;
            let deadline = table.sessions[at].deadline(self.absolute);
            if now >= deadline {
                // The last entry moves into `at`: examine `at` again next.
                table.sessions.swap_remove_index(at);
            } else {
                soonest = soonest.min(deadline);
                table.cursor = at + 1;
            }
        }
        soonest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn idle_sessions_end_and_refreshes_keep_them_alive() {
        let sessions = LoginSessions::new(10, 10 * MIN, 60 * MIN);
        sessions
            .open("s1".into(), "alice".into(), 0, 5 * MIN)
            .unwrap();
        // Alive until its token's expiry plus the idle lifetime.
        assert_eq!(sessions.renew("s1", "alice", 899, 5 * MIN), Ok(5 * MIN));
        assert_eq!(sessions.renew("s1", "bob", 900, 5 * MIN), Err(NoSession));
        // Renewed at 899 for 5 min: idle from 899 + 300 + 600.
        assert_eq!(sessions.renew("s1", "alice", 1798, MIN), Ok(MIN));
        // Renewed at 1798 for 1 min: idle from 1798 + 60 + 600 = 2458.
        assert_eq!(sessions.renew("s1", "alice", 2457, MIN), Ok(MIN));
        assert_eq!(
            sessions.renew("s1", "alice", 2457 + 660, MIN),
            Err(NoSession)
        );
        assert_eq!(sessions.len(), 0, "an ended session is removed on lookup");
    }

    #[test]
    fn the_absolute_lifetime_caps_sessions_and_their_tokens() {
        let sessions = LoginSessions::new(10, 10 * MIN, 60 * MIN);
        assert_eq!(sessions.first_lifetime(120 * MIN), 60 * MIN);
        sessions
            .open("s1".into(), "alice".into(), 0, 5 * MIN)
            .unwrap();
        for now in (240..=3240).step_by(240) {
            assert_eq!(sessions.renew("s1", "alice", now, 5 * MIN), Ok(5 * MIN));
        }
        // The last token ends with the session, not after it.
        assert_eq!(
            sessions.renew("s1", "alice", 3500, 5 * MIN),
            Ok(Duration::from_secs(100))
        );
        assert_eq!(sessions.renew("s1", "alice", 3600, 5 * MIN), Err(NoSession));
    }

    #[test]
    fn a_full_table_refuses_until_the_sweep_finds_ended_sessions() {
        let sessions = LoginSessions::new(3, MIN, 60 * MIN);
        for (i, now) in [(0, 0), (1, 50), (2, 100)] {
            sessions
                .open(format!("s{i}"), "u".into(), now, MIN)
                .unwrap();
        }
        // s0 ends at 0 + 60 + 60 = 120.
        assert_eq!(
            sessions.open("s3".into(), "u".into(), 110, MIN),
            Err(Duration::from_secs(10))
        );
        assert_eq!(sessions.open("s3".into(), "u".into(), 120, MIN), Ok(()));
        assert_eq!(sessions.len(), 3);
        assert_eq!(sessions.renew("s0", "u", 120, MIN), Err(NoSession));
    }

    #[test]
    fn the_sweep_removes_ended_sessions_without_lookups() {
        let sessions = LoginSessions::new(1000, MIN, 60 * MIN);
        for i in 0..100 {
            sessions.open(format!("s{i}"), "u".into(), 0, MIN).unwrap();
        }
        // Each login examines a few entries: after enough logins, every
        // ended session is gone although none was looked up.
        for i in 0..20 {
            sessions
                .open(format!("t{i}"), "u".into(), 1_000, MIN)
                .unwrap();
        }
        assert_eq!(sessions.len(), 20);
    }
}

//! Per-client rate limits: a [`TokenBucket`] per key, in a bounded table.

use std::sync::Mutex;
use std::time::Duration;

use indexmap::IndexMap;

use crate::bucket::TokenBucket;

/// How many requests a client may make: `burst` at once, then `per_second`
/// on average.
///
/// ```
/// use foresight_token::server::RateLimit;
///
/// // Five attempts at once, then one every 12 seconds.
/// let limit = RateLimit::new(5, 1.0 / 12.0);
/// assert_eq!(limit.burst(), 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    burst: u32,
    per_second: f64,
}

impl RateLimit {
    /// `burst` requests at once (at least one), refilled at `per_second`
    /// (a non-finite or negative rate counts as zero: no refill).
    pub fn new(burst: u32, per_second: f64) -> Self {
        Self {
            burst: burst.max(1),
            per_second: if per_second.is_finite() {
                per_second.max(0.0)
            } else {
                0.0
            },
        }
    }

    /// Requests allowed at once.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Average requests per second after the burst.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// A full bucket of this limit at `now` (Unix time).
    pub fn full_bucket(&self, now: Duration) -> TokenBucket {
        TokenBucket::full(f64::from(self.burst), self.per_second, now)
    }
}

/// Entries examined per sweep of the table.
const SWEEP: usize = 64;

struct Table {
    buckets: IndexMap<String, TokenBucket>,
    cursor: usize,
}

/// A [`RateLimit`] per key (a client address or a subject), in a table of
/// at most `max_keys` entries.
///
/// A full bucket is the same as none, so a bounded sweep (a round-robin
/// cursor over at most 64 entries) removes full buckets whenever the table
/// is full. When it is still full, a key without an entry is refused (the
/// limit fails closed) with a one-second retry; keys already in the table
/// go on as before.
pub(crate) struct KeyedLimiter {
    limit: RateLimit,
    max_keys: usize,
    table: Mutex<Table>,
}

impl std::fmt::Debug for KeyedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("limit", &self.limit)
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl KeyedLimiter {
    pub(crate) fn new(limit: RateLimit, max_keys: usize) -> Self {
        Self {
            limit,
            max_keys: max_keys.max(1),
            table: Mutex::new(Table {
                buckets: IndexMap::new(),
                cursor: 0,
            }),
        }
    }

    /// Takes one token for `key` at `now` (Unix time), or says when to
    /// retry.
    pub(crate) fn check(&self, key: &str, now: Duration) -> Result<(), Duration> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = table.buckets.get_mut(key) {
            return bucket.try_take(now);
        }
        if table.buckets.len() >= self.max_keys {
            self.sweep(&mut table, now);
            if table.buckets.len() >= self.max_keys {
                return Err(Duration::from_secs(1));
            }
        }
        let mut bucket = self.limit.full_bucket(now);
        let taken = bucket.try_take(now);
        table.buckets.insert(key.to_owned(), bucket);
        taken
    }

    fn sweep(&self, table: &mut Table, now: Duration) {
        for _ in 0..SWEEP {
            let len = table.buckets.len();
            if len == 0 {
                break;
            }
            let at = table.cursor % len;
            let full = table.buckets[at].is_full(now);
            if full {
                // The last entry moves into `at`: examine `at` again next.
                table.buckets.swap_remove_index(at);
            } else {
                table.cursor = at + 1;
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buckets
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limit = RateLimit::new(3, 0.5);
        let mut bucket = limit.full_bucket(secs(100));
        for _ in 0..3 {
            assert_eq!(bucket.try_take(secs(100)), Ok(()));
        }
        assert_eq!(bucket.try_take(secs(100)), Err(Duration::from_secs(2)));
        assert_eq!(bucket.try_take(secs(101)), Err(Duration::from_secs(1)));
        assert_eq!(bucket.try_take(secs(102)), Ok(()));
        assert!(!bucket.is_full(secs(104)));
        assert!(bucket.is_full(secs(108)));
    }

    #[test]
    fn a_limit_without_refill_says_so() {
        let limit = RateLimit::new(1, f64::NAN);
        let mut bucket = limit.full_bucket(secs(0));
        assert_eq!(bucket.try_take(secs(0)), Ok(()));
        assert_eq!(bucket.try_take(secs(1_000_000_000)), Err(Duration::MAX));
    }

    #[test]
    fn keys_are_limited_apart_and_the_table_is_bounded() {
        let limiter = KeyedLimiter::new(RateLimit::new(1, 0.1), 2);
        assert_eq!(limiter.check("a", secs(0)), Ok(()));
        assert_eq!(limiter.check("a", secs(0)), Err(Duration::from_secs(10)));
        assert_eq!(limiter.check("b", secs(0)), Ok(()));
        // Full of live buckets: a new key is refused, known keys go on.
        assert_eq!(limiter.check("c", secs(1)), Err(Duration::from_secs(1)));
        assert_eq!(limiter.len(), 2);
        // Once the buckets refill, the sweep makes room.
        assert_eq!(limiter.check("c", secs(20)), Ok(()));
        assert_eq!(limiter.len(), 1);
    }
}

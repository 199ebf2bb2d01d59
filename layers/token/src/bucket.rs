//! [`TokenBucket`]: a rate with a burst, refilled from a clock reading.
//!
//! One type serves the prefetch driver (at most `max_issue_rate` refreshes
//! per second) and the authentication server's per-client rate limits.

use std::time::Duration;

/// `tokens` left of at most `capacity`, refilled at `per_second`, as of
/// the last reading of the clock (Unix time, in whole microseconds; a
/// reading earlier than the last adds nothing). The prefetch driver holds
/// `max_issue_rate` with one, the authentication server a rate limit per
/// client.
///
/// ```
/// use std::time::Duration;
/// use foresight_token::TokenBucket;
///
/// // Three at once, then one every two seconds.
/// let start = Duration::from_secs(100);
/// let mut bucket = TokenBucket::full(3.0, 0.5, start);
/// for _ in 0..3 {
///     assert_eq!(bucket.try_take(start), Ok(()));
/// }
/// assert_eq!(bucket.try_take(start), Err(Duration::from_secs(2)));
/// assert_eq!(bucket.try_take(start + Duration::from_secs(2)), Ok(()));
///
/// // A new bucket is empty as of the Unix epoch: the first refill fills it.
/// let mut bucket = TokenBucket::new(50.0, 50.0);
/// bucket.refill(start);
/// assert_eq!(bucket.tokens(), 50.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated_micros: u64,
}

impl TokenBucket {
    /// An empty bucket of `capacity` refilled at `per_second`, as of the
    /// Unix epoch (so the first [`refill`](Self::refill) fills it).
    pub fn new(capacity: f64, per_second: f64) -> Self {
        Self {
            capacity,
            per_second,
            tokens: 0.0,
            updated_micros: 0,
        }
    }

    /// A full bucket at `now`.
    pub fn full(capacity: f64, per_second: f64, now: Duration) -> Self {
        Self {
            capacity,
            per_second,
            tokens: capacity,
            updated_micros: micros(now),
        }
    }

    /// Adds what the rate gave since the last reading, up to the capacity.
    pub fn refill(&mut self, now: Duration) {
        let now = micros(now);
        if now > self.updated_micros {
            let elapsed = (now - self.updated_micros) as f64 / 1e6;
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
            self.updated_micros = now;
        }
    }

    /// Tokens left (after the last refill).
    pub fn tokens(&self) -> f64 {
        self.tokens
    }

    /// Whether a whole token is there (after the last refill).
    pub fn has_token(&self) -> bool {
        self.tokens >= 1.0
    }

    /// Takes one token if a whole one is there (after the last refill).
    pub fn take(&mut self) -> bool {
        let has = self.has_token();
        if has {
            self.tokens -= 1.0;
        }
        has
    }

    /// Refills at `now` and takes one token, or says how long until one is
    /// there (`Duration::MAX` when the bucket never refills).
    pub fn try_take(&mut self, now: Duration) -> Result<(), Duration> {
        self.refill(now);
        if self.take() {
            return Ok(());
        }
        if self.per_second.is_nan() || self.per_second <= 0.0 {
            return Err(Duration::MAX);
        }
        Err(Duration::from_secs_f64(
            (1.0 - self.tokens) / self.per_second,
        ))
    }

    /// Whether the bucket has refilled completely at `now`: the same as
    /// having no bucket.
    pub fn is_full(&self, now: Duration) -> bool {
        let mut bucket = *self;
        bucket.refill(now);
        bucket.tokens >= bucket.capacity
    }
}

/// A clock reading in whole microseconds.
pub(crate) fn micros(at: Duration) -> u64 {
    u64::try_from(at.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_bucket_fills_at_its_rate_up_to_its_capacity() {
        let mut bucket = TokenBucket::new(2.0, 4.0);
        bucket.refill(Duration::from_millis(250));
        assert_eq!(bucket.tokens(), 1.0);
        assert!(bucket.take());
        assert!(!bucket.take());
        bucket.refill(Duration::from_secs(10));
        assert_eq!(bucket.tokens(), 2.0);
        // An earlier reading adds nothing and keeps the last one.
        bucket.refill(Duration::from_secs(1));
        assert_eq!(bucket.tokens(), 2.0);
        assert!(bucket.take() && bucket.take() && !bucket.take());
        bucket.refill(Duration::from_millis(10_250));
        assert_eq!(bucket.tokens(), 1.0);
    }
}

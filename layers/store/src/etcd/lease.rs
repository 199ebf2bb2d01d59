//! Leases by expiry bucket: every session whose deadline falls in the same
//! bucket of time shares one etcd lease, granted to outlive the bucket's
//! end, so the number of leases depends on how far ahead deadlines reach,
//! not on how many sessions there are.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::Mutex;

/// The leases this store granted, by bucket (deadline divided by the bucket
/// width, rounded up).
#[derive(Debug)]
pub(crate) struct Leases {
    width_ms: u64,
    granted: Mutex<BTreeMap<u64, i64>>,
}

/// What a lease must cover: the bucket and, if it has none yet, the TTL to
/// grant it with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bucket {
    pub(crate) index: u64,
    /// Seconds from `now` to the bucket's end, rounded up, plus one.
    pub(crate) ttl_secs: i64,
}

impl Leases {
    pub(crate) fn new(width: Duration) -> Self {
        Self {
            width_ms: (width.as_millis() as u64).max(1000),
            granted: Mutex::new(BTreeMap::new()),
        }
    }

    /// The bucket width.
    pub(crate) fn width(&self) -> Duration {
        Duration::from_millis(self.width_ms)
    }

    /// The bucket of `deadline` (Unix ms), seen at `now` (Unix ms).
    pub(crate) fn bucket(&self, deadline: u64, now: u64) -> Bucket {
        let index = deadline.div_ceil(self.width_ms);
        let end = index.saturating_mul(self.width_ms);
        let ttl_secs = end.saturating_sub(now).div_ceil(1000) as i64 + 1;
        Bucket { index, ttl_secs }
    }

    /// The lease of `bucket`, granting it with `grant` (which takes the
    /// TTL in seconds and returns the lease id) if there is none. Buckets
    /// that ended before `now` are forgotten on the way.
    pub(crate) async fn lease<E, F, Fut>(
        &self,
        bucket: Bucket,
        now: u64,
        grant: F,
    ) -> Result<i64, E>
    where
        F: FnOnce(i64) -> Fut,
        Fut: Future<Output = Result<i64, E>>,
    {
        let mut granted = self.granted.lock().await;
        if let Some(id) = granted.get(&bucket.index) {
            return Ok(*id);
        }
        // Held across the grant: one lease per bucket, even when many
        // writers need it at once (a grant is rare, once per bucket).
        let id = grant(bucket.ttl_secs).await?;
        let current = now / self.width_ms;
        granted.retain(|index, _| *index >= current);
        granted.insert(bucket.index, id);
        metrics::counter!("foresight_store_etcd_leases_granted_total").increment(1);
        Ok(id)
    }

    /// Forgets the lease of `bucket`: etcd no longer knows it.
    pub(crate) async fn forget(&self, bucket: Bucket) {
        self.granted.lock().await.remove(&bucket.index);
    }

    /// How many leases are held now.
    pub(crate) async fn len(&self) -> usize {
        self.granted.lock().await.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_share_the_lease_of_their_bucket() {
        let leases = Leases::new(Duration::from_secs(10));
        let now = 1_000_000;
        let grants = std::sync::atomic::AtomicI64::new(0);
        let grant = |ttl: i64| {
            let id = grants.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                assert!(ttl > 0);
                Ok::<_, ()>(id)
            }
        };
        // Deadlines 1..=10 s ahead fall in one bucket (1_010_000 is its end).
        let a = leases.bucket(now + 1, now);
        let b = leases.bucket(now + 10_000, now);
        assert_eq!(a, b);
        assert_eq!(a.ttl_secs, 11);
        let first = leases.lease(a, now, grant).await.unwrap();
        assert_eq!(leases.lease(b, now, grant).await.unwrap(), first);
        let c = leases.bucket(now + 10_001, now);
        assert_ne!(leases.lease(c, now, grant).await.unwrap(), first);
        assert_eq!(leases.len().await, 2);
        // A minute later the first two buckets have ended and go.
        let later = now + 60_000;
        leases
            .lease(leases.bucket(later + 5, later), later, grant)
            .await
            .unwrap();
        assert_eq!(leases.len().await, 1);
    }
}

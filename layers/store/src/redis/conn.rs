//! Shared multiplexed connections, standalone or cluster, taken from a
//! deadpool pool and replaced when they break.
//!
//! A multiplexed connection carries concurrent requests on one socket, so
//! a few are shared by every operation instead of checking one out per
//! operation: a checkout from deadpool-redis pings the connection first,
//! which would double the round trips of each operation.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::StoreError;

#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

pub(crate) enum Pool {
    Single(deadpool_redis::Pool),
    Cluster(deadpool_redis::cluster::Pool),
}

/// Multiplexed connections shared round-robin. One connection pipelines
/// the commands of concurrent requests into few writes, which measured
/// cheaper on a small machine than spreading them over several.
pub(crate) const SHARED_CONNECTIONS: usize = 1;

/// The pool and the connections currently shared, each tagged with a
/// generation so that a late failure report does not drop a newer one.
pub(crate) struct Shared {
    pool: Pool,
    slots: Vec<Mutex<(u64, Option<Conn>)>>,
    next: AtomicUsize,
    generation: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.pool {
            Pool::Single(_) => "standalone",
            Pool::Cluster(_) => "cluster",
        };
        f.debug_struct("Shared")
            .field("kind", &kind)
            .field("connections", &self.slots.len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(pool: Pool) -> Self {
        Self {
            pool,
            slots: (0..SHARED_CONNECTIONS)
                .map(|_| Mutex::new((0, None)))
                .collect(),
            next: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.pool, Pool::Cluster(_))
    }

    /// A shared connection and its generation, connecting if needed.
    /// `response_timeout` replaces redis-rs' default of 500 ms, which a
    /// `WAIT` may exceed; the store bounds each operation itself.
    pub(crate) async fn get(&self, response_timeout: Duration) -> Result<(u64, Conn), StoreError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        {
            let guard = lock(slot);
            if let (generation, Some(conn)) = &*guard {
                return Ok((*generation, conn.clone()));
            }
        }
        let conn = match &self.pool {
            Pool::Single(pool) => pool.get().await.map(|c| {
                let mut conn = deadpool_redis::Connection::take(c);
                conn.set_response_timeout(response_timeout);
                Conn::Single(conn)
            }),
            Pool::Cluster(pool) => pool
                .get()
                .await
                .map(|c| Conn::Cluster(deadpool_redis::cluster::Connection::take(c))),
        }
        .map_err(StoreError::unavailable)?;
        let mut guard = lock(slot);
        match &guard.1 {
            // Another task connected meanwhile: share its connection.
            Some(current) => Ok((guard.0, current.clone())),
            None => {
                guard.0 = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
                guard.1 = Some(conn.clone());
                Ok((guard.0, conn))
            }
        }
    }

    /// Drops every shared connection.
    pub(crate) fn reset(&self) {
        for slot in &self.slots {
            lock(slot).1 = None;
        }
    }

    /// Drops the shared connection of `generation` after it failed.
    pub(crate) fn broken(&self, generation: u64) {
        for slot in &self.slots {
            let mut guard = lock(slot);
            if guard.0 == generation {
                guard.1 = None;
            }
        }
    }
}

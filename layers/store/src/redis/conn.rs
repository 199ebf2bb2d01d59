//! A shared multiplexed connection, standalone or cluster, taken from a
//! deadpool pool and replaced when it breaks.
//!
//! A multiplexed connection carries concurrent requests on one socket, so
//! one is shared by every operation instead of checking one out per
//! operation: a checkout from deadpool-redis pings the connection first,
//! which would double the round trips of each operation.

use std::sync::Mutex;

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

/// The pool and the connection currently shared, with a generation so that
/// a late failure report does not drop a newer connection.
pub(crate) struct Shared {
    pool: Pool,
    current: Mutex<(u64, Option<Conn>)>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.pool {
            Pool::Single(_) => "standalone",
            Pool::Cluster(_) => "cluster",
        };
        f.debug_struct("Shared").field("kind", &kind).finish()
    }
}

impl Shared {
    pub(crate) fn new(pool: Pool) -> Self {
        Self {
            pool,
            current: Mutex::new((0, None)),
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.pool, Pool::Cluster(_))
    }

    /// The shared connection and its generation, connecting if needed.
    pub(crate) async fn get(&self) -> Result<(u64, Conn), StoreError> {
        {
            let guard = self.current.lock().unwrap_or_else(|e| e.into_inner());
            if let (generation, Some(conn)) = &*guard {
                return Ok((*generation, conn.clone()));
            }
        }
        let conn = match &self.pool {
            Pool::Single(pool) => pool
                .get()
                .await
                .map(|c| Conn::Single(deadpool_redis::Connection::take(c))),
            Pool::Cluster(pool) => pool
                .get()
                .await
                .map(|c| Conn::Cluster(deadpool_redis::cluster::Connection::take(c))),
        }
        .map_err(StoreError::unavailable)?;
        let mut guard = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match &guard.1 {
            // Another task connected meanwhile: share its connection.
            Some(current) => Ok((guard.0, current.clone())),
            None => {
                guard.0 += 1;
                guard.1 = Some(conn.clone());
                Ok((guard.0, conn))
            }
        }
    }

    /// Drops the shared connection, whichever it is.
    pub(crate) fn reset(&self) {
        let mut guard = self.current.lock().unwrap_or_else(|e| e.into_inner());
        guard.1 = None;
    }

    /// Drops the shared connection of `generation` after it failed.
    pub(crate) fn broken(&self, generation: u64) {
        let mut guard = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if guard.0 == generation {
            guard.1 = None;
        }
    }
}

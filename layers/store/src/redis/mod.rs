//! `RedisStore`: sessions in Redis or Redis Cluster.

#[cfg(feature = "cache")]
mod bus;
pub(crate) mod codec;
mod conn;
mod read;
mod script;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::Runtime;
use deadpool_redis::redis::{self, RedisError, ServerErrorKind, Value};

use self::conn::{Conn, Pool, Shared};
use self::script::Scripts;
use crate::store::StoreFuture;
use crate::{
    DEFAULT_SIZE_LIMIT, Expiry, Loaded, SessionData, SessionId, SessionStore, StoreError, Version,
    Versioned,
};

#[cfg(feature = "cache")]
pub use self::bus::RedisBus;

/// Default prefix of session keys.
pub const DEFAULT_KEY_PREFIX: &str = "foresight:session:";

/// A [`SessionStore`] in Redis, standalone or Redis Cluster, over
/// deadpool-redis.
///
/// # Layout and atomicity
/// A session is one hash under `<prefix>{<id>}` (the braces are a cluster
/// hash tag, so every key of a session maps to one slot): `v` version, `a`
/// absolute deadline and `i` idle timeout (server clock, milliseconds), `d`
/// the data (one format byte, then MessagePack: see below). Create, save,
/// touch and delete are each one Lua script that checks the version and
/// writes data, version and expiry in one atomic step; a load is one
/// `HMGET`. Each operation is one round trip.
///
/// # Encoding
/// MessagePack keeps every JSON value type without a schema, and is smaller
/// and faster to parse than JSON. A record that cannot be decoded (a value
/// of another type under the key, missing fields, bad bytes) is
/// [`StoreError::Corrupt`], and no script ever overwrites it.
///
/// # Durability
/// With [`with_replicas(n, timeout)`](Self::with_replicas), every write is followed on
/// the same connection, in the same pipeline, by `WAIT n timeout`; the write
/// is acknowledged only when `n` replicas confirmed it, otherwise the caller
/// gets [`StoreError::NotReplicated`]. Reads and refused writes are fenced
/// the same way: an answer from a node with fewer than `n` replicas in sync
/// (a former master back from a crash, before it learns it was replaced) is
/// [`StoreError::Unavailable`] with an [`Unconfirmed`] source, never a stale
/// value.
///
/// # Failures
/// Every operation is bounded by a timeout (default 2 s); an unreachable
/// server, a timeout, a cluster that is down or a read-only former master is
/// [`StoreError::Unavailable`] (for a write: outcome unknown), and the next
/// operation reconnects.
///
/// ```no_run
/// use std::time::Duration;
/// use foresight_store::{RedisStore, SessionStore};
///
/// # async fn demo() -> Result<(), foresight_store::StoreError> {
/// let standalone = RedisStore::standalone("redis://127.0.0.1:6379")?;
/// let cluster = RedisStore::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])?
///     .with_replicas(1, Duration::from_millis(100))
///     .with_key_prefix("app:session:");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RedisStore {
    inner: Arc<Inner>,
    /// The node URLs, which the invalidation bus opens its own
    /// subscriptions to.
    #[cfg_attr(not(feature = "cache"), allow(dead_code))]
    urls: Arc<[String]>,
    prefix: Arc<str>,
    replicas: Option<(usize, Duration)>,
    op_timeout: Duration,
    retry_after: Duration,
    max_size: usize,
}

#[derive(Debug)]
struct Inner {
    shared: Shared,
    scripts: Scripts,
}

impl RedisStore {
    /// A store on one Redis server (`redis://host:port[/db]`).
    pub fn standalone(url: &str) -> Result<Self, StoreError> {
        let pool = deadpool_redis::Config::from_url(url)
            .builder()
            .map_err(|e| StoreError::Backend(Box::new(e)))?
            .max_size(conn::SHARED_CONNECTIONS * 2)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(2)))
            .wait_timeout(Some(Duration::from_secs(2)))
            .build()
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Self::with_pool(Pool::Single(pool), vec![url.to_owned()]))
    }

    /// A store on a Redis Cluster, given the URLs of some of its nodes.
    pub fn cluster<I, U>(urls: I) -> Result<Self, StoreError>
    where
        I: IntoIterator<Item = U>,
        U: Into<String>,
    {
        let urls: Vec<String> = urls.into_iter().map(Into::into).collect();
        let pool = deadpool_redis::cluster::Config::from_urls(urls.clone())
            .builder()
            .map_err(|e| StoreError::Backend(Box::new(e)))?
            .max_size(conn::SHARED_CONNECTIONS * 2)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(2)))
            .wait_timeout(Some(Duration::from_secs(2)))
            .build()
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Self::with_pool(Pool::Cluster(pool), urls))
    }

    fn with_pool(pool: Pool, urls: Vec<String>) -> Self {
        Self {
            urls: urls.into(),
            inner: Arc::new(Inner {
                shared: Shared::new(pool),
                scripts: Scripts::new(),
            }),
            prefix: DEFAULT_KEY_PREFIX.into(),
            replicas: None,
            op_timeout: Duration::from_secs(2),
            retry_after: Duration::from_secs(1),
            max_size: DEFAULT_SIZE_LIMIT,
        }
    }

    /// Prefix of session keys (default [`DEFAULT_KEY_PREFIX`]).
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    /// Acknowledges a write only after `n` replicas confirmed it (`WAIT n
    /// timeout`). `n = 0` turns this off (the default).
    #[must_use]
    pub fn with_replicas(mut self, n: usize, timeout: Duration) -> Self {
        self.replicas = (n > 0).then_some((n, timeout));
        self
    }

    /// Upper bound of one operation, including reconnecting (default 2 s).
    #[must_use]
    pub fn with_op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout;
        self
    }

    /// The `retry_after` hint of [`StoreError::Unavailable`] (default 1 s).
    #[must_use]
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = delay;
        self
    }

    /// Largest encoded record accepted, in bytes (default 64 KiB).
    #[must_use]
    pub fn with_max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.inner.shared.is_cluster()
    }

    /// The Redis key of a session.
    pub fn key(&self, id: SessionId) -> String {
        format!("{}{{{id}}}", self.prefix)
    }

    /// Runs `op` on the shared connection within the timeout, mapping and
    /// reporting connection failures.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let attempt = async {
            let (generation, conn) = self.inner.shared.get(self.op_timeout).await?;
            op(conn).await.map_err(|e| {
                if breaks_connection(&e) {
                    self.inner.shared.broken(generation);
                }
                self.map_error(e)
            })
        };
        match tokio::time::timeout(self.op_timeout, attempt).await {
            Ok(result) => result,
            Err(elapsed) => {
                // The connection may be wedged: start afresh next time.
                self.inner.shared.reset();
                Err(StoreError::Unavailable {
                    source: Box::new(elapsed),
                    retry_after: self.retry_after,
                })
            }
        }
        .inspect_err(|e| {
            if e.is_unavailable() {
                metrics::counter!("foresight_store_unavailable_total").increment(1);
            }
        })
    }

    fn map_error(&self, e: RedisError) -> StoreError {
        if is_unavailable(&e) {
            StoreError::Unavailable {
                source: Box::new(e),
                retry_after: self.retry_after,
            }
        } else if e.code() == Some("WRONGTYPE") {
            StoreError::Corrupt(Box::new(e))
        } else {
            StoreError::Backend(Box::new(e))
        }
    }

    /// Runs a script, followed by `WAIT` when replicas are required, and
    /// returns its `{code, version}` answer.
    async fn eval(
        &self,
        script: &redis::Script,
        key: &str,
        args: &[&[u8]],
    ) -> Result<(i64, u64), StoreError> {
        let replicas = self.replicas;
        let (answer, confirmed) = self
            .run(|mut conn| async move {
                let pipeline = || {
                    let mut pipe = redis::pipe();
                    pipe.cmd("EVALSHA").arg(script.get_hash()).arg(1).arg(key);
                    for arg in args {
                        pipe.arg(*arg);
                    }
                    if let Some((n, timeout)) = replicas {
                        pipe.cmd("WAIT").arg(n).arg(timeout.as_millis() as u64);
                    }
                    pipe
                };
                // Without WAIT, a single command; with it, one pipeline so that
                // WAIT runs on the connection that wrote.
                let query = |conn: &mut Conn| {
                    let mut conn = conn.clone();
                    let pipeline = pipeline();
                    async move {
                        if replicas.is_some() {
                            pipeline.query_async::<Vec<Value>>(&mut conn).await
                        } else {
                            let mut cmd = redis::cmd("EVALSHA");
                            cmd.arg(script.get_hash()).arg(1).arg(key);
                            for arg in args {
                                cmd.arg(*arg);
                            }
                            cmd.query_async::<Value>(&mut conn).await.map(|v| vec![v])
                        }
                    }
                };
                let values = match query(&mut conn).await {
                    Err(e) if e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) => {
                        script.prepare_invoke().load_async(&mut conn).await?;
                        query(&mut conn).await?
                    }
                    other => other?,
                };
                let mut values = values.into_iter();
                let answer: (i64, u64) =
                    redis::from_redis_value(values.next().unwrap_or(Value::Nil))?;
                let confirmed = match values.next() {
                    Some(v) => Some(redis::from_redis_value::<u64>(v)? as usize),
                    None => None,
                };
                Ok((answer, confirmed))
            })
            .await?;
        if let (Some((required, _)), Some(confirmed)) = (replicas, confirmed)
            && confirmed < required
        {
            if answer.0 == 1 {
                return Err(StoreError::NotReplicated {
                    confirmed,
                    required,
                    version: Version::new(answer.1),
                });
            }
            // A refusal (a conflict, say) from a node that cannot show its
            // replicas in sync may come from a stale master: not an answer.
            return Err(self.unconfirmed(confirmed, required));
        }
        Ok(answer)
    }

    fn unconfirmed(&self, confirmed: usize, required: usize) -> StoreError {
        StoreError::Unavailable {
            source: Box::new(Unconfirmed {
                confirmed,
                required,
            }),
            retry_after: self.retry_after,
        }
    }
}

/// The node that answered had fewer replicas in sync than required: it may
/// be a former master that has not yet learnt of a failover, so what it says
/// cannot be trusted.
#[derive(Debug, thiserror::Error)]
#[error("answer not confirmed: {confirmed} of {required} replicas in sync")]
pub struct Unconfirmed {
    /// Replicas that confirmed.
    pub confirmed: usize,
    /// Replicas required.
    pub required: usize,
}

fn is_unavailable(e: &RedisError) -> bool {
    use redis::ErrorKind as K;
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            K::ClusterConnectionNotFound
                | K::Server(
                    ServerErrorKind::ClusterDown
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::BusyLoading
                        | ServerErrorKind::ReadOnly
                )
        )
        || matches!(e.code(), Some("NOREPLICAS" | "LOADING" | "MASTERDOWN"))
}

fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
        || e.kind() == redis::ErrorKind::Server(ServerErrorKind::ReadOnly)
}

fn corrupt_record() -> StoreError {
    StoreError::Corrupt(Box::new(codec::DecodeError::NotARecord))
}

fn millis(d: Duration) -> Vec<u8> {
    (d.as_millis().max(1) as u64).to_string().into_bytes()
}

impl SessionStore for RedisStore {
    fn create<'a>(&'a self, data: &'a SessionData, expiry: Expiry) -> StoreFuture<'a, SessionId> {
        Box::pin(async move {
            let bytes = codec::encode(data, self.max_size)?;
            let (idle, absolute) = (millis(expiry.idle), millis(expiry.absolute));
            loop {
                let id = SessionId::random();
                let key = self.key(id);
                let result = self
                    .eval(
                        &self.inner.scripts.create,
                        &key,
                        &[&bytes, &idle, &absolute],
                    )
                    .await;
                match result {
                    Ok((1, _)) => return Ok(id),
                    // Taken (by a live session or by anything else): draw again.
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
        })
    }

    fn load(&self, id: SessionId) -> StoreFuture<'_, Option<Versioned<SessionData>>> {
        Box::pin(async move { Ok(self.load_record(id).await?.map(|l| l.session)) })
    }

    fn load_with_ttl(&self, id: SessionId) -> StoreFuture<'_, Option<Loaded>> {
        Box::pin(self.load_record(id))
    }

    fn version(&self, id: SessionId) -> StoreFuture<'_, Option<Version>> {
        Box::pin(async move {
            let key = self.key(id);
            let fields = self
                .fenced_read(|read| {
                    read.cmd("HMGET").arg(&key).arg("v").arg("a");
                })
                .await?;
            let [v, a] = <[Option<Vec<u8>>; 2]>::try_from(fields).map_err(|_| corrupt_record())?;
            if v.is_none() && a.is_none() {
                return Ok(None);
            }
            let version = read::number(v, "v")?;
            read::number(a, "a")?;
            Ok(Some(Version::new(version)))
        })
    }

    fn save<'a>(
        &'a self,
        id: SessionId,
        data: &'a SessionData,
        expected: Version,
    ) -> StoreFuture<'a, Version> {
        Box::pin(async move {
            let bytes = codec::encode(data, self.max_size)?;
            let expected_arg = expected.get().to_string().into_bytes();
            let key = self.key(id);
            match self
                .eval(&self.inner.scripts.save, &key, &[&expected_arg, &bytes])
                .await?
            {
                (1, v) => Ok(Version::new(v)),
                (-1, _) => Err(corrupt_record()),
                (_, actual) => {
                    metrics::counter!("foresight_store_cas_conflicts_total").increment(1);
                    Err(StoreError::Conflict {
                        expected,
                        actual: (actual > 0).then_some(Version::new(actual)),
                    })
                }
            }
        })
    }

    fn delete(&self, id: SessionId, expected: Option<Version>) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let expected_arg = expected.map(|v| v.get().to_string()).unwrap_or_default();
            let key = self.key(id);
            match self
                .eval(&self.inner.scripts.delete, &key, &[expected_arg.as_bytes()])
                .await?
            {
                (1, _) => Ok(true),
                (-1, _) => Err(corrupt_record()),
                (_, actual) => match expected {
                    Some(expected) => Err(StoreError::Conflict {
                        expected,
                        actual: (actual > 0).then_some(Version::new(actual)),
                    }),
                    None => Ok(false),
                },
            }
        })
    }

    fn touch(&self, id: SessionId, idle: Duration) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let key = self.key(id);
            match self
                .eval(&self.inner.scripts.touch, &key, &[&millis(idle)])
                .await?
            {
                (1, _) => Ok(true),
                (-1, _) => Err(corrupt_record()),
                _ => Ok(false),
            }
        })
    }
}

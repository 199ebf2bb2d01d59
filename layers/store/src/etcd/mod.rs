//! `EtcdStore`: sessions in etcd, a Raft-replicated store with
//! linearizable reads and writes.

#[cfg(feature = "cache")]
mod bus;
mod lease;
mod ops;
mod record;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use self::lease::Leases;
use crate::{DEFAULT_SIZE_LIMIT, SessionId, StoreError};

#[cfg(feature = "cache")]
pub use self::bus::EtcdBus;

/// Default prefix of session keys in etcd.
pub const DEFAULT_ETCD_PREFIX: &str = "foresight/session/";

/// Default width of an expiry bucket: one lease per minute of deadlines.
pub const DEFAULT_LEASE_BUCKET: Duration = Duration::from_secs(60);

/// A [`SessionStore`](crate::SessionStore) in etcd (v3 API, over
/// etcd-client).
///
/// # Layout and compare-and-set
/// A session is one key, `<prefix><id>`, whose value holds the session
/// version, its deadlines and its data (a format byte, four numbers, then
/// MessagePack). Every write is one etcd transaction that compares the
/// key's `mod_revision` with the one the store read, and writes only if it
/// is unchanged; otherwise the transaction returns the current value in the
/// same round trip. The session [`Version`](crate::Version) counts the
/// saves as the trait requires (1, 2, 3…) and is stored with the data, so
/// a touch (a write in etcd, which changes the revision) does not change
/// it; the revision is what makes the write atomic. A save is thus a read
/// and one transaction: two round trips, each a Raft-consistent operation.
///
/// # Expiry: one lease per bucket
/// etcd expires keys with leases. Granting one per session would make the
/// lease count grow with the sessions, so deadlines are grouped in buckets
/// of [`with_lease_bucket`](Self::with_lease_bucket) (default 1 min): all
/// keys whose deadline falls in one bucket share one lease, granted to
/// outlive the bucket's end. This store holds at most one lease per bucket
/// between now and the farthest deadline (with the default 12 h absolute
/// lifetime and 1 min buckets: at most 721), however many sessions there
/// are.
///
/// Precision: a session is *logically* expired at its exact deadline (the
/// deadlines are in the record, and every read checks them against this
/// instance's wall clock), so expiry is exact up to clock differences
/// between instances. The *key* is removed by etcd when its bucket's lease
/// runs out: between 0 and one bucket width (plus a second) after the
/// deadline, later if etcd's leader changes meanwhile (a new leader
/// extends leases). An expired session is never returned in between.
///
/// # Reads
/// Reads are linearizable by default: etcd confirms with a quorum that the
/// member answering is current, so a read returns every write acknowledged
/// before it, whichever member answers. [`with_serializable_reads`](Self::with_serializable_reads)
/// answers from the member's local state instead: faster, and still never
/// a torn record, but possibly behind the latest writes. Writes are always
/// linearizable.
///
/// # Connections and failures
/// The client balances over every endpoint given and reconnects by itself;
/// a member that is down is skipped. Every operation is bounded by a
/// timeout (default 2 s). An unreachable cluster, a timeout, or a cluster
/// without a leader is [`StoreError::Unavailable`] (for a write: outcome
/// unknown) with the etcd error as its source; an undecodable value is
/// [`StoreError::Corrupt`] and is never overwritten.
///
/// ```no_run
/// use std::time::Duration;
/// use foresight_store::{EtcdStore, SessionStore};
///
/// # async fn demo() -> Result<(), foresight_store::StoreError> {
/// let store = EtcdStore::connect(["http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"])
///     .await?
///     .with_key_prefix("app/session/")
///     .with_lease_bucket(Duration::from_secs(30));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    endpoints: Arc<[String]>,
    prefix: Arc<str>,
    leases: Arc<Leases>,
    serializable: bool,
    op_timeout: Duration,
    retry_after: Duration,
    max_size: usize,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("lease_bucket", &self.leases.width())
            .field("serializable", &self.serializable)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

/// A failure of the etcd client, in the source chain of a [`StoreError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    /// The client reported an error (transport, gRPC status, …).
    #[error("etcd request failed")]
    Client(#[source] etcd_client::Error),
    /// The operation did not finish within the store's timeout.
    #[error("etcd request timed out after {0:?}")]
    Timeout(Duration),
    /// etcd answered something this store never asks for.
    #[error("unexpected etcd response: {0}")]
    Unexpected(&'static str),
}

impl EtcdStore {
    /// Connects to an etcd cluster through any of `endpoints`
    /// (`http://host:port`). Fails only on bad arguments: members that are
    /// down are retried by the client.
    pub async fn connect<I, E>(endpoints: I) -> Result<Self, StoreError>
    where
        I: IntoIterator<Item = E>,
        E: AsRef<str>,
    {
        let endpoints: Vec<String> = endpoints
            .into_iter()
            .map(|e| e.as_ref().to_owned())
            .collect();
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(1))
            // A member that stops answering (frozen, or cut off) is noticed
            // by HTTP/2 pings and its connection dropped.
            .with_keep_alive(Duration::from_millis(500), Duration::from_millis(500))
            .with_keep_alive_while_idle(true)
            // A member cut off from the quorum refuses instead of waiting.
            .with_require_leader(true);
        let client = Client::connect(&endpoints, Some(options))
            .await
            .map_err(|e| StoreError::Backend(Box::new(EtcdError::Client(e))))?;
        Ok(Self {
            client,
            endpoints: endpoints.into(),
            prefix: DEFAULT_ETCD_PREFIX.into(),
            leases: Arc::new(Leases::new(DEFAULT_LEASE_BUCKET)),
            serializable: false,
            op_timeout: Duration::from_secs(2),
            retry_after: Duration::from_secs(1),
            max_size: DEFAULT_SIZE_LIMIT,
        })
    }

    /// Prefix of session keys (default [`DEFAULT_ETCD_PREFIX`]). Keep it to
    /// sessions alone: the invalidation bus watches every key under it.
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    /// Width of an expiry bucket (default [`DEFAULT_LEASE_BUCKET`], at
    /// least 1 s): fewer, longer-lived leases for a wider bucket, keys
    /// removed later after their deadline. Starts a fresh set of leases.
    #[must_use]
    pub fn with_lease_bucket(mut self, width: Duration) -> Self {
        self.leases = Arc::new(Leases::new(width));
        self
    }

    /// Answers reads from the member's local state instead of confirming
    /// with a quorum (default false: linearizable). A read may then miss
    /// writes acknowledged just before it.
    #[must_use]
    pub fn with_serializable_reads(mut self, on: bool) -> Self {
        self.serializable = on;
        self
    }

    /// Upper bound of one operation (default 2 s).
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

    /// Largest stored value accepted, in bytes (default 64 KiB).
    #[must_use]
    pub fn with_max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// The etcd key of a session.
    pub fn key(&self, id: SessionId) -> String {
        format!("{}{id}", self.prefix)
    }

    /// The width of an expiry bucket.
    pub fn lease_bucket(&self) -> Duration {
        self.leases.width()
    }

    /// How many bucket leases this store holds now.
    pub async fn lease_count(&self) -> usize {
        self.leases.len().await
    }

    /// Runs `op` with a clone of the client, within the timeout, mapping
    /// failures.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        match tokio::time::timeout(self.op_timeout, op(self.client.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.map_error(e)),
            Err(_) => Err(self.unavailable(EtcdError::Timeout(self.op_timeout))),
        }
        .inspect_err(|e| {
            if e.is_unavailable() {
                metrics::counter!("foresight_store_unavailable_total").increment(1);
            }
        })
    }

    fn unavailable(&self, e: EtcdError) -> StoreError {
        StoreError::Unavailable {
            source: Box::new(e),
            retry_after: self.retry_after,
        }
    }

    fn map_error(&self, e: etcd_client::Error) -> StoreError {
        use etcd_client::Error as E;
        use tonic::Code;
        let unavailable = match &e {
            E::GRpcStatus(status) => matches!(
                status.code(),
                Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::Cancelled
                    | Code::Aborted
                    | Code::Unknown
                    | Code::ResourceExhausted
            ),
            E::TransportError(_) | E::IoError(_) | E::WatchError(_) => true,
            _ => false,
        };
        if unavailable {
            self.unavailable(EtcdError::Client(e))
        } else {
            StoreError::Backend(Box::new(EtcdError::Client(e)))
        }
    }
}

/// Whether `e` says that a lease the store used is gone.
fn lease_not_found(e: &StoreError) -> bool {
    let StoreError::Backend(source) = e else {
        return false;
    };
    matches!(
        source.downcast_ref::<EtcdError>(),
        Some(EtcdError::Client(etcd_client::Error::GRpcStatus(status)))
            if status.code() == tonic::Code::NotFound
    )
}

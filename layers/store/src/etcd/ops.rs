//! The `SessionStore` operations of `EtcdStore`: a read, then one
//! transaction guarded by the key's `mod_revision`, which hands back the
//! current value when it loses.

use std::time::Duration;

use etcd_client::{
    Compare, CompareOp, GetOptions, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse,
};

use super::record::{self, Header, now_millis};
use super::{EtcdError, EtcdStore, lease_not_found};
use crate::store::StoreFuture;
use crate::{Expiry, Loaded, SessionData, SessionId, SessionStore, StoreError, Version, Versioned};

/// A live record as read from etcd.
struct Current {
    mod_revision: i64,
    header: Header,
    value: Vec<u8>,
}

/// What a guarded write does when its guard holds.
enum Write<'a> {
    Put { header: Header, data: &'a [u8] },
    Delete,
}

impl Current {
    /// The record of `kv`, `None` if it expired by `now`.
    fn of(kv: KeyValue, now: u64) -> Result<Option<Self>, StoreError> {
        let (header, _) = record::decode_header(kv.value())?;
        if header.time_left(now).is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            mod_revision: kv.mod_revision(),
            header,
            value: kv.into_key_value().1,
        }))
    }

    fn data(&self, limit: usize) -> Result<SessionData, StoreError> {
        let (_, data) = record::decode_header(&self.value)?;
        record::decode_data(data, limit)
    }
}

impl EtcdStore {
    /// The live record under `key`, read linearizably unless serializable
    /// reads were chosen.
    async fn read(&self, key: &str) -> Result<Option<Current>, StoreError> {
        let options = self
            .serializable
            .then(|| GetOptions::new().with_serializable());
        let kvs = self
            .run(|mut client| async move { client.get(key, options).await })
            .await?
            .take_kvs();
        match kvs.into_iter().next() {
            Some(kv) => Current::of(kv, now_millis()),
            None => Ok(None),
        }
    }

    /// The lease for a key expiring at `deadline` (Unix ms).
    async fn lease_for(&self, deadline: u64) -> Result<(super::lease::Bucket, i64), StoreError> {
        let now = now_millis();
        let bucket = self.leases.bucket(deadline, now);
        let id = self
            .leases
            .lease(bucket, now, |ttl| async move {
                self.run(|mut client| async move { client.lease_grant(ttl, None).await })
                    .await
                    .map(|granted| granted.id())
            })
            .await?;
        Ok((bucket, id))
    }

    /// One transaction: `write` if the key is still at `mod_revision` (0:
    /// absent), otherwise read it. `Ok(None)` when written, else the
    /// current record (`Some(None)`: none, or expired).
    async fn guarded(
        &self,
        key: &str,
        mod_revision: i64,
        write: Write<'_>,
    ) -> Result<Option<Option<Current>>, StoreError> {
        let mut retried_lease = false;
        loop {
            let (op, bucket) = match &write {
                Write::Put { header, data } => {
                    let (bucket, lease) = self.lease_for(header.deadline()).await?;
                    let value = record::encode(header, data);
                    let options = PutOptions::new().with_lease(lease);
                    (TxnOp::put(key, value, Some(options)), Some(bucket))
                }
                Write::Delete => (TxnOp::delete(key, None), None),
            };
            let txn = Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, mod_revision)])
                .and_then([op])
                .or_else([TxnOp::get(key, None)]);
            let answer = self
                .run(|mut client| async move { client.txn(txn).await })
                .await;
            let answer = match (answer, bucket) {
                (Err(e), Some(bucket)) if lease_not_found(&e) && !retried_lease => {
                    // The bucket's lease is gone (revoked by hand, or this
                    // instance's clock jumped): grant it again, once.
                    self.leases.forget(bucket).await;
                    retried_lease = true;
                    continue;
                }
                (answer, _) => answer?,
            };
            if answer.succeeded() {
                return Ok(None);
            }
            let kv = answer.op_responses().into_iter().find_map(|r| match r {
                TxnOpResponse::Get(mut get) => Some(get.take_kvs()),
                _ => None,
            });
            let Some(kvs) = kv else {
                return Err(StoreError::Backend(Box::new(EtcdError::Unexpected(
                    "a failed transaction without its read",
                ))));
            };
            return match kvs.into_iter().next() {
                Some(kv) => Ok(Some(Current::of(kv, now_millis())?)),
                None => Ok(Some(None)),
            };
        }
    }

    async fn load_record(&self, id: SessionId) -> Result<Option<Loaded>, StoreError> {
        let Some(current) = self.read(&self.key(id)).await? else {
            return Ok(None);
        };
        let data = current.data(self.max_size)?;
        Ok(Some(Loaded {
            session: Versioned::new(data, current.header.version),
            ttl: current.header.time_left(now_millis()),
        }))
    }
}

impl SessionStore for EtcdStore {
    fn create<'a>(&'a self, data: &'a SessionData, expiry: Expiry) -> StoreFuture<'a, SessionId> {
        Box::pin(async move {
            let data = record::encode_data(data, self.max_size)?;
            loop {
                let id = SessionId::random();
                let now = now_millis();
                let header = Header {
                    version: Version::FIRST,
                    absolute: now.saturating_add(expiry.absolute.as_millis() as u64),
                    idle_deadline: 0,
                    idle: 0,
                }
                .restarted(now, expiry.idle.as_millis() as u64);
                let write = Write::Put {
                    header,
                    data: &data,
                };
                // Revision 0: only if the key does not exist.
                match self.guarded(&self.key(id), 0, write).await? {
                    None => return Ok(id),
                    // Taken: draw again.
                    Some(_) => continue,
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
            Ok(self
                .read(&self.key(id))
                .await?
                .map(|current| current.header.version))
        })
    }

    fn save<'a>(
        &'a self,
        id: SessionId,
        data: &'a SessionData,
        expected: Version,
    ) -> StoreFuture<'a, Version> {
        Box::pin(async move {
            let data = record::encode_data(data, self.max_size)?;
            let key = self.key(id);
            let mut current = self.read(&key).await?;
            loop {
                let Some(seen) = current else {
                    return Err(conflict(expected, None));
                };
                if seen.header.version != expected {
                    return Err(conflict(expected, Some(seen.header.version)));
                }
                // A record that cannot be decoded is never overwritten.
                seen.data(self.max_size)?;
                let header = Header {
                    version: expected.next(),
                    ..seen.header.restarted(now_millis(), seen.header.idle)
                };
                let write = Write::Put {
                    header,
                    data: &data,
                };
                match self.guarded(&key, seen.mod_revision, write).await? {
                    None => return Ok(header.version),
                    // Touched (or written) since the read: look again.
                    Some(now) => current = now,
                }
            }
        })
    }

    fn delete(&self, id: SessionId, expected: Option<Version>) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let key = self.key(id);
            let mut current = self.read(&key).await?;
            loop {
                let Some(seen) = current else {
                    return match expected {
                        Some(expected) => Err(conflict(expected, None)),
                        None => Ok(false),
                    };
                };
                if let Some(expected) = expected
                    && seen.header.version != expected
                {
                    return Err(conflict(expected, Some(seen.header.version)));
                }
                match self.guarded(&key, seen.mod_revision, Write::Delete).await? {
                    None => return Ok(true),
                    Some(now) => current = now,
                }
            }
        })
    }

    fn touch(&self, id: SessionId, idle: Duration) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let key = self.key(id);
            let mut current = self.read(&key).await?;
            loop {
                let Some(seen) = current else {
                    return Ok(false);
                };
                let header = seen.header.restarted(now_millis(), idle.as_millis() as u64);
                let (_, data) = record::decode_header(&seen.value)?;
                let write = Write::Put { header, data };
                match self.guarded(&key, seen.mod_revision, write).await? {
                    None => return Ok(true),
                    Some(now) => current = now,
                }
            }
        })
    }
}

fn conflict(expected: Version, actual: Option<Version>) -> StoreError {
    metrics::counter!("foresight_store_cas_conflicts_total").increment(1);
    StoreError::Conflict { expected, actual }
}

//! The read path of `RedisStore`: fenced pipelines of read commands, and
//! decoding a record with its time to live.

use std::time::Duration;

use deadpool_redis::redis::{self, Value};

use super::{RedisStore, codec, corrupt_record};
use crate::{Loaded, SessionId, StoreError, Version, Versioned};

impl RedisStore {
    /// Runs the read commands `add` puts in a pipeline (their answers are
    /// flattened into one array), fenced by `WAIT` when replicas are
    /// required: the answer of a node that cannot show its replicas in sync
    /// is [`Unconfirmed`].
    pub(super) async fn fenced_read(
        &self,
        add: impl FnOnce(&mut redis::Pipeline),
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let replicas = self.replicas;
        let mut pipe = redis::pipe();
        add(&mut pipe);
        // With replicas required, a read is fenced like a write: `WAIT` on
        // the same connection shows that the node still has its replicas,
        // which a former master back from a crash (and not yet demoted) has
        // not.
        if let Some((n, timeout)) = replicas {
            pipe.cmd("WAIT").arg(n).arg(timeout.as_millis() as u64);
        }
        // A command's error (WRONGTYPE on a foreign key, say) is returned
        // as itself, not as a pipeline failure, so that it maps like the
        // error of a single command.
        pipe.ignore_errors();
        let mut values: Vec<Value> = self
            .run(|mut conn| async move {
                let values: Vec<Value> = pipe.query_async(&mut conn).await?;
                values.into_iter().map(Value::extract_error).collect()
            })
            .await?;
        if let Some((required, _)) = replicas {
            let confirmed = values.pop().unwrap_or(Value::Nil);
            let confirmed = redis::from_redis_value::<u64>(confirmed)
                .map_err(|e| StoreError::Backend(Box::new(e)))?
                as usize;
            if confirmed < required {
                return Err(self.unconfirmed(confirmed, required));
            }
        }
        let mut fields = Vec::new();
        for value in values {
            match value {
                Value::Array(items) => {
                    for item in items {
                        fields.push(
                            redis::from_redis_value::<Option<Vec<u8>>>(item)
                                .map_err(|_| corrupt_record())?,
                        );
                    }
                }
                Value::Int(n) => fields.push(Some(n.to_string().into_bytes())),
                other => fields.push(
                    redis::from_redis_value::<Option<Vec<u8>>>(other)
                        .map_err(|_| corrupt_record())?,
                ),
            }
        }
        Ok(fields)
    }

    /// One record with its time to live: `HMGET` and `PTTL` in one round
    /// trip (the key's expiry is the earlier of its idle and absolute
    /// deadlines, set by every script).
    pub(super) async fn load_record(&self, id: SessionId) -> Result<Option<Loaded>, StoreError> {
        let key = self.key(id);
        let fields = self
            .fenced_read(|read| {
                read.cmd("HMGET")
                    .arg(&key)
                    .arg("v")
                    .arg("a")
                    .arg("i")
                    .arg("d");
                read.cmd("PTTL").arg(&key);
            })
            .await?;
        let [v, a, i, d, pttl] =
            <[Option<Vec<u8>>; 5]>::try_from(fields).map_err(|_| corrupt_record())?;
        if v.is_none() && a.is_none() && i.is_none() && d.is_none() {
            return Ok(None);
        }
        let version = number(v, "v")?;
        number(a, "a")?;
        number(i, "i")?;
        let data = codec::decode(&d.unwrap_or_default(), self.max_size)?;
        // PTTL: milliseconds left, -1 without an expiry, -2 without a key.
        let ttl = pttl
            .and_then(|b| std::str::from_utf8(&b).ok()?.parse::<i64>().ok())
            .filter(|ms| *ms >= 0)
            .map(|ms| Duration::from_millis(ms as u64));
        Ok(Some(Loaded {
            session: Versioned::new(data, Version::new(version)),
            ttl,
        }))
    }
}

pub(super) fn number(field: Option<Vec<u8>>, name: &'static str) -> Result<u64, StoreError> {
    field
        .and_then(|b| std::str::from_utf8(&b).ok()?.parse::<u64>().ok())
        .ok_or(StoreError::Corrupt(Box::new(codec::DecodeError::BadField(
            name,
        ))))
}

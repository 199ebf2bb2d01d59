//! Restarting the idle timeout of sessions that are only read.
//!
//! A read does not write, so it would not restart the idle timeout; the
//! layer touches such a session at most once per interval per instance,
//! remembered here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use foresight_store::SessionId;
use tokio::time::Instant;

const SHARDS: usize = 16;
/// Entries kept per shard before the oldest half is forgotten.
const SHARD_CAPACITY: usize = 8192;

#[derive(Debug, Default)]
pub(crate) struct TouchLog {
    shards: [Mutex<HashMap<SessionId, Instant>>; SHARDS],
}

impl TouchLog {
    /// Whether `id` is due for a touch now, recording it as touched if so.
    pub(crate) fn due(&self, id: SessionId, interval: Duration) -> bool {
        let now = Instant::now();
        let shard = &self.shards[(id.as_u128() % SHARDS as u128) as usize];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&id) {
            Some(&last) if now.duration_since(last) < interval => false,
            _ => {
                if map.len() >= SHARD_CAPACITY {
                    // Forgetting an entry only costs an early touch.
                    map.retain(|_, last| now.duration_since(*last) < interval);
                    if map.len() >= SHARD_CAPACITY {
                        map.clear();
                    }
                }
                map.insert(id, now);
                true
            }
        }
    }

    /// Records that `id` was just written (which restarts its timeout).
    pub(crate) fn written(&self, id: SessionId) {
        let shard = &self.shards[(id.as_u128() % SHARDS as u128) as usize];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() < SHARD_CAPACITY {
            map.insert(id, Instant::now());
        }
    }
}

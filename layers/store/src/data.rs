//! The session payload: an ordered map of string keys to serde values.

use std::collections::BTreeMap;
use std::io;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Default size limit of a session's data: 64 KiB.
pub const DEFAULT_SIZE_LIMIT: usize = 64 * 1024;

/// Data of a session: string keys, ordered, to JSON-like values, with a size
/// limit.
///
/// The size counted is the length of each key plus the length of its value
/// written as JSON; it is an upper bound of the encoded size in any store
/// (the Redis store's MessagePack encoding is smaller). An insert that would
/// exceed the limit fails with [`DataError::TooLarge`] and leaves the data
/// unchanged.
///
/// ```
/// use foresight_store::SessionData;
///
/// let mut data = SessionData::new();
/// data.insert("user", &42u64).unwrap();
/// assert_eq!(data.get::<u64>("user").unwrap(), Some(42));
/// assert_eq!(data.get::<u64>("missing").unwrap(), None);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SessionData {
    entries: BTreeMap<String, Value>,
    size: usize,
    limit: usize,
}

/// Why a [`SessionData`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The data would exceed its size limit.
    #[error("session data of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size the data would have had.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A value could not be converted to or from its Rust type.
    #[error("session value for key `{key}` has an unexpected shape")]
    Serde {
        /// The key.
        key: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl Default for SessionData {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionData {
    /// Empty data with the default limit ([`DEFAULT_SIZE_LIMIT`]).
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_SIZE_LIMIT)
    }

    /// Empty data with a size limit in bytes.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            size: 0,
            limit,
        }
    }

    /// Builds data from entries, checking the limit.
    pub fn from_entries(entries: BTreeMap<String, Value>, limit: usize) -> Result<Self, DataError> {
        let size = entries.iter().map(|(k, v)| entry_size(k, v)).sum();
        if size > limit {
            return Err(DataError::TooLarge { size, limit });
        }
        Ok(Self {
            entries,
            size,
            limit,
        })
    }

    /// The entries.
    pub fn entries(&self) -> &BTreeMap<String, Value> {
        &self.entries
    }

    /// Gives up the entries.
    pub fn into_entries(self) -> BTreeMap<String, Value> {
        self.entries
    }

    /// Counted size in bytes (see the type docs).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Size limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Changes the size limit; fails if the current data exceeds the new one.
    pub fn set_limit(&mut self, limit: usize) -> Result<(), DataError> {
        if self.size > limit {
            return Err(DataError::TooLarge {
                size: self.size,
                limit,
            });
        }
        self.limit = limit;
        Ok(())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The raw value under `key`.
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    /// The value under `key`, converted to `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DataError> {
        match self.entries.get(key) {
            None => Ok(None),
            Some(v) => T::deserialize(v)
                .map(Some)
                .map_err(|source| DataError::Serde {
                    key: key.to_owned(),
                    source,
                }),
        }
    }

    /// Stores `value` under `key`, returning the previous raw value.
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<Option<Value>, DataError> {
        let key = key.into();
        let value = serde_json::to_value(value).map_err(|source| DataError::Serde {
            key: key.clone(),
            source,
        })?;
        self.insert_value(key, value)
    }

    /// Stores a raw value under `key`, returning the previous one.
    pub fn insert_value(
        &mut self,
        key: impl Into<String>,
        value: Value,
    ) -> Result<Option<Value>, DataError> {
        let key = key.into();
        let old = self.entries.get(&key).map_or(0, |v| entry_size(&key, v));
        let size = self.size - old + entry_size(&key, &value);
        if size > self.limit {
            return Err(DataError::TooLarge {
                size,
                limit: self.limit,
            });
        }
        self.size = size;
        Ok(self.entries.insert(key, value))
    }

    /// Removes `key`, returning its raw value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let value = self.entries.remove(key)?;
        self.size -= entry_size(key, &value);
        Some(value)
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.size = 0;
    }

    /// Iterates over the entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.entries.iter()
    }
}

impl Serialize for SessionData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SessionData {
    /// Deserialises with the default limit; use [`SessionData::from_entries`]
    /// for another one.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = BTreeMap::<String, Value>::deserialize(deserializer)?;
        Self::from_entries(entries, DEFAULT_SIZE_LIMIT).map_err(serde::de::Error::custom)
    }
}

fn entry_size(key: &str, value: &Value) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to an infallible writer cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    key.len() + count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_round_trip() {
        let mut data = SessionData::new();
        data.insert("n", &7i32).unwrap();
        data.insert("s", "text").unwrap();
        assert_eq!(data.get::<i32>("n").unwrap(), Some(7));
        assert_eq!(data.get::<String>("s").unwrap().as_deref(), Some("text"));
        assert!(matches!(data.get::<i32>("s"), Err(DataError::Serde { .. })));
    }

    #[test]
    fn size_is_tracked_across_replace_and_remove() {
        let mut data = SessionData::new();
        data.insert("k", &"aaaa").unwrap();
        let first = data.size();
        data.insert("k", &"aaaaaaaa").unwrap();
        assert_eq!(data.size(), first + 4);
        data.remove("k");
        assert_eq!(data.size(), 0);
    }

    #[test]
    fn oversize_insert_is_refused_and_changes_nothing() {
        let mut data = SessionData::with_limit(32);
        data.insert("a", &"x").unwrap();
        let before = data.clone();
        let err = data.insert("b", &"y".repeat(64)).unwrap_err();
        assert!(matches!(err, DataError::TooLarge { limit: 32, .. }));
        assert_eq!(data, before);
    }

    #[test]
    fn default_limit_is_64_kib() {
        let mut data = SessionData::new();
        assert!(data.insert("big", &"z".repeat(70 * 1024)).is_err());
        assert!(data.insert("ok", &"z".repeat(60 * 1024)).is_ok());
    }
}

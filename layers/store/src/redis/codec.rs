//! Encoding of session data in Redis.
//!
//! The data field is one format byte (`1`) followed by the entries as
//! MessagePack (`rmp-serde`). MessagePack keeps every JSON value type,
//! needs no schema, and is smaller and faster to parse than JSON (integers
//! and short strings take one or two bytes of framing), which matters
//! because each request of a session reads the whole record.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{SessionData, StoreError};

const FORMAT_MSGPACK: u8 = 1;

/// Why a stored record cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("record is not a session hash")]
    NotARecord,
    #[error("record field `{0}` is missing or not a number")]
    BadField(&'static str),
    #[error("unknown data format {0}")]
    UnknownFormat(u8),
    #[error("data is not valid MessagePack")]
    MessagePack(#[source] rmp_serde::decode::Error),
}

pub(crate) fn encode(data: &SessionData, max_size: usize) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_MSGPACK);
    rmp_serde::encode::write(&mut out, data.entries())
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    if out.len() > max_size {
        return Err(StoreError::TooLarge(crate::DataError::TooLarge {
            size: out.len(),
            limit: max_size,
        }));
    }
    Ok(out)
}

pub(crate) fn decode(bytes: &[u8], limit: usize) -> Result<SessionData, StoreError> {
    let corrupt = |e: DecodeError| StoreError::Corrupt(Box::new(e));
    match bytes.split_first() {
        Some((&FORMAT_MSGPACK, rest)) => {
            let entries: BTreeMap<String, Value> =
                rmp_serde::from_slice(rest).map_err(|e| corrupt(DecodeError::MessagePack(e)))?;
            Ok(SessionData::from_entries(entries, limit)?)
        }
        Some((&other, _)) => Err(corrupt(DecodeError::UnknownFormat(other))),
        None => Err(corrupt(DecodeError::UnknownFormat(0))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_value_types() {
        let mut data = SessionData::new();
        data.insert("i", &-3i64).unwrap();
        data.insert("f", &1.5f64).unwrap();
        data.insert("s", "é").unwrap();
        data.insert("l", &vec![Some(1), None]).unwrap();
        data.insert("b", &true).unwrap();
        let bytes = encode(&data, usize::MAX).unwrap();
        assert_eq!(decode(&bytes, 1 << 16).unwrap(), data);
        assert!(bytes.len() < serde_json::to_vec(&data).unwrap().len());
    }

    #[test]
    fn garbage_is_corrupt() {
        for bytes in [&b""[..], b"\x01\xc1", b"\x07abc", b"{\"json\":1}"] {
            assert!(matches!(
                decode(bytes, 1 << 16),
                Err(StoreError::Corrupt(_))
            ));
        }
    }
}

//! The value stored under a session's key in etcd.
//!
//! One format byte (`1`), four big-endian `u64`s (the session version, the
//! absolute deadline and the idle deadline in Unix milliseconds, the idle
//! timeout in milliseconds), then the entries as MessagePack, as in Redis:
//! it keeps every JSON value type without a schema and parses fast.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::{DataError, SessionData, StoreError, Version};

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 4 * 8;

/// Why a stored value cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("value too short for a session record ({0} bytes)")]
    Short(usize),
    #[error("unknown record format {0}")]
    UnknownFormat(u8),
    #[error("data is not valid MessagePack")]
    MessagePack(#[source] rmp_serde::decode::Error),
}

/// Version and deadlines of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: Version,
    /// Absolute deadline, Unix milliseconds.
    pub(crate) absolute: u64,
    /// Idle deadline (last save or touch plus `idle`), Unix milliseconds.
    pub(crate) idle_deadline: u64,
    /// Idle timeout, milliseconds.
    pub(crate) idle: u64,
}

impl Header {
    /// The earlier of the two deadlines, Unix milliseconds.
    pub(crate) fn deadline(&self) -> u64 {
        self.absolute.min(self.idle_deadline)
    }

    /// Time left at `now` (Unix milliseconds); `None` once expired.
    pub(crate) fn time_left(&self, now: u64) -> Option<Duration> {
        let left = self.deadline().checked_sub(now)?;
        (left > 0).then(|| Duration::from_millis(left))
    }

    /// The same session after a save or touch at `now`: the idle timer
    /// restarts, capped by the absolute deadline.
    pub(crate) fn restarted(self, now: u64, idle: u64) -> Self {
        Self {
            idle_deadline: now.saturating_add(idle),
            idle,
            ..self
        }
    }
}

/// The current wall-clock time in Unix milliseconds.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The entries as MessagePack, checked against `max_size` once the header
/// is counted.
pub(crate) fn encode_data(data: &SessionData, max_size: usize) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(64);
    rmp_serde::encode::write(&mut out, data.entries())
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
    if out.len() + HEADER > max_size {
        return Err(StoreError::TooLarge(DataError::TooLarge {
            size: out.len() + HEADER,
            limit: max_size,
        }));
    }
    Ok(out)
}

/// A record from its header and encoded entries.
pub(crate) fn encode(header: &Header, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + data.len());
    out.push(FORMAT);
    for n in [
        header.version.get(),
        header.absolute,
        header.idle_deadline,
        header.idle,
    ] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// The header of a record, and the encoded entries after it.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<(Header, &[u8]), StoreError> {
    let corrupt = |e: DecodeError| StoreError::Corrupt(Box::new(e));
    if bytes.len() < HEADER {
        return Err(corrupt(DecodeError::Short(bytes.len())));
    }
    if bytes[0] != FORMAT {
        return Err(corrupt(DecodeError::UnknownFormat(bytes[0])));
    }
    let n = |i: usize| {
        let at = 1 + i * 8;
        u64::from_be_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
    };
    let header = Header {
        version: Version::new(n(0)),
        absolute: n(1),
        idle_deadline: n(2),
        idle: n(3),
    };
    Ok((header, &bytes[HEADER..]))
}

/// The entries of a record.
pub(crate) fn decode_data(bytes: &[u8], limit: usize) -> Result<SessionData, StoreError> {
    let entries: BTreeMap<String, Value> = rmp_serde::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(Box::new(DecodeError::MessagePack(e))))?;
    Ok(SessionData::from_entries(entries, limit)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut data = SessionData::new();
        data.insert("s", "é").unwrap();
        data.insert("l", &vec![Some(1.5), None]).unwrap();
        let header = Header {
            version: Version::new(7),
            absolute: 10_000,
            idle_deadline: 4_000,
            idle: 1_000,
        };
        let bytes = encode(&header, &encode_data(&data, 1 << 16).unwrap());
        let (back, rest) = decode_header(&bytes).unwrap();
        assert_eq!(back, header);
        assert_eq!(decode_data(rest, 1 << 16).unwrap(), data);
        assert_eq!(back.time_left(3_000), Some(Duration::from_secs(1)));
        assert_eq!(back.time_left(4_000), None);
        let touched = back.restarted(9_500, 1_000);
        assert_eq!(
            touched.deadline(),
            10_000,
            "capped by the absolute deadline"
        );
    }

    #[test]
    fn garbage_is_corrupt() {
        for bytes in [&b""[..], &[2u8; 40][..], b"\x01short"] {
            assert!(matches!(decode_header(bytes), Err(StoreError::Corrupt(_))));
        }
        let mut bytes = encode(
            &Header {
                version: Version::FIRST,
                absolute: 1,
                idle_deadline: 1,
                idle: 1,
            },
            b"\xc1",
        );
        let (_, rest) = decode_header(&bytes).unwrap();
        assert!(matches!(
            decode_data(rest, 1 << 16),
            Err(StoreError::Corrupt(_))
        ));
        bytes.truncate(3);
        assert!(decode_header(&bytes).is_err());
    }
}

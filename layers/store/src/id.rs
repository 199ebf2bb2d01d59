//! Session identifiers.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;

/// Identifier of a session: 128 bits from a cryptographically secure
/// generator, written as 32 lowercase hexadecimal digits.
///
/// Only a store issues ids ([`SessionStore::create`](crate::SessionStore::create));
/// parsing one from a client only checks its shape, and a store that never
/// issued it answers `None` on load, so an id chosen by a client is never
/// adopted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u128);

impl SessionId {
    /// A fresh random id from the thread-local CSPRNG (`rand::rng()`,
    /// ChaCha12 seeded and periodically reseeded from the operating system).
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Self(u128::from_be_bytes(bytes))
    }

    /// The id as a number, e.g. to derive a key.
    pub fn as_u128(&self) -> u128 {
        self.0
    }

    /// Builds an id from its numeric value. Meant for tests and for stores.
    pub fn from_u128(value: u128) -> Self {
        Self(value)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ids are bearer secrets: only a prefix goes to logs.
        write!(f, "SessionId({:08x}…)", (self.0 >> 96) as u32)
    }
}

/// An id whose text is not 32 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed session id")]
pub struct ParseSessionIdError(());

impl FromStr for SessionId {
    type Err = ParseSessionIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseSessionIdError(()));
        }
        u128::from_str_radix(s, 16)
            .map(Self)
            .map_err(|_| ParseSessionIdError(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = SessionId::random();
        assert_eq!(id.to_string().parse::<SessionId>(), Ok(id));
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "abc",
            &"g".repeat(32),
            &"0".repeat(33),
            "+0000000000000000000000000000001",
        ] {
            assert!(bad.parse::<SessionId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_does_not_leak_the_id() {
        let id = SessionId::from_u128(u128::MAX);
        assert!(!format!("{id:?}").contains(&id.to_string()));
    }
}

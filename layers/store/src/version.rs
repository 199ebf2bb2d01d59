//! Versions for compare-and-set.

use std::fmt;

/// Version of a stored session. A new session has version 1 and every
/// successful save increments it by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(u64);

impl Version {
    /// Version of a freshly created session.
    pub const FIRST: Version = Version(1);

    /// Wraps a raw version number.
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version a successful save after this one produces.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// A value together with the version it was read at.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its version; pass it to [`SessionStore::save`](crate::SessionStore::save).
    pub version: Version,
}

impl<T> Versioned<T> {
    /// Pairs a value with its version.
    pub fn new(value: T, version: Version) -> Self {
        Self { value, version }
    }
}

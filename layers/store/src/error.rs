//! Errors of session stores.

use std::time::Duration;

use crate::{DataError, Version};

/// Type-erased cause of a store failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a [`SessionStore`](crate::SessionStore) operation failed.
///
/// Every variant keeps its cause in the source chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Compare-and-set lost: the stored version is not the expected one, or
    /// the session no longer exists (`actual` is `None`). Nothing was written.
    #[error("session version conflict: expected {expected}, found {}", actual.map_or_else(|| "no session".to_owned(), |v| v.to_string()))]
    Conflict {
        /// The version the writer expected.
        expected: Version,
        /// The stored version, if the session still exists.
        actual: Option<Version>,
    },
    /// The data is larger than the store accepts.
    #[error("session data too large")]
    TooLarge(#[source] DataError),
    /// The stored record cannot be decoded. It is left untouched.
    #[error("stored session record cannot be decoded")]
    Corrupt(#[source] BoxError),
    /// The backend cannot be reached or did not answer in time. For a write,
    /// the outcome is unknown: it may or may not have been applied.
    #[error("session store unavailable")]
    Unavailable {
        /// The cause.
        #[source]
        source: BoxError,
        /// Suggested delay before retrying.
        retry_after: Duration,
    },
    /// The write was applied on the primary but fewer replicas than required
    /// confirmed it within the timeout; it may be lost on a failover.
    #[error("write confirmed by {confirmed} of {required} required replicas")]
    NotReplicated {
        /// Replicas that confirmed.
        confirmed: usize,
        /// Replicas required.
        required: usize,
        /// The version written on the primary.
        version: Version,
    },
    /// The store holds as many sessions as it may (see
    /// `MemoryStore::with_capacity`); nothing was written. Expired sessions
    /// are swept, so retrying later may succeed.
    #[error("session store full: {capacity} sessions")]
    Full {
        /// Most sessions the store holds.
        capacity: usize,
        /// Suggested delay before retrying.
        retry_after: Duration,
    },
    /// Any other backend failure.
    #[error("session store backend error")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// Whether this is a compare-and-set conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// Whether the backend was unreachable.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    /// Builds [`StoreError::Unavailable`] with the default one-second hint.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable {
            source: source.into(),
            retry_after: Duration::from_secs(1),
        }
    }
}

impl From<DataError> for StoreError {
    fn from(err: DataError) -> Self {
        match err {
            DataError::TooLarge { .. } => StoreError::TooLarge(err),
            DataError::Serde { .. } => StoreError::Corrupt(Box::new(err)),
        }
    }
}

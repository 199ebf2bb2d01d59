use std::fmt;

use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The identifier a request is routed by: an account id, a session cookie, a
/// JWT subject or a fingerprint.
///
/// Keys are often secrets (session cookies), so `Debug` shows only the length
/// and a short digest.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(Bytes);

impl ClientKey {
    /// A key from static bytes, without copying.
    pub const fn from_static(bytes: &'static [u8]) -> Self {
        Self(Bytes::from_static(bytes))
    }

    /// A key copied from `bytes`.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        Self(Bytes::copy_from_slice(bytes))
    }

    /// A random 128-bit key, for requests routed by
    /// [`MissingKeyPolicy::SpreadRandomly`](super::MissingKeyPolicy).
    pub fn random() -> Self {
        Self(Bytes::copy_from_slice(
            &rand::random::<u128>().to_le_bytes(),
        ))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The 64-bit hash of this key under `seed`, the input of rendezvous
    /// ranking. Routers that share a seed rank every key the same way.
    pub fn hash_with_seed(&self, seed: u64) -> u64 {
        xxh3_64_with_seed(&self.0, seed)
    }
}

impl From<Bytes> for ClientKey {
    fn from(bytes: Bytes) -> Self {
        Self(bytes)
    }
}

impl From<String> for ClientKey {
    fn from(key: String) -> Self {
        Self(Bytes::from(key))
    }
}

impl From<&str> for ClientKey {
    fn from(key: &str) -> Self {
        Self::copy_from_slice(key.as_bytes())
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ClientKey(len={}, digest={:08x})",
            self.0.len(),
            xxh3_64_with_seed(&self.0, 0) >> 32
        )
    }
}

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Keys up to this many bytes are stored inline: no allocation to make one,
/// and cloning is a copy. Account ids, UUIDs (36 bytes as text), ULIDs and
/// 128-bit session ids in base64 or hex all fit.
const INLINE: usize = 38;

/// The identifier a request is routed by: an account id, a session cookie, a
/// JWT subject or a fingerprint.
///
/// A key is made on every request and copied into the request's
/// [`Route`](crate::Route) and into replay and shadow copies, so its
/// representation avoids the allocator: short keys live inline, static keys
/// are borrowed, and only long ones are shared behind an `Arc`. (`Bytes`
/// allocates when a copied buffer is first cloned, and the small-string
/// crates hold UTF-8 only; keys are bytes.)
///
/// Keys are often secrets (session cookies), so `Debug` shows only the length
/// and a short digest.
#[derive(Clone)]
pub struct ClientKey(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static [u8]),
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<[u8]>),
}

impl ClientKey {
    /// A key from static bytes, without copying.
    pub const fn from_static(bytes: &'static [u8]) -> Self {
        Self(Repr::Static(bytes))
    }

    /// A key copied from `bytes`.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE {
            let mut inline = [0; INLINE];
            inline[..bytes.len()].copy_from_slice(bytes);
            Self(Repr::Inline {
                len: bytes.len() as u8,
                bytes: inline,
            })
        } else {
            Self(Repr::Shared(Arc::from(bytes)))
        }
    }

    /// A random 128-bit key, for requests routed by
    /// [`MissingKeyPolicy::SpreadRandomly`](super::MissingKeyPolicy).
    pub fn random() -> Self {
        Self::copy_from_slice(&rand::random::<u128>().to_le_bytes())
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Static(bytes) => bytes,
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Shared(bytes) => bytes,
        }
    }

    /// The 64-bit hash of this key under `seed`, the input of rendezvous
    /// ranking. Routers that share a seed rank every key the same way.
    pub fn hash_with_seed(&self, seed: u64) -> u64 {
        xxh3_64_with_seed(self.as_bytes(), seed)
    }
}

impl PartialEq for ClientKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ClientKey {}

impl Hash for ClientKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl From<Bytes> for ClientKey {
    fn from(bytes: Bytes) -> Self {
        Self::copy_from_slice(&bytes)
    }
}

impl From<String> for ClientKey {
    fn from(key: String) -> Self {
        Self::copy_from_slice(key.as_bytes())
    }
}

impl From<&str> for ClientKey {
    fn from(key: &str) -> Self {
        Self::copy_from_slice(key.as_bytes())
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.as_bytes();
        write!(
            f,
            "ClientKey(len={}, digest={:08x})",
            bytes.len(),
            xxh3_64_with_seed(bytes, 0) >> 32
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_representation_compares_and_hashes_by_its_bytes() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |k: &ClientKey| {
            let mut h = DefaultHasher::new();
            k.hash(&mut h);
            h.finish()
        };
        for text in [
            "",
            "k",
            "exactly-thirty-eight-bytes-long-key-xy",
            &"x".repeat(200),
        ] {
            let copied = ClientKey::from(text);
            let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
            let borrowed = ClientKey::from_static(leaked.as_bytes());
            let cloned = copied.clone();
            assert_eq!(copied.as_bytes(), text.as_bytes());
            assert_eq!(copied, borrowed);
            assert_eq!(copied, cloned);
            assert_eq!(hash(&copied), hash(&borrowed));
            assert_eq!(copied.hash_with_seed(7), borrowed.hash_with_seed(7));
        }
        assert_ne!(ClientKey::from("a"), ClientKey::from("b"));
        assert_ne!(ClientKey::from("a"), ClientKey::from("a\0"));
    }

    #[test]
    fn the_inline_limit_is_a_boundary_not_a_truncation() {
        let at = "y".repeat(INLINE);
        let past = "y".repeat(INLINE + 1);
        assert_eq!(ClientKey::from(at.as_str()).as_bytes().len(), INLINE);
        assert_eq!(ClientKey::from(past.as_str()).as_bytes(), past.as_bytes());
        assert!(matches!(
            ClientKey::from(at.as_str()).0,
            Repr::Inline { .. }
        ));
        assert!(matches!(ClientKey::from(past.as_str()).0, Repr::Shared(_)));
    }
}

//! The client secret of refresh and revoke, compared in constant time.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A client secret, kept only as its SHA-256 digest.
///
/// A presented secret is hashed and the two 32-byte digests are compared
/// with [`subtle::ConstantTimeEq`]: the time taken depends neither on where
/// the first differing byte is nor on the presented secret's length.
/// `Debug` never shows the secret.
#[derive(Clone)]
pub(crate) struct ClientSecret {
    digest: [u8; 32],
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(..)")
    }
}

impl ClientSecret {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self {
            digest: Sha256::digest(secret).into(),
        }
    }

    /// Whether `presented` is the secret.
    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        self.digest.ct_eq(&presented).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_matches() {
        let secret = ClientSecret::new(b"s3cret");
        assert!(secret.matches(b"s3cret"));
        for other in [&b""[..], b"s3cre", b"s3cret ", b"S3cret", b"s3cret\0"] {
            assert!(!secret.matches(other), "{other:?}");
        }
        assert_eq!(format!("{secret:?}"), "ClientSecret(..)");
    }
}

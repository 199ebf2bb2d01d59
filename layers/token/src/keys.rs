//! Signing keys, their rotation with an overlap window, and the key sets
//! verifiers read.
//!
//! A [`SigningKey`] pairs a `kid` with exactly one algorithm: the verifier
//! accepts a token only if its `alg` is the one registered for its `kid`
//! (RFC 8725 §3.1), which rules out algorithm confusion (an HS256 token
//! "signed" with a public key) by construction. A [`KeyRing`] signs with its
//! current key and, after a [`rotate`](KeyRing::rotate), keeps verifying the
//! previous keys until their overlap window closes; its [`jwks`](KeyRing::jwks)
//! document lists the public half of every key still in use.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::clock::SharedClock;
use crate::error::KeyError;

/// Longest accepted `kid`.
pub const MAX_KID_LEN: usize = 64;

/// Whether `kid` is a well-formed key id: 1 to 64 characters of
/// `[A-Za-z0-9_-]`. Anything else (paths, quotes, SQL) is never looked up.
pub fn is_valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The verifying half of a key: its `kid`, its one algorithm and the key.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Arc<str>,
    alg: Algorithm,
    decoding: DecodingKey,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// A key accepting only `alg`.
    pub fn new(kid: &str, alg: Algorithm, decoding: DecodingKey) -> Result<Self, KeyError> {
        if !is_valid_kid(kid) {
            return Err(KeyError::InvalidKid(kid.to_owned()));
        }
        Ok(Self {
            kid: kid.into(),
            alg,
            decoding,
        })
    }

    /// A key from a JWK, which must carry `kid` and `alg`.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        let kid = jwk
            .common
            .key_id
            .as_deref()
            .ok_or(KeyError::IncompleteJwk("kid"))?;
        let alg: Algorithm = jwk
            .common
            .key_algorithm
            .ok_or(KeyError::IncompleteJwk("alg"))?
            .try_into()
            .map_err(|_| KeyError::IncompleteJwk("a signature alg"))?;
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| KeyError::Material {
            alg,
            source: e.into(),
        })?;
        Self::new(kid, alg, decoding)
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// A private key with its `kid` and algorithm: EdDSA (Ed25519), ES256 or
/// HS256.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    verification: Arc<VerificationKey>,
    public_jwk: Option<Jwk>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.verification.kid)
            .field("alg", &self.verification.alg)
            .finish_non_exhaustive()
    }
}

const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn material(alg: Algorithm) -> impl FnOnce(jsonwebtoken::errors::Error) -> KeyError {
    move |e| KeyError::Material {
        alg,
        source: e.into(),
    }
}

impl SigningKey {
    /// A new random Ed25519 key (the default algorithm).
    pub fn generate_ed25519(kid: &str) -> Result<Self, KeyError> {
        Self::ed25519_from_seed(kid, rand::random())
    }

    /// The Ed25519 key of a 32-byte seed.
    pub fn ed25519_from_seed(kid: &str, seed: [u8; 32]) -> Result<Self, KeyError> {
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&ED25519_PKCS8_PREFIX);
        der.extend_from_slice(&seed);
        Self::asymmetric(kid, Algorithm::EdDSA, EncodingKey::from_ed_der(&der))
    }

    /// A new random P-256 key for ES256.
    pub fn generate_es256(kid: &str) -> Result<Self, KeyError> {
        use p256::pkcs8::EncodePrivateKey;
        let secret = loop {
            let bytes: [u8; 32] = rand::random();
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                break secret;
            }
        };
        let der = secret.to_pkcs8_der().map_err(|e| KeyError::Material {
            alg: Algorithm::ES256,
            source: Box::new(e),
        })?;
        Self::asymmetric(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(der.as_bytes()),
        )
    }

    /// An HS256 key from a shared secret of at least 32 bytes. Verifiers
    /// need the same secret, so it has no public JWK.
    pub fn hs256(kid: &str, secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::ShortSecret);
        }
        let verification =
            VerificationKey::new(kid, Algorithm::HS256, DecodingKey::from_secret(secret))?;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            verification: Arc::new(verification),
            public_jwk: None,
        })
    }

    fn asymmetric(kid: &str, alg: Algorithm, encoding: EncodingKey) -> Result<Self, KeyError> {
        if !is_valid_kid(kid) {
            return Err(KeyError::InvalidKid(kid.to_owned()));
        }
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(material(alg))?;
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let verification = VerificationKey::from_jwk(&jwk)?;
        Ok(Self {
            encoding,
            verification: Arc::new(verification),
            public_jwk: Some(jwk),
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.verification.kid
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.verification.alg
    }

    /// The public key as a JWK; `None` for HS256.
    pub fn public_jwk(&self) -> Option<&Jwk> {
        self.public_jwk.as_ref()
    }

    /// The verifying half.
    pub fn verification_key(&self) -> Arc<VerificationKey> {
        self.verification.clone()
    }

    /// The raw bytes behind the public key (Ed25519 / SEC1 point) or the
    /// HMAC secret, as jsonwebtoken holds them.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        self.verification
            .decoding
            .try_get_as_bytes()
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    }

    /// Signs `claims` under `header` as given (no `kid`, `alg` or `typ` is
    /// filled in): the building block of issuers, and of tests that need
    /// deliberately wrong tokens.
    pub fn sign_with_header<T: serde::Serialize>(
        &self,
        header: &jsonwebtoken::Header,
        claims: &T,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(header, claims, &self.encoding)
    }
}

/// Where a verifier finds the key of a `kid`.
pub trait KeySource: Send + Sync + fmt::Debug + 'static {
    /// The key registered under `kid` and still in use.
    fn key(&self, kid: &str) -> Option<Arc<VerificationKey>>;
}

#[derive(Debug)]
struct RingState {
    current: Arc<SigningKey>,
    /// The next key: published in the JWKS, not signing yet.
    staged: Option<Arc<SigningKey>>,
    /// Previous keys and the Unix second their overlap window closes.
    retiring: Vec<(Arc<SigningKey>, u64)>,
}

/// Signing keys that rotate by `kid` with an overlap window.
///
/// Lookups are lock-free (`arc-swap`). Clones share the ring.
#[derive(Clone, Debug)]
pub struct KeyRing {
    state: Arc<ArcSwap<RingState>>,
    clock: SharedClock,
}

/// Most previous keys kept in their overlap window at once.
const MAX_RETIRING: usize = 8;

impl KeyRing {
    /// A ring signing with `current`.
    pub fn new(current: SigningKey, clock: SharedClock) -> Self {
        Self {
            state: Arc::new(ArcSwap::from_pointee(RingState {
                current: Arc::new(current),
                staged: None,
                retiring: Vec::new(),
            })),
            clock,
        }
    }

    /// The key new tokens are signed with.
    pub fn current(&self) -> Arc<SigningKey> {
        self.state.load().current.clone()
    }

    /// Signs with `next` from now on; tokens of the previous key keep
    /// verifying for `overlap` (set it to at least the longest token
    /// lifetime). At most 8 previous keys are kept; the oldest goes first.
    pub fn rotate(&self, next: SigningKey, overlap: Duration) {
        let now = self.clock.unix_secs();
        let until = now + overlap.as_secs();
        let next = Arc::new(next);
        self.state.rcu(|state| {
            let mut retiring: Vec<_> = state
                .retiring
                .iter()
                .filter(|(_, end)| *end > now)
                .cloned()
                .collect();
            retiring.push((state.current.clone(), until));
            if retiring.len() > MAX_RETIRING {
                let excess = retiring.len() - MAX_RETIRING;
                retiring.drain(..excess);
            }
            RingState {
                current: next.clone(),
                staged: state.staged.clone().filter(|s| s.kid() != next.kid()),
                retiring,
            }
        });
    }

    /// Publishes `next` in the JWKS (and accepts its signatures) without
    /// signing with it yet, so that verifiers that poll the JWKS know it
    /// before the first token signed with it arrives. Promote it with
    /// [`rotate_to_staged`](Self::rotate_to_staged).
    pub fn stage(&self, next: SigningKey) {
        let next = Arc::new(next);
        self.state.rcu(|state| RingState {
            current: state.current.clone(),
            staged: Some(next.clone()),
            retiring: state.retiring.clone(),
        });
    }

    /// Signs with the staged key from now on (see [`rotate`](Self::rotate));
    /// returns `false` if nothing is staged.
    pub fn rotate_to_staged(&self, overlap: Duration) -> bool {
        let Some(staged) = self.state.load().staged.clone() else {
            return false;
        };
        self.rotate(SigningKey::clone(&staged), overlap);
        true
    }

    /// The JWKS document of every public key in use (HS256 keys have none).
    pub fn jwks(&self) -> JwkSet {
        let now = self.clock.unix_secs();
        let state = self.state.load();
        let keys = std::iter::once(&state.current)
            .chain(state.staged.iter())
            .chain(
                state
                    .retiring
                    .iter()
                    .filter(|(_, end)| *end > now)
                    .map(|(k, _)| k),
            )
            .filter_map(|k| k.public_jwk().cloned())
            .collect();
        JwkSet { keys }
    }
}

impl KeySource for KeyRing {
    fn key(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        let state = self.state.load();
        if state.current.kid() == kid {
            return Some(state.current.verification_key());
        }
        if let Some(staged) = state.staged.as_ref().filter(|s| s.kid() == kid) {
            return Some(staged.verification_key());
        }
        let now = self.clock.unix_secs();
        state
            .retiring
            .iter()
            .find(|(k, end)| k.kid() == kid && *end > now)
            .map(|(k, _)| k.verification_key())
    }
}

/// A fixed or externally refreshed set of verification keys, e.g. from the
/// authentication server's JWKS document. Clones share the set.
#[derive(Clone, Debug, Default)]
pub struct StaticKeys {
    keys: Arc<ArcSwap<HashMap<Arc<str>, Arc<VerificationKey>>>>,
}

impl StaticKeys {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of the given keys.
    pub fn from_keys(keys: impl IntoIterator<Item = VerificationKey>) -> Self {
        let set = Self::new();
        set.replace(keys);
        set
    }

    /// A set of every key of a JWKS document; keys without `kid` or `alg`
    /// are skipped (an algorithm is never guessed).
    pub fn from_jwks(jwks: &JwkSet) -> Self {
        let set = Self::new();
        set.update_from_jwks(jwks);
        set
    }

    #[cfg(feature = "remote")]
    pub(crate) fn downgrade(
        &self,
    ) -> std::sync::Weak<ArcSwap<HashMap<Arc<str>, Arc<VerificationKey>>>> {
        Arc::downgrade(&self.keys)
    }

    #[cfg(feature = "remote")]
    pub(crate) fn upgrade(
        weak: &std::sync::Weak<ArcSwap<HashMap<Arc<str>, Arc<VerificationKey>>>>,
    ) -> Option<Self> {
        weak.upgrade().map(|keys| Self { keys })
    }

    /// Replaces the keys.
    pub fn replace(&self, keys: impl IntoIterator<Item = VerificationKey>) {
        let map = keys
            .into_iter()
            .map(|k| (k.kid.clone(), Arc::new(k)))
            .collect();
        self.keys.store(Arc::new(map));
    }

    /// Replaces the keys with those of a JWKS document; returns how many
    /// were usable.
    pub fn update_from_jwks(&self, jwks: &JwkSet) -> usize {
        let keys: Vec<_> = jwks
            .keys
            .iter()
            .filter_map(|jwk| match VerificationKey::from_jwk(jwk) {
                Ok(key) => Some(key),
                Err(error) => {
                    tracing::warn!(%error, "skipping JWK");
                    None
                }
            })
            .collect();
        let n = keys.len();
        self.replace(keys);
        n
    }
}

impl KeySource for StaticKeys {
    fn key(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        self.keys.load().get(kid).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn kid_charset() {
        assert!(is_valid_kid("key-2024_01"));
        for bad in [
            "",
            "../../etc/passwd",
            "k' OR '1'='1",
            "a/b",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(!is_valid_kid(bad), "{bad}");
        }
    }

    #[test]
    fn rotation_keeps_old_keys_for_the_overlap() {
        let clock = ManualClock::new(Duration::from_secs(1_000_000));
        let ring = KeyRing::new(
            SigningKey::generate_ed25519("k1").unwrap(),
            Arc::new(clock.clone()),
        );
        ring.rotate(
            SigningKey::generate_es256("k2").unwrap(),
            Duration::from_secs(600),
        );
        assert_eq!(ring.current().kid(), "k2");
        assert!(ring.key("k1").is_some());
        assert_eq!(ring.jwks().keys.len(), 2);
        clock.advance(Duration::from_secs(601));
        assert!(ring.key("k1").is_none());
        assert_eq!(ring.jwks().keys.len(), 1);
        let jwks = StaticKeys::from_jwks(&ring.jwks());
        assert_eq!(jwks.key("k2").unwrap().algorithm(), Algorithm::ES256);
    }
}

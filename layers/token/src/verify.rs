//! Token validation following RFC 8725 (JWT best current practices).
//!
//! [`Verifier::verify`] checks, in this order, stopping at the first failure:
//!
//! 1. length (8 KiB by default), before anything is decoded;
//! 2. shape: three non-empty base64url parts (a stripped signature fails);
//! 3. the header: `alg` must not be `none`, `kid` must be present and match
//!    `[A-Za-z0-9_-]{1,64}` before it is looked up, `typ` must be `at+jwt`,
//!    `crit` is refused, and `jku` / `x5u` / `x5c` are never followed (keys
//!    come only from the configured [`KeySource`]);
//! 4. the algorithm must be the one registered for that `kid` (no algorithm
//!    confusion);
//! 5. the signature;
//! 6. the claims: every one of `iss`, `sub`, `aud`, `sid`, `jti`, `iat`,
//!    `nbf`, `exp`, `typ` present with its JSON type; `iss`, `aud` and `typ`
//!    equal to the expected values; `exp`, `nbf` and `iat` against the clock
//!    with one leeway (30 s by default); `exp − iat` within the maximum
//!    lifetime;
//! 7. revocation of the `jti` and of the session (a session revoked for
//!    token reuse is [`TokenError::TokenReuse`]).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use foresight_token::{KeyRing, LocalIssuer, SigningKey, TokenIssuer, TokenRequest, Verifier, TokioClock};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let clock = TokioClock::shared();
//! let ring = KeyRing::new(SigningKey::generate_ed25519("k1").unwrap(), clock.clone());
//! let issuer = LocalIssuer::new(ring.clone(), "https://auth.example", "api", clock.clone());
//! // Default setup: 30 s leeway, 8 KiB limit, in-memory revocations.
//! let verifier = Verifier::builder(ring.clone(), "https://auth.example", "api")
//!     .with_clock(clock.clone())
//!     .build();
//! let token = issuer
//!     .issue(TokenRequest::new("alice", "session-1", Duration::from_secs(300)))
//!     .await
//!     .unwrap();
//! assert_eq!(verifier.verify(&token.token).unwrap().sub, "alice");
//!
//! // Customised: 5 s leeway, tokens of at most 1 hour.
//! let strict = Verifier::builder(ring, "https://auth.example", "api")
//!     .with_leeway(Duration::from_secs(5))
//!     .with_max_lifetime(Duration::from_secs(3600))
//!     .with_clock(clock)
//!     .build();
//! assert!(strict.verify(&token.token).is_ok());
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use serde::Deserialize;

use crate::claims::{ACCESS_TYP, Claims, HEADER_TYP};
use crate::clock::{SharedClock, TokioClock};
use crate::error::TokenError;
use crate::keys::{KeySource, is_valid_kid};
use crate::revoke::{MemoryRevocations, RevocationReason, Revocations};

/// Default leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Default longest accepted token, in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default longest accepted lifetime (`exp − iat`).
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(12 * 3600);

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<std::borrow::Cow<'a, str>>,
    crit: Option<serde::de::IgnoredAny>,
}

struct Inner {
    keys: Arc<dyn KeySource>,
    issuer: String,
    audience: String,
    leeway: u64,
    max_len: usize,
    max_lifetime: u64,
    revocations: Arc<dyn Revocations>,
    clock: SharedClock,
}

/// Validates access tokens; see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.inner.keys)
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("leeway", &self.inner.leeway)
            .field("max_len", &self.inner.max_len)
            .finish_non_exhaustive()
    }
}

/// Builder of a [`Verifier`].
#[must_use]
pub struct VerifierBuilder {
    keys: Arc<dyn KeySource>,
    issuer: String,
    audience: String,
    leeway: Duration,
    max_len: usize,
    max_lifetime: Duration,
    revocations: Option<Arc<dyn Revocations>>,
    clock: Option<SharedClock>,
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// Leeway for `exp`, `nbf` and `iat` (default 30 s).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Longest accepted token in bytes (default 8 KiB).
    pub fn with_max_token_len(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }

    /// Longest accepted `exp − iat` (default 12 h).
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max;
        self
    }

    /// The revocation list (default: an in-memory list of 100,000 entries).
    pub fn with_revocations(mut self, revocations: Arc<dyn Revocations>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The clock (default: [`TokioClock`]).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the verifier.
    pub fn build(self) -> Verifier {
        let clock = self.clock.unwrap_or_else(TokioClock::shared);
        let revocations = self
            .revocations
            .unwrap_or_else(|| Arc::new(MemoryRevocations::new(100_000, clock.clone())));
        Verifier {
            inner: Arc::new(Inner {
                keys: self.keys,
                issuer: self.issuer,
                audience: self.audience,
                leeway: self.leeway.as_secs(),
                max_len: self.max_len,
                max_lifetime: self.max_lifetime.as_secs(),
                revocations,
                clock,
            }),
        }
    }
}

fn decode_error(
    part: &'static str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> TokenError {
    TokenError::Decode {
        part,
        source: Box::new(e),
    }
}

impl Verifier {
    /// A builder for tokens of `issuer` meant for `audience`, verified with
    /// the keys of `keys` (a [`KeyRing`](crate::KeyRing) or
    /// [`StaticKeys`](crate::StaticKeys)).
    pub fn builder(
        keys: impl KeySource,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> VerifierBuilder {
        VerifierBuilder {
            keys: Arc::new(keys),
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: DEFAULT_LEEWAY,
            max_len: DEFAULT_MAX_TOKEN_LEN,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            revocations: None,
            clock: None,
        }
    }

    /// The revocation list.
    pub fn revocations(&self) -> &Arc<dyn Revocations> {
        &self.inner.revocations
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The leeway in seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.inner.leeway
    }

    /// The longest accepted token lifetime (`exp − iat`), in seconds.
    pub fn max_lifetime_secs(&self) -> u64 {
        self.inner.max_lifetime
    }

    /// The Unix second until which a revocation made now must be kept: no
    /// token it covers, issued up to now, is valid after it (the maximum
    /// lifetime plus the leeway, from now).
    pub fn revocation_horizon(&self) -> u64 {
        self.inner
            .clock
            .unix_secs()
            .saturating_add(self.inner.max_lifetime)
            .saturating_add(self.inner.leeway)
    }

    /// Verifies `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let inner = &*self.inner;
        if token.len() > inner.max_len {
            return Err(TokenError::TooLong {
                len: token.len(),
                max: inner.max_len,
            });
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed {
                what: "not three parts",
            });
        };
        if header.is_empty() || payload.is_empty() {
            return Err(TokenError::Malformed { what: "empty part" });
        }
        if signature.is_empty() {
            return Err(TokenError::Malformed {
                what: "no signature",
            });
        }

        let header_b64 = header;
        let header_json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|e| decode_error("header", e))?;
        let header: RawHeader<'_> =
            serde_json::from_slice(&header_json).map_err(|e| decode_error("header", e))?;
        let alg = header.alg.as_deref().unwrap_or("none");
        if alg.eq_ignore_ascii_case("none") {
            return Err(TokenError::UnsupportedAlgorithm { alg: alg.into() });
        }
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        if header.typ.as_deref() != Some(HEADER_TYP) {
            return Err(TokenError::WrongType);
        }
        let kid = header.kid.as_deref().ok_or(TokenError::MissingKid)?;
        if !is_valid_kid(kid) {
            return Err(TokenError::InvalidKid);
        }
        let key = inner.keys.key(kid).ok_or(TokenError::UnknownKid)?;
        if alg.parse::<jsonwebtoken::Algorithm>().ok() != Some(key.algorithm()) {
            return Err(TokenError::AlgorithmNotAllowed {
                alg: alg.into(),
                kid: kid.into(),
            });
        }

        // The signature covers `header.payload`, as sent.
        let message = &token.as_bytes()[..header_b64.len() + 1 + payload.len()];
        match jsonwebtoken::crypto::verify(signature, message, key.decoding(), key.algorithm()) {
            Ok(true) => {}
            Ok(false) => {
                return Err(TokenError::BadSignature {
                    source: jsonwebtoken::errors::ErrorKind::InvalidSignature.into(),
                });
            }
            Err(e) => match e.kind() {
                ErrorKind::Base64(_) => return Err(decode_error("signature", e)),
                _ => return Err(TokenError::BadSignature { source: e }),
            },
        }
        let claims_json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|e| decode_error("claims", e))?;
        let claims: Claims =
            serde_json::from_slice(&claims_json).map_err(|e| decode_error("claims", e))?;

        if claims.iss != inner.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if !claims.aud.contains(&inner.audience) {
            return Err(TokenError::WrongAudience);
        }
        if claims.typ != ACCESS_TYP {
            return Err(TokenError::WrongType);
        }
        let now = inner.clock.unix_secs();
        if claims.exp.saturating_add(inner.leeway) <= now {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now.saturating_add(inner.leeway) {
            return Err(TokenError::NotYetValid);
        }
        if claims.iat > now.saturating_add(inner.leeway) {
            return Err(TokenError::IssuedInFuture);
        }
        if claims.exp <= claims.iat || claims.exp - claims.iat > inner.max_lifetime {
            return Err(TokenError::Lifetime);
        }
        if inner.revocations.is_revoked(&claims.jti, &claims.sid) {
            if inner.revocations.is_token_revoked(&claims.jti) {
                return Err(TokenError::RevokedToken);
            }
            return Err(match inner.revocations.session_revocation(&claims.sid) {
                Some(RevocationReason::TokenReuse) => TokenError::TokenReuse,
                _ => TokenError::RevokedSession,
            });
        }
        Ok(claims)
    }
}

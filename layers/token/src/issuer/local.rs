use std::time::Duration;

use jsonwebtoken::Header;

use super::{IssueFuture, IssuedToken, TokenIssuer, TokenRequest, random_id};
use crate::claims::{ACCESS_TYP, Audience, Claims, HEADER_TYP};
use crate::clock::SharedClock;
use crate::error::IssueError;
use crate::keys::KeyRing;

/// Signs tokens in process with the current key of a [`KeyRing`].
///
/// Tokens carry `iss`, `sub`, `aud`, `sid`, a random 128-bit `jti`, `iat` =
/// `nbf` = now, `exp` = now + lifetime and `typ: "access"`; the header has
/// the key's `alg` and `kid` and `typ: "at+jwt"`. Lifetimes above the
/// maximum (12 h by default) are refused.
#[derive(Clone, Debug)]
pub struct LocalIssuer {
    ring: KeyRing,
    issuer: String,
    audience: String,
    clock: SharedClock,
    max_lifetime: Duration,
}

impl LocalIssuer {
    /// An issuer named `issuer` for `audience`.
    pub fn new(
        ring: KeyRing,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        clock: SharedClock,
    ) -> Self {
        Self {
            ring,
            issuer: issuer.into(),
            audience: audience.into(),
            clock,
            max_lifetime: crate::verify::DEFAULT_MAX_LIFETIME,
        }
    }

    /// Refuses lifetimes above `max` (default 12 h).
    #[must_use]
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max;
        self
    }

    /// The key ring.
    pub fn key_ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Signs a token now.
    pub fn sign(&self, request: &TokenRequest) -> Result<IssuedToken, IssueError> {
        if request.lifetime.is_zero() || request.lifetime > self.max_lifetime {
            return Err(IssueError::Lifetime {
                requested: request.lifetime,
            });
        }
        let key = self.ring.current();
        let now = self.clock.unix_secs();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: request.subject.clone(),
            aud: Audience::One(self.audience.clone()),
            sid: request.session.clone(),
            jti: random_id(),
            iat: now,
            nbf: now,
            exp: now + request.lifetime.as_secs().max(1),
            typ: ACCESS_TYP.to_owned(),
        };
        let mut header = Header::new(key.algorithm());
        header.kid = Some(key.kid().to_owned());
        header.typ = Some(HEADER_TYP.to_owned());
        let token = key
            .sign_with_header(&header, &claims)
            .map_err(|source| IssueError::Sign { source })?;
        metrics::counter!(crate::metrics::ISSUED, "issuer" => "local").increment(1);
        Ok(IssuedToken {
            token: token.into(),
            jti: claims.jti,
            sid: claims.sid,
            nbf: claims.nbf,
            exp: claims.exp,
        })
    }
}

impl TokenIssuer for LocalIssuer {
    fn issue(&self, request: TokenRequest) -> IssueFuture<'_> {
        let result = self.sign(&request);
        Box::pin(async move { result })
    }
}

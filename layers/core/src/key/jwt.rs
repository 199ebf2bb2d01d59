use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderName;
use http::header::AUTHORIZATION;

use super::{ClientKey, JwtKeyError, KeyError, KeyExtractor, RequestHead};

/// Longest bearer token read for routing, in bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Reads the `sub` claim of the bearer token in `Authorization`.
///
/// The signature is **not** verified: a forged token only chooses which
/// instance handles a request that authentication will then reject. Never
/// use the result to authorise anything.
#[derive(Clone, Debug)]
pub struct JwtSubjectKey {
    header: HeaderName,
}

impl Default for JwtSubjectKey {
    fn default() -> Self {
        Self::new()
    }
}

impl JwtSubjectKey {
    /// Reads `Authorization: Bearer <jwt>`.
    pub fn new() -> Self {
        Self {
            header: AUTHORIZATION,
        }
    }

    /// Reads the bearer token from another header.
    #[must_use]
    pub fn with_header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }
}

#[derive(serde::Deserialize)]
struct Claims<'a> {
    #[serde(borrow)]
    sub: Option<Cow<'a, str>>,
}

/// The `sub` claim of a compact JWS, read without verification.
pub(crate) fn unverified_subject(token: &[u8]) -> Result<ClientKey, JwtKeyError> {
    let mut parts = token.split(|&b| b == b'.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtKeyError::NotThreeParts);
    };
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(JwtKeyError::Base64)?;
    let claims: Claims<'_> = serde_json::from_slice(&json).map_err(JwtKeyError::Json)?;
    match claims.sub {
        Some(sub) if !sub.is_empty() => Ok(ClientKey::copy_from_slice(sub.as_bytes())),
        _ => Err(JwtKeyError::NoSubject),
    }
}

impl KeyExtractor for JwtSubjectKey {
    fn extract(&self, head: &RequestHead<'_>) -> Result<ClientKey, KeyError> {
        let value = head
            .headers
            .get(&self.header)
            .ok_or_else(|| KeyError::Missing {
                what: format!("header {}", self.header),
            })?;
        let bytes = value.as_bytes();
        if bytes.len() > MAX_TOKEN_LEN + "Bearer ".len() {
            return Err(KeyError::TooLong {
                what: format!("bearer token in {}", self.header),
                len: bytes.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        let token = match bytes.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => &bytes[7..],
            _ => return Err(JwtKeyError::NotBearer.into()),
        };
        let token = token.trim_ascii();
        if token.is_empty() {
            return Err(KeyError::Empty {
                what: format!("bearer token in {}", self.header),
            });
        }
        Ok(unverified_subject(token)?)
    }
}

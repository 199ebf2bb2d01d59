//! Authenticating a request: its `Authorization: Bearer` token, verified,
//! and bound to the session the request names.

use std::sync::Arc;

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::state::TokenHandle;
use crate::claims::Claims;
use crate::error::TokenError;
use crate::policy::SessionBinding;

/// The verified claims of a request, in its extensions.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Arc<Claims>);

impl TokenHandle {
    /// Authenticates the `Authorization: Bearer` token of a request.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, TokenError> {
        let value = headers.get(AUTHORIZATION).ok_or(TokenError::Missing)?;
        let token = bearer(value.as_bytes()).ok_or(TokenError::NotBearer)?;
        let claims = self.shared.verifier.verify(token)?;
        self.check_binding(headers, &claims)?;
        Ok(claims)
    }

    /// Checks that a request naming its session (by the configured header or
    /// cookie) carries a token of that session.
    pub(crate) fn check_binding(
        &self,
        headers: &HeaderMap,
        claims: &Claims,
    ) -> Result<(), TokenError> {
        let bound = match &self.shared.binding {
            SessionBinding::None => None,
            SessionBinding::Header(name) => headers.get(name).map(|v| v.as_bytes()),
            SessionBinding::Cookie(name) => cookie(headers, name),
        };
        if let Some(sid) = bound
            && sid != claims.sid.as_bytes()
        {
            return Err(TokenError::WrongSession);
        }
        Ok(())
    }
}

/// The token of an `Authorization: Bearer` value.
pub(crate) fn bearer(value: &[u8]) -> Option<&str> {
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    std::str::from_utf8(token).ok().map(str::trim)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let (k, v) = pair.split_at_checked(name.len())?;
            (k == name.as_bytes() && v.first() == Some(&b'=')).then(|| &v[1..])
        })
}

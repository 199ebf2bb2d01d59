//! [`GatewayKey`]: the client key of the `[key]` section, one type whatever
//! its kind, so that the whole public service has one concrete type and is
//! never boxed.

use foresight::core::ClientKey;
use foresight::core::key::{
    CookieKey, HeaderKey, JwtSubjectKey, KeyError, KeyExtractor, RequestHead,
};

use crate::config::{Config, KeyKind};

/// The key extractor the configuration names.
#[derive(Clone, Debug)]
pub enum GatewayKey {
    /// A cookie.
    Cookie(CookieKey),
    /// A header.
    Header(HeaderKey),
    /// The `sub` claim of the bearer token.
    Jwt(JwtSubjectKey),
}

impl GatewayKey {
    /// The extractor of `config`'s `[key]` section (validated: a header key
    /// has a valid name).
    pub fn from_config(config: &Config) -> Self {
        let name = config.key.name.as_ref().map(|n| n.get_ref().clone());
        match (config.key.kind, name) {
            (KeyKind::Cookie, name) => Self::Cookie(CookieKey::new(
                name.unwrap_or_else(|| "__Host-session".into()),
            )),
            (KeyKind::Header, Some(name)) => {
                let name = http::HeaderName::try_from(name).expect("validated header name");
                Self::Header(HeaderKey::from_name(name))
            }
            (KeyKind::Header, None) => unreachable!("validated: a header key has a name"),
            (KeyKind::Jwt, _) => Self::Jwt(JwtSubjectKey::new()),
        }
    }
}

impl KeyExtractor for GatewayKey {
    fn extract(&self, head: &RequestHead<'_>) -> Result<ClientKey, KeyError> {
        match self {
            Self::Cookie(key) => key.extract(head),
            Self::Header(key) => key.extract(head),
            Self::Jwt(key) => key.extract(head),
        }
    }
}

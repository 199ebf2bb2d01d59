//! The claims of a Foresight access token.

use serde::{Deserialize, Serialize};

/// Value of the `typ` header parameter of every access token (RFC 9068),
/// checked on every token (RFC 8725 §3.11, explicit typing).
pub const HEADER_TYP: &str = "at+jwt";

/// Value of the `typ` claim of an access token.
pub const ACCESS_TYP: &str = "access";

/// The `aud` claim: one audience or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, serialised as a string.
    One(String),
    /// Several audiences, serialised as an array.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is among the token's audiences.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

/// Claims of an access token. Every field is required: a token without one
/// of them, or with one of the wrong JSON type, does not deserialise and is
/// rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject (the user or account).
    pub sub: String,
    /// Audience.
    pub aud: Audience,
    /// Session the token belongs to.
    pub sid: String,
    /// Unique token id, the handle for revocation.
    pub jti: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Not before, Unix seconds.
    pub nbf: u64,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Token type, [`ACCESS_TYP`] for access tokens.
    pub typ: String,
}

//! Client keys: what a request is routed by.
//!
//! A [`KeyExtractor`] reads a [`ClientKey`] from the head of a request. Ready
//! extractors read a [header](HeaderKey), a [cookie](CookieKey), the `sub`
//! claim of a [JWT](JwtSubjectKey) (without verifying it: good for routing,
//! never for authentication) or a [fingerprint](FingerprintKey) of chosen
//! headers and the peer address. Closures taking a [`RequestHead`] are
//! extractors too, and [`KeyExtractorExt::or`] tries a second extractor when
//! the first finds no key.
//!
//! Every malformed input is a [`KeyError`]; what happens to a request without
//! a usable key is the [`MissingKeyPolicy`] of the layer that routes it.
//!
//! ```
//! use foresight_core::key::{CookieKey, HeaderKey, KeyExtractor, KeyExtractorExt, RequestHead};
//!
//! let extractor = HeaderKey::new("x-account-id").or(CookieKey::new("sid"));
//! let request = http::Request::builder()
//!     .header("cookie", "theme=dark; sid=s3ss10n")
//!     .body(())
//!     .unwrap();
//! let key = extractor.extract(&RequestHead::of(&request)).unwrap();
//! assert_eq!(key.as_bytes(), b"s3ss10n");
//! ```

mod client_key;
mod cookie;
mod error;
mod fingerprint;
mod header;
mod jwt;

use http::{Extensions, HeaderMap, Method, Request, Uri};

pub use client_key::ClientKey;
pub use cookie::CookieKey;
pub use error::{JwtKeyError, KeyError};
pub use fingerprint::{FingerprintKey, PeerAddr};
pub use header::HeaderKey;
pub use jwt::{JwtSubjectKey, MAX_TOKEN_LEN};

/// Longest key the ready extractors accept by default, in bytes.
pub const DEFAULT_MAX_KEY_LEN: usize = 1024;

/// Borrowed view of the parts of a request that a key can come from.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Request URI.
    pub uri: &'a Uri,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Request extensions (peer address, earlier routing decisions).
    pub extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    /// The head of `request`.
    pub fn of<B>(request: &'a Request<B>) -> Self {
        Self {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }
}

/// Reads the client key of a request.
///
/// Implemented by the ready extractors of this module and by every
/// `Fn(&RequestHead<'_>) -> Result<ClientKey, KeyError>` closure.
pub trait KeyExtractor: Send + Sync + 'static {
    /// The key of the request, or why there is none.
    fn extract(&self, head: &RequestHead<'_>) -> Result<ClientKey, KeyError>;
}

impl<F> KeyExtractor for F
where
    F: Fn(&RequestHead<'_>) -> Result<ClientKey, KeyError> + Send + Sync + 'static,
{
    fn extract(&self, head: &RequestHead<'_>) -> Result<ClientKey, KeyError> {
        self(head)
    }
}

/// Combinators for [`KeyExtractor`]s.
pub trait KeyExtractorExt: KeyExtractor + Sized {
    /// Tries `other` when this extractor finds no key
    /// ([`KeyError::Missing`]). A malformed key is not retried: it is
    /// reported, so a client cannot pick its route by sending bad input.
    fn or<E: KeyExtractor>(self, other: E) -> Or<Self, E> {
        Or {
            first: self,
            second: other,
        }
    }
}

impl<T: KeyExtractor> KeyExtractorExt for T {}

/// Extractor returned by [`KeyExtractorExt::or`].
#[derive(Clone, Debug)]
pub struct Or<A, B> {
    first: A,
    second: B,
}

impl<A: KeyExtractor, B: KeyExtractor> KeyExtractor for Or<A, B> {
    fn extract(&self, head: &RequestHead<'_>) -> Result<ClientKey, KeyError> {
        match self.first.extract(head) {
            Err(KeyError::Missing { .. }) => self.second.extract(head),
            other => other,
        }
    }
}

/// What a routing layer does with a request that has no usable key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingKeyPolicy {
    /// Fail the request with the [`KeyError`]: a 400 response with a plain
    /// message at the edge. The default, since a keyless request to a
    /// session service is usually a client bug.
    #[default]
    Reject,
    /// Route the request by a fresh random key, spreading keyless traffic
    /// evenly. Suits stateless endpoints behind the same router.
    SpreadRandomly,
}

impl MissingKeyPolicy {
    /// Applies the policy to an extraction result.
    pub fn resolve(self, extracted: Result<ClientKey, KeyError>) -> Result<ClientKey, KeyError> {
        match (self, extracted) {
            (_, Ok(key)) => Ok(key),
            (MissingKeyPolicy::SpreadRandomly, Err(_)) => Ok(ClientKey::random()),
            (MissingKeyPolicy::Reject, Err(error)) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests;

use http::HeaderName;

use super::{ClientKey, DEFAULT_MAX_KEY_LEN, KeyError, KeyExtractor, RequestHead};

/// Reads the key from a request header, e.g. `x-account-id`.
///
/// The first value of the header is used. It must be non-empty visible ASCII
/// of at most [`DEFAULT_MAX_KEY_LEN`] bytes (see [`HeaderKey::with_max_len`]).
#[derive(Clone, Debug)]
pub struct HeaderKey {
    name: HeaderName,
    max_len: usize,
}

impl HeaderKey {
    /// Reads header `name`.
    ///
    /// # Panics
    ///
    /// When `name` is not a valid header name; use [`HeaderKey::from_name`]
    /// with a checked [`HeaderName`] for names known only at run time.
    pub fn new(name: &'static str) -> Self {
        Self::from_name(HeaderName::from_static(name))
    }

    /// Reads header `name`.
    pub fn from_name(name: HeaderName) -> Self {
        Self {
            name,
            max_len: DEFAULT_MAX_KEY_LEN,
        }
    }

    /// Sets the longest accepted key.
    #[must_use]
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }
}

impl KeyExtractor for HeaderKey {
    fn extract(&self, head: &RequestHead<'_>) -> Result<ClientKey, KeyError> {
        let value = head
            .headers
            .get(&self.name)
            .ok_or_else(|| KeyError::Missing {
                what: format!("header {}", self.name),
            })?;
        let bytes = value.as_bytes();
        if bytes.is_empty() {
            return Err(KeyError::Empty {
                what: format!("header {}", self.name),
            });
        }
        if bytes.len() > self.max_len {
            return Err(KeyError::TooLong {
                what: format!("header {}", self.name),
                len: bytes.len(),
                max: self.max_len,
            });
        }
        let text = value.to_str().map_err(|_| KeyError::InvalidEncoding {
            name: self.name.clone(),
        })?;
        Ok(ClientKey::copy_from_slice(text.as_bytes()))
    }
}

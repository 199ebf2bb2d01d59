use http::header::COOKIE;

use super::{ClientKey, DEFAULT_MAX_KEY_LEN, KeyError, KeyExtractor, RequestHead};

/// Reads the key from a cookie, e.g. the session cookie.
///
/// Every `cookie` header line is searched; the first pair with the name wins
/// (user agents send the most specific path first). Other pairs may be
/// malformed without harm; the pair carrying the key must be a valid RFC 6265
/// `cookie-value` (optionally in double quotes), non-empty and at most
/// [`DEFAULT_MAX_KEY_LEN`] bytes.
#[derive(Clone, Debug)]
pub struct CookieKey {
    name: String,
    max_len: usize,
}

impl CookieKey {
    /// Reads cookie `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            max_len: DEFAULT_MAX_KEY_LEN,
        }
    }

    /// Sets the longest accepted key.
    #[must_use]
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    fn malformed(&self, reason: &'static str) -> KeyError {
        KeyError::MalformedCookie {
            name: self.name.clone(),
            reason,
        }
    }

    fn check_value<'v>(&self, raw: &'v [u8]) -> Result<&'v [u8], KeyError> {
        let value = match raw {
            [b'"', inner @ .., b'"'] => inner,
            [b'"', ..] => return Err(self.malformed("unbalanced double quote")),
            other => other,
        };
        if value.is_empty() {
            return Err(KeyError::Empty {
                what: format!("cookie {}", self.name),
            });
        }
        if value.len() > self.max_len {
            return Err(KeyError::TooLong {
                what: format!("cookie {}", self.name),
                len: value.len(),
                max: self.max_len,
            });
        }
        if !value.iter().all(|&b| is_cookie_octet(b)) {
            return Err(self.malformed("value has characters a cookie may not carry"));
        }
        Ok(value)
    }
}

/// RFC 6265 section 4.1.1 `cookie-octet`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace());
    match (start, end) {
        (Some(s), Some(e)) => &bytes[s..=e],
        _ => &[],
    }
}

impl KeyExtractor for CookieKey {
    fn extract(&self, head: &RequestHead<'_>) -> Result<ClientKey, KeyError> {
        for line in head.headers.get_all(COOKIE) {
            for pair in line.as_bytes().split(|&b| b == b';') {
                let pair = trim(pair);
                let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                    continue;
                };
                if trim(&pair[..eq]) != self.name.as_bytes() {
                    continue;
                }
                let value = self.check_value(trim(&pair[eq + 1..]))?;
                return Ok(ClientKey::copy_from_slice(value));
            }
        }
        Err(KeyError::Missing {
            what: format!("cookie {}", self.name),
        })
    }
}

//! Which attempt of which request an instance is serving.
//!
//! A routing tier that may send one request more than once (a replay after
//! a failure or a timeout, a hedge) tags each copy with [`ATTEMPT_HEADER`]:
//! the request's random id and the attempt's number. An instance uses it to
//! fence late attempts: `foresight-mirror` records the attempts that wrote a
//! session, and skips the write of an attempt whose request another attempt
//! already applied, so a slow first attempt that finishes after the client
//! moved on cannot undo the client's next write.
//!
//! The routing tier sets the header on every attempt it tags, replacing any
//! value a client sent.
//!
//! ```
//! use foresight_core::attempt::{ATTEMPT_HEADER, Attempt};
//! use http::HeaderMap;
//!
//! let first = Attempt::first(0x0123_4567_89ab_cdef);
//! let replay = first.next();
//! let mut headers = HeaderMap::new();
//! headers.insert(&ATTEMPT_HEADER, replay.header_value());
//! assert_eq!(headers[&ATTEMPT_HEADER], "0123456789abcdef.1");
//! assert_eq!(Attempt::of_headers(&headers), Some(replay));
//! assert!(replay.same_request(&first));
//! ```

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};

/// `x-foresight-attempt: <request id, 16 hex digits>.<attempt number>`.
pub static ATTEMPT_HEADER: HeaderName = HeaderName::from_static("x-foresight-attempt");

/// One attempt of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attempt {
    request: u64,
    number: u16,
}

impl Attempt {
    /// The first attempt of request `request`.
    pub const fn first(request: u64) -> Self {
        Self { request, number: 0 }
    }

    /// The first attempt of a request with a fresh random id.
    pub fn random() -> Self {
        Self::first(rand::random())
    }

    /// The next attempt of the same request.
    #[must_use]
    pub const fn next(self) -> Self {
        Self {
            request: self.request,
            number: self.number.saturating_add(1),
        }
    }

    /// Attempt `number` of the same request.
    #[must_use]
    pub const fn with_number(self, number: u16) -> Self {
        Self {
            request: self.request,
            number,
        }
    }

    /// The request's id.
    pub const fn request(&self) -> u64 {
        self.request
    }

    /// The attempt's number, 0 for the first.
    pub const fn number(&self) -> u16 {
        self.number
    }

    /// Whether both are attempts of one request.
    pub const fn same_request(&self, other: &Attempt) -> bool {
        self.request == other.request
    }

    /// The header's value: its [`Display`](fmt::Display) text, written
    /// without the formatting machinery, as every replayable request gets
    /// one.
    pub fn header_value(&self) -> HeaderValue {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // 16 hex digits, a dot and at most 5 digits.
        let mut text = [0u8; 22];
        for (at, byte) in text[..16].iter_mut().enumerate() {
            *byte = HEX[((self.request >> (60 - 4 * at)) & 0xf) as usize];
        }
        text[16] = b'.';
        let digits = self.number.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut number = self.number;
        for byte in text[17..17 + digits].iter_mut().rev() {
            *byte = b'0' + (number % 10) as u8;
            number /= 10;
        }
        // Hex digits, a dot and digits: always a valid header value.
        HeaderValue::from_bytes(&text[..17 + digits]).expect("hex and digits")
    }

    /// Parses `<16 hex digits>.<number>`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (request, number) = text.trim_ascii().split_once('.')?;
        if request.len() != 16 || !request.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        if number.is_empty() || number.len() > 5 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self {
            request: u64::from_str_radix(request, 16).ok()?,
            number: number.parse().ok()?,
        })
    }

    /// The attempt a request is tagged with: `None` when the header is
    /// absent, repeated or malformed.
    pub fn of_headers(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(&ATTEMPT_HEADER).iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        Self::parse(value.to_str().ok()?)
    }

    /// Removes any attempt header (a client's, at the routing tier's entry);
    /// whether there was one.
    pub fn strip(headers: &mut HeaderMap) -> bool {
        headers.remove(&ATTEMPT_HEADER).is_some()
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}.{}", self.request, self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_writes_and_nothing_else() {
        let a = Attempt::first(u64::MAX).next().next();
        assert_eq!(a.to_string(), "ffffffffffffffff.2");
        assert_eq!(Attempt::parse(&a.to_string()), Some(a));
        assert_eq!(
            Attempt::parse(" 00000000000000ff.65535 "),
            Some(Attempt {
                request: 255,
                number: 65535
            })
        );
        for bad in [
            "",
            ".",
            "ff.1",
            "00000000000000ff",
            "00000000000000ff.",
            "00000000000000ff.-1",
            "00000000000000ff.65536",
            "00000000000000ff.1.2",
            "0000000000000gff.1",
            "+0000000000000ff.1",
            "000000000000000ff.1",
        ] {
            assert_eq!(Attempt::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_header_value_is_the_display_text() {
        for request in [0, 1, 0xf, 0x0123_4567_89ab_cdef, u64::MAX] {
            for number in [0, 1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 65535] {
                let attempt = Attempt::first(request).with_number(number);
                assert_eq!(attempt.header_value(), attempt.to_string().as_str());
            }
        }
    }

    #[test]
    fn a_repeated_header_is_no_attempt() {
        let mut headers = HeaderMap::new();
        headers.append(&ATTEMPT_HEADER, Attempt::first(1).header_value());
        assert_eq!(Attempt::of_headers(&headers), Some(Attempt::first(1)));
        headers.append(&ATTEMPT_HEADER, Attempt::first(2).header_value());
        assert_eq!(Attempt::of_headers(&headers), None);
        assert!(Attempt::strip(&mut headers));
        assert!(!Attempt::strip(&mut headers));
    }
}

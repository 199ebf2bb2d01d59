//! Every ready client-key extractor of `foresight_core::key` over request
//! heads whose header values come from the input.
//!
//! The input is split on `\n`: the parts become, in turn, the values of
//! `x-account`, `cookie`, `authorization`, `user-agent` and
//! `accept-language` (a part that is no valid header value is skipped).
//! Each extractor must return a key or a `KeyError`, never panic.
#![no_main]

use std::net::SocketAddr;

use foresight_core::key::{
    CookieKey, FingerprintKey, HeaderKey, JwtSubjectKey, KeyExtractor, KeyExtractorExt, PeerAddr,
    RequestHead,
};
use http::header::{ACCEPT_LANGUAGE, AUTHORIZATION, COOKIE, USER_AGENT};
use http::{HeaderName, HeaderValue, Request};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 5] = [
    "x-account",
    "cookie",
    "authorization",
    "user-agent",
    "accept-language",
];

fuzz_target!(|data: &[u8]| {
    let mut builder = Request::builder();
    for (name, part) in NAMES.iter().cycle().zip(data.split(|&b| b == b'\n')) {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            builder = builder.header(HeaderName::from_static(name), value);
        }
    }
    let Ok(mut request) = builder.body(()) else {
        return;
    };
    request
        .extensions_mut()
        .insert(PeerAddr(SocketAddr::from(([192, 0, 2, 1], 443))));
    let head = RequestHead::of(&request);

    let header = HeaderKey::new("x-account");
    let short_header = HeaderKey::new("x-account").with_max_len(8);
    let cookie = CookieKey::new("sid");
    let short_cookie = CookieKey::new("sid").with_max_len(8);
    let jwt = JwtSubjectKey::new();
    let jwt_cookie = JwtSubjectKey::new().with_header(COOKIE);
    let fingerprint = FingerprintKey::new().with_headers([USER_AGENT, ACCEPT_LANGUAGE]);
    let fingerprint_peer = FingerprintKey::new()
        .with_headers([USER_AGENT, AUTHORIZATION])
        .with_peer(true);
    let chain = JwtSubjectKey::new()
        .or(CookieKey::new("sid"))
        .or(HeaderKey::new("x-account"));

    let extractors: [&dyn KeyExtractor; 9] = [
        &header,
        &short_header,
        &cookie,
        &short_cookie,
        &jwt,
        &jwt_cookie,
        &fingerprint,
        &fingerprint_peer,
        &chain,
    ];
    for extractor in extractors {
        match extractor.extract(&head) {
            Ok(key) => {
                // Header and cookie keys are bounded by their limit, a JWT
                // subject by the token's.
                assert!(!key.as_bytes().is_empty());
                assert!(key.as_bytes().len() <= foresight_core::key::MAX_TOKEN_LEN);
            }
            Err(error) => {
                let _ = error.to_string();
                let _ = error.is_missing();
            }
        }
    }
});

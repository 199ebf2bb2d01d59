//! The token verifier on hostile tokens, including header and claims
//! parsing, which the verifier only reaches with a valid signature.
//!
//! The first input byte picks the mode, the rest is the payload:
//! - `0`: the rest, as text, is the token;
//! - `1`: the rest is the claims JSON, signed under a valid HS256 header;
//! - `2`: the rest is `header JSON \n claims JSON`, both signed as given.
//!
//! Every token must verify to claims or fail with a `TokenError`; a token
//! that verifies must satisfy the checks the verifier promises.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use foresight_token::{ManualClock, SharedClock, SigningKey, StaticKeys, Verifier};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret-of-thirty-two-bytes!";
const NOW: u64 = 1_700_000_000;
const HEADER: &str = r#"{"alg":"HS256","kid":"h1","typ":"at+jwt"}"#;

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    let clock: SharedClock = Arc::new(ManualClock::new(Duration::from_secs(NOW)));
    let keys = StaticKeys::from_keys([
        (*SigningKey::hs256("h1", SECRET).unwrap().verification_key()).clone(),
        (*SigningKey::ed25519_from_seed("e1", [7; 32])
            .unwrap()
            .verification_key())
        .clone(),
        (*SigningKey::generate_es256("p1").unwrap().verification_key()).clone(),
    ]);
    Verifier::builder(keys, "https://auth.example", "api")
        .with_clock(clock)
        .build()
});

static ENCODING: LazyLock<EncodingKey> = LazyLock::new(|| EncodingKey::from_secret(SECRET));

fn signed(header: &[u8], claims: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims));
    let signature = jsonwebtoken::crypto::sign(token.as_bytes(), &ENCODING, Algorithm::HS256)
        .expect("HMAC signs any message");
    token.push('.');
    token.push_str(&signature);
    token
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => signed(HEADER.as_bytes(), rest),
        _ => match rest.iter().position(|&b| b == b'\n') {
            Some(at) => signed(&rest[..at], &rest[at + 1..]),
            None => signed(rest, b"{}"),
        },
    };
    let verifier = &*VERIFIER;
    match verifier.verify(&token) {
        Ok(claims) => {
            assert_eq!(claims.iss, "https://auth.example");
            assert!(claims.aud.contains("api"));
            assert_eq!(claims.typ, "access");
            assert!(claims.exp > claims.iat);
            assert!(claims.exp + verifier.leeway_secs() > NOW);
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});

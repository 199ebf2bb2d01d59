//! Every bad token is a 401 with a `WWW-Authenticate` error, never a panic.

mod support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use foresight_token::{Revocation, SigningKey, TokenIssuer, TokenPrefetchLayer, TokenRequest};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::*;

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn good_claims() -> Value {
    json!({
        "iss": ISS, "sub": "alice", "aud": AUD, "sid": "s1", "jti": "j1",
        "iat": T0, "nbf": T0, "exp": T0 + 300, "typ": "access",
    })
}

fn header(alg: Algorithm, kid: &str) -> Header {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_owned());
    h.typ = Some("at+jwt".to_owned());
    h
}

struct Case {
    fx: Fixture,
    key: SigningKey,
    app: App,
}

fn case(key: SigningKey) -> Case {
    let fx = fixture(key.clone());
    let layer = TokenPrefetchLayer::builder(fx.verifier.clone(), fx.issuer.clone()).build();
    let app = app(&layer);
    Case { fx, key, app }
}

impl Case {
    fn sign(&self, claims: &Value) -> String {
        self.key
            .sign_with_header(&header(self.key.algorithm(), self.key.kid()), claims)
            .unwrap()
    }

    /// Asserts a 401 whose challenge names `description`, the reason the
    /// case is about (not merely some rejection).
    async fn expect_invalid(&self, token: &str, what: &str, description: &str) {
        let response = send(&self.app, Some(token), None).await;
        assert_eq!(response.status(), 401, "{what}");
        assert_eq!(
            response.headers()["www-authenticate"],
            challenge(description),
            "{what}"
        );
    }
}

/// The challenge of a rejected token.
fn challenge(description: &str) -> String {
    format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
}

const NO_SIGNATURE: &str = "token is not a signed compact JWT (no signature)";
const NOT_THREE_PARTS: &str = "token is not a signed compact JWT (not three parts)";
const BAD_SIGNATURE: &str = "signature does not verify";
const BAD_HEADER: &str = "token header cannot be decoded";
const BAD_CLAIMS: &str = "token claims cannot be decoded";
const INVALID_KID: &str = "key id has invalid characters or length";
const UNKNOWN_KID: &str = "unknown key id";
const WRONG_TYPE: &str = "wrong token type";

fn keys() -> Vec<SigningKey> {
    vec![
        SigningKey::generate_ed25519("k1").unwrap(),
        SigningKey::generate_es256("k1").unwrap(),
        SigningKey::hs256("k1", &[7u8; 32]).unwrap(),
    ]
}

#[tokio::test]
async fn a_good_token_passes_for_every_algorithm() {
    for key in keys() {
        let c = case(key);
        let token = c.sign(&good_claims());
        assert_eq!(send(&c.app, Some(&token), None).await.status(), 200);
        let issued =
            c.fx.issuer
                .issue(TokenRequest::new("bob", "s2", Duration::from_secs(60)))
                .await
                .unwrap();
        assert_eq!(
            send(&c.app, Some(&issued.token), Some("s2")).await.status(),
            200
        );
    }
}

#[tokio::test]
async fn missing_or_non_bearer_credentials() {
    let c = case(keys().remove(0));
    let response = send(&c.app, None, None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let request = http::Request::builder()
        .header("authorization", "Basic YWxpY2U6cHc=")
        .body(String::new())
        .unwrap();
    let response = tower::ServiceExt::oneshot(c.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn alg_none() {
    let c = case(keys().remove(0));
    let claims = b64(&good_claims());
    for alg in ["none", "None", "NONE"] {
        let head = b64(&json!({"alg": alg, "typ": "at+jwt", "kid": "k1"}));
        c.expect_invalid(
            &format!("{head}.{claims}."),
            "alg none, empty signature",
            NO_SIGNATURE,
        )
        .await;
        c.expect_invalid(
            &format!("{head}.{claims}.c2ln"),
            "alg none with a signature",
            &format!("algorithm {alg} is not accepted"),
        )
        .await;
    }
    let head = b64(&json!({"typ": "at+jwt", "kid": "k1"}));
    c.expect_invalid(
        &format!("{head}.{claims}.c2ln"),
        "no alg",
        "algorithm none is not accepted",
    )
    .await;
}

#[tokio::test]
async fn algorithm_confusion_hs256_with_the_public_key() {
    for key in keys().into_iter().take(2) {
        let c = case(key);
        let public = c.key.public_key_bytes();
        assert!(!public.is_empty());
        let forged = jsonwebtoken::encode(
            &header(Algorithm::HS256, "k1"),
            &good_claims(),
            &EncodingKey::from_secret(&public),
        )
        .unwrap();
        c.expect_invalid(
            &forged,
            "HS256 signed with the public key",
            "algorithm HS256 is not allowed for key k1",
        )
        .await;
        // The JWK form of the public key as the secret, too.
        let jwk = serde_json::to_vec(c.key.public_jwk().unwrap()).unwrap();
        let forged = jsonwebtoken::encode(
            &header(Algorithm::HS256, "k1"),
            &good_claims(),
            &EncodingKey::from_secret(&jwk),
        )
        .unwrap();
        c.expect_invalid(
            &forged,
            "HS256 signed with the JWK",
            "algorithm HS256 is not allowed for key k1",
        )
        .await;
    }
}

#[tokio::test]
async fn unknown_and_hostile_kids() {
    let c = case(keys().remove(0));
    let other = SigningKey::generate_ed25519("k2").unwrap();
    let token = other
        .sign_with_header(&header(Algorithm::EdDSA, "k2"), &good_claims())
        .unwrap();
    c.expect_invalid(&token, "unknown kid", UNKNOWN_KID).await;
    for kid in [
        "../../../../etc/passwd",
        "/dev/null",
        "k1' OR '1'='1",
        "k1\"; DROP TABLE keys; --",
        "k1\u{0}",
        "",
        &"k".repeat(65),
    ] {
        let token = c
            .key
            .sign_with_header(&header(Algorithm::EdDSA, kid), &good_claims())
            .unwrap();
        c.expect_invalid(&token, kid, INVALID_KID).await;
    }
    let mut h = header(Algorithm::EdDSA, "k1");
    h.kid = None;
    c.expect_invalid(
        &c.key.sign_with_header(&h, &good_claims()).unwrap(),
        "no kid",
        "token has no key id",
    )
    .await;
}

#[tokio::test]
async fn jku_and_x5u_are_never_followed() {
    let c = case(keys().remove(0));
    // An attacker's key, advertised through jku / x5u: the verifier only
    // knows its configured keys, so the token is refused without any fetch.
    let attacker = SigningKey::generate_ed25519("attacker").unwrap();
    let mut h = header(Algorithm::EdDSA, "attacker");
    h.jku = Some("http://127.0.0.1:9/jwks.json".to_owned());
    h.x5u = Some("http://127.0.0.1:9/cert.pem".to_owned());
    let token = attacker.sign_with_header(&h, &good_claims()).unwrap();
    c.expect_invalid(&token, "jku / x5u", UNKNOWN_KID).await;
    // Same with the known kid: the attacker's signature does not verify.
    let mut h = header(Algorithm::EdDSA, "k1");
    h.jku = Some("http://127.0.0.1:9/jwks.json".to_owned());
    let token = attacker.sign_with_header(&h, &good_claims()).unwrap();
    c.expect_invalid(&token, "jku with the known kid", BAD_SIGNATURE)
        .await;
}

#[tokio::test]
async fn time_claims() {
    let c = case(keys().remove(0));
    let mut claims = good_claims();
    claims["iat"] = json!(T0 - 1000);
    claims["nbf"] = json!(T0 - 1000);
    claims["exp"] = json!(T0 - 31);
    c.expect_invalid(
        &c.sign(&claims),
        "expired beyond the leeway",
        "token expired",
    )
    .await;
    // Inside the 30 s leeway it still passes.
    claims["exp"] = json!(T0 - 29);
    assert_eq!(
        send(&c.app, Some(&c.sign(&claims)), None).await.status(),
        200
    );

    let mut claims = good_claims();
    claims["nbf"] = json!(T0 + 300);
    claims["exp"] = json!(T0 + 600);
    c.expect_invalid(
        &c.sign(&claims),
        "nbf in the future",
        "token is not valid yet",
    )
    .await;

    let mut claims = good_claims();
    claims["iat"] = json!(T0 + 300);
    claims["exp"] = json!(T0 + 600);
    c.expect_invalid(
        &c.sign(&claims),
        "iat in the future",
        "token is issued in the future",
    )
    .await;

    let mut claims = good_claims();
    claims["exp"] = json!(T0 + 30 * 24 * 3600);
    c.expect_invalid(
        &c.sign(&claims),
        "lifetime too long",
        "token lifetime is out of bounds",
    )
    .await;

    // The token turns invalid as the clock passes exp + leeway.
    let token = c.sign(&good_claims());
    c.fx.clock.advance(Duration::from_secs(330));
    c.expect_invalid(&token, "expired by the clock", "token expired")
        .await;
}

#[tokio::test]
async fn wrong_json_types_and_missing_claims() {
    let c = case(keys().remove(0));
    for (claim, value) in [
        ("exp", json!("1767225900")),
        ("exp", json!(1.7672259e9)),
        ("exp", json!(-1)),
        ("exp", json!(null)),
        ("nbf", json!("1767225600")),
        ("nbf", json!([T0])),
        ("iat", json!({"t": T0})),
        ("aud", json!(42)),
        ("sub", json!(7)),
    ] {
        let mut claims = good_claims();
        claims[claim] = value.clone();
        c.expect_invalid(&c.sign(&claims), &format!("{claim} = {value}"), BAD_CLAIMS)
            .await;
    }
    for claim in [
        "iss", "sub", "aud", "sid", "jti", "iat", "nbf", "exp", "typ",
    ] {
        let mut claims = good_claims();
        claims.as_object_mut().unwrap().remove(claim);
        c.expect_invalid(&c.sign(&claims), &format!("missing {claim}"), BAD_CLAIMS)
            .await;
    }
}

#[tokio::test]
async fn wrong_aud_iss_typ() {
    let c = case(keys().remove(0));
    for (claim, value, description) in [
        ("aud", json!("other-api"), "wrong audience"),
        ("aud", json!(["x", "y"]), "wrong audience"),
        ("iss", json!("https://evil.test"), "wrong issuer"),
        ("typ", json!("refresh"), WRONG_TYPE),
    ] {
        let mut claims = good_claims();
        claims[claim] = value;
        c.expect_invalid(&c.sign(&claims), claim, description).await;
    }
    let mut claims = good_claims();
    claims["aud"] = json!(["x", AUD]);
    assert_eq!(
        send(&c.app, Some(&c.sign(&claims)), None).await.status(),
        200
    );
    for typ in [Some("JWT"), None, Some("at+JWT ")] {
        let mut h = header(Algorithm::EdDSA, "k1");
        h.typ = typ.map(str::to_owned);
        let token = c.key.sign_with_header(&h, &good_claims()).unwrap();
        c.expect_invalid(&token, &format!("header typ {typ:?}"), WRONG_TYPE)
            .await;
    }
    let head = b64(&json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1", "crit": ["exp"]}));
    let token = c.sign(&good_claims());
    let rest = token.split_once('.').unwrap().1;
    c.expect_invalid(
        &format!("{head}.{rest}"),
        "crit",
        "critical header extensions are not supported",
    )
    .await;
}

#[tokio::test]
async fn tampered_stripped_oversized_and_garbage() {
    let c = case(keys().remove(0));
    let token = c.sign(&good_claims());
    let (head, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let mut claims = good_claims();
    claims["sub"] = json!("mallory");
    c.expect_invalid(
        &format!("{head}.{}.{signature}", b64(&claims)),
        "tampered payload",
        BAD_SIGNATURE,
    )
    .await;
    let mut sig = signature.as_bytes().to_vec();
    sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
    let sig = String::from_utf8(sig).unwrap();
    c.expect_invalid(
        &format!("{head}.{}.{sig}", rest.split_once('.').unwrap().0),
        "tampered signature",
        BAD_SIGNATURE,
    )
    .await;
    let payload = rest.split_once('.').unwrap().0;
    c.expect_invalid(
        &format!("{head}.{payload}."),
        "stripped signature",
        NO_SIGNATURE,
    )
    .await;
    c.expect_invalid(&format!("{head}.{payload}"), "two parts", NOT_THREE_PARTS)
        .await;
    c.expect_invalid(&format!("{token}.extra"), "four parts", NOT_THREE_PARTS)
        .await;

    let mut claims = good_claims();
    claims["pad"] = json!("x".repeat(9 * 1024));
    let big = c.sign(&claims);
    assert!(big.len() > 8 * 1024);
    c.expect_invalid(
        &big,
        "over 8 KiB",
        &format!("token of {} bytes exceeds the 8192-byte limit", big.len()),
    )
    .await;

    for (garbage, description) in [
        ("!!!.@@@.###", BAD_HEADER),
        ("a.b.c", BAD_HEADER),
        // `{}`: a header without `alg`.
        ("e30.e30.e30", "algorithm none is not accepted"),
        ("....", NOT_THREE_PARTS),
        ("ey.ey.ey", BAD_HEADER),
        ("%ZZ.%ZZ.%ZZ", BAD_HEADER),
        ("~~~", NOT_THREE_PARTS),
    ] {
        c.expect_invalid(garbage, garbage, description).await;
    }
    let request = http::Request::builder()
        .header(
            "authorization",
            http::HeaderValue::from_bytes(b"Bearer \xff\xfe.\x80.\x81").unwrap(),
        )
        .body(String::new())
        .unwrap();
    let response = tower::ServiceExt::oneshot(c.app.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "non-UTF-8 token");
    // Not a readable Bearer credential: the bare challenge.
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer",
        "non-UTF-8 token"
    );
    let head_bad = URL_SAFE_NO_PAD.encode(b"{\"alg\":\"EdDSA\",");
    c.expect_invalid(
        &format!("{head_bad}.{payload}.{signature}"),
        "truncated JSON header",
        BAD_HEADER,
    )
    .await;
    c.expect_invalid(
        &format!("{head}.{payload}!.{signature}"),
        "bad base64 payload",
        // The signature is checked before the payload is decoded.
        BAD_SIGNATURE,
    )
    .await;
    c.expect_invalid(
        &format!("{head}.{payload}.{signature}*"),
        "bad base64 signature",
        "token signature cannot be decoded",
    )
    .await;
}

#[tokio::test]
async fn correctly_signed_parts_that_do_not_decode() {
    // Signed over the bad parts, so that only the decoding can reject them.
    let secret = [7u8; 32];
    let c = case(SigningKey::hs256("k1", &secret).unwrap());
    let key = EncodingKey::from_secret(&secret);
    let head = b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}));
    for (payload, what) in [
        (format!("{}!", b64(&good_claims())), "bad base64 payload"),
        (
            URL_SAFE_NO_PAD.encode(b"{\"iss\":"),
            "truncated JSON payload",
        ),
        (URL_SAFE_NO_PAD.encode(b"[1,2]"), "payload not an object"),
    ] {
        let message = format!("{head}.{payload}");
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
        c.expect_invalid(&format!("{message}.{signature}"), what, BAD_CLAIMS)
            .await;
    }
}

#[tokio::test]
async fn revoked_jti_and_session() {
    let c = case(keys().remove(0));
    let token = c.sign(&good_claims());
    assert_eq!(send(&c.app, Some(&token), None).await.status(), 200);
    c.fx.revocations
        .insert(Revocation::Token("j1".into()), T0 + 400)
        .unwrap();
    c.expect_invalid(&token, "revoked jti", "token is revoked")
        .await;

    let mut claims = good_claims();
    claims["jti"] = json!("j2");
    claims["sid"] = json!("s9");
    let token = c.sign(&claims);
    assert_eq!(send(&c.app, Some(&token), None).await.status(), 200);
    c.fx.revocations
        .insert(Revocation::Session("s9".into()), T0 + 400)
        .unwrap();
    c.expect_invalid(&token, "revoked session", "session is revoked")
        .await;
}

#[tokio::test]
async fn another_sessions_token() {
    let c = case(keys().remove(0));
    let token = c.sign(&good_claims());
    assert_eq!(send(&c.app, Some(&token), Some("s1")).await.status(), 200);
    let response = send(&c.app, Some(&token), Some("s2")).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        challenge("token belongs to another session")
    );
}

#[tokio::test]
async fn rotated_keys_verify_during_the_overlap_only() {
    let c = case(keys().remove(0));
    // An hour-long token: still inside its lifetime when its key retires,
    // so only the retirement can reject it.
    let mut claims = good_claims();
    claims["exp"] = json!(T0 + 3600);
    let old = c.sign(&claims);
    c.fx.ring.rotate(
        SigningKey::generate_ed25519("k2").unwrap(),
        Duration::from_secs(600),
    );
    assert_eq!(send(&c.app, Some(&old), None).await.status(), 200);
    let new =
        c.fx.issuer
            .issue(TokenRequest::new("alice", "s1", Duration::from_secs(3600)))
            .await
            .unwrap();
    assert!(new.token.len() > 10);
    assert_eq!(send(&c.app, Some(&new.token), None).await.status(), 200);
    c.fx.clock.advance(Duration::from_secs(601));
    c.expect_invalid(&old, "retired key", UNKNOWN_KID).await;
    assert_eq!(send(&c.app, Some(&new.token), None).await.status(), 200);
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn arbitrary_input_is_rejected_without_panic(input in "\\PC{0,300}") {
            let fx = fixture(SigningKey::hs256("k1", &[1u8; 32]).unwrap());
            prop_assert!(fx.verifier.verify(&input).is_err());
        }

        #[test]
        fn arbitrary_three_part_tokens_are_rejected(a in "[A-Za-z0-9_-]{0,80}", b in "[A-Za-z0-9_-]{0,80}", s in "[A-Za-z0-9_-]{0,90}") {
            let fx = fixture(SigningKey::hs256("k1", &[1u8; 32]).unwrap());
            let token = format!("{a}.{b}.{s}");
            prop_assert!(fx.verifier.verify(&token).is_err());
        }
    }
}

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, Request};

use super::*;

/// Checks that an error is of the expected kind.
type Expect = fn(&KeyError) -> bool;

fn request(headers: &[(&str, HeaderValue)]) -> Request<()> {
    let mut builder = Request::builder();
    for (name, value) in headers {
        builder = builder.header(*name, value.clone());
    }
    builder.body(()).unwrap()
}

fn extract(extractor: &impl KeyExtractor, request: &Request<()>) -> Result<ClientKey, KeyError> {
    extractor.extract(&RequestHead::of(request))
}

fn jwt(payload: &str) -> String {
    format!(
        "Bearer eyJhbGciOiJFZERTQSJ9.{}.c2ln",
        URL_SAFE_NO_PAD.encode(payload)
    )
}

#[test]
fn header_key_reads_the_value() {
    let req = request(&[("x-account", HeaderValue::from_static("acct-7"))]);
    let key = extract(&HeaderKey::new("x-account"), &req).unwrap();
    assert_eq!(key.as_bytes(), b"acct-7");
}

#[test]
fn header_key_missing_empty_non_utf8_and_oversized() {
    let extractor = HeaderKey::new("x-account");
    assert!(matches!(
        extract(&extractor, &request(&[])),
        Err(KeyError::Missing { .. })
    ));
    let empty = request(&[("x-account", HeaderValue::from_static(""))]);
    assert!(matches!(
        extract(&extractor, &empty),
        Err(KeyError::Empty { .. })
    ));
    let latin1 = request(&[("x-account", HeaderValue::from_bytes(b"caf\xe9").unwrap())]);
    assert!(matches!(
        extract(&extractor, &latin1),
        Err(KeyError::InvalidEncoding { .. })
    ));
    let huge = "k".repeat(64 * 1024);
    let huge = request(&[("x-account", HeaderValue::from_str(&huge).unwrap())]);
    assert!(matches!(
        extract(&extractor, &huge),
        Err(KeyError::TooLong {
            len: 65536,
            max: 1024,
            ..
        })
    ));
}

#[test]
fn cookie_key_finds_its_pair_among_others() {
    let req = request(&[
        ("cookie", HeaderValue::from_static("a=1; junk; b=2")),
        ("cookie", HeaderValue::from_static("sid=\"abc\"; sid=later")),
    ]);
    let key = extract(&CookieKey::new("sid"), &req).unwrap();
    assert_eq!(key.as_bytes(), b"abc");
}

#[test]
fn cookie_key_broken_syntax_is_typed() {
    let extractor = CookieKey::new("sid");
    let cases: &[(&[u8], Expect)] = &[
        (b"sid=\"abc", |e| {
            matches!(e, KeyError::MalformedCookie { .. })
        }),
        (b"sid=a b", |e| {
            matches!(e, KeyError::MalformedCookie { .. })
        }),
        (b"sid=a,b", |e| {
            matches!(e, KeyError::MalformedCookie { .. })
        }),
        (b"sid=caf\xe9", |e| {
            matches!(e, KeyError::MalformedCookie { .. })
        }),
        (b"sid=", |e| matches!(e, KeyError::Empty { .. })),
        (b"sid=\"\"", |e| matches!(e, KeyError::Empty { .. })),
        (b";;;===;", |e| matches!(e, KeyError::Missing { .. })),
        (b"", |e| matches!(e, KeyError::Missing { .. })),
        (b"sidx=1; xsid=2", |e| matches!(e, KeyError::Missing { .. })),
    ];
    for (raw, check) in cases {
        let req = request(&[("cookie", HeaderValue::from_bytes(raw).unwrap())]);
        let error = extract(&extractor, &req).unwrap_err();
        assert!(
            check(&error),
            "{:?} gave {error:?}",
            String::from_utf8_lossy(raw)
        );
    }
    let huge = format!("sid={}", "v".repeat(64 * 1024));
    let req = request(&[("cookie", HeaderValue::from_str(&huge).unwrap())]);
    assert!(matches!(
        extract(&extractor, &req),
        Err(KeyError::TooLong { .. })
    ));
}

#[test]
fn jwt_subject_is_read_without_verification() {
    let req = request(&[(
        "authorization",
        HeaderValue::from_str(&jwt(r#"{"sub":"user-1","exp":1}"#)).unwrap(),
    )]);
    let key = extract(&JwtSubjectKey::new(), &req).unwrap();
    assert_eq!(key.as_bytes(), b"user-1");
}

#[test]
fn jwt_malformed_tokens_are_typed() {
    let extractor = JwtSubjectKey::new();
    let cases: Vec<(String, Expect)> = vec![
        ("Basic dXNlcjpwYXNz".into(), |e| {
            matches!(e, KeyError::Jwt(JwtKeyError::NotBearer))
        }),
        ("Bearer ".into(), |e| matches!(e, KeyError::Empty { .. })),
        ("Bearer a.b".into(), |e| {
            matches!(e, KeyError::Jwt(JwtKeyError::NotThreeParts))
        }),
        ("Bearer a.b.c.d".into(), |e| {
            matches!(e, KeyError::Jwt(JwtKeyError::NotThreeParts))
        }),
        ("Bearer h.***.s".into(), |e| {
            matches!(e, KeyError::Jwt(JwtKeyError::Base64(_)))
        }),
        (jwt("not json"), |e| {
            matches!(e, KeyError::Jwt(JwtKeyError::Json(_)))
        }),
        (jwt(r#"{"sub":42}"#), |e| {
            matches!(e, KeyError::Jwt(JwtKeyError::Json(_)))
        }),
        (jwt(r#"{"iss":"x"}"#), |e| {
            matches!(e, KeyError::Jwt(JwtKeyError::NoSubject))
        }),
        (jwt(r#"{"sub":""}"#), |e| {
            matches!(e, KeyError::Jwt(JwtKeyError::NoSubject))
        }),
        (format!("Bearer {}", "a".repeat(64 * 1024)), |e| {
            matches!(e, KeyError::TooLong { .. })
        }),
    ];
    for (value, check) in cases {
        let req = request(&[("authorization", HeaderValue::from_str(&value).unwrap())]);
        let error = extract(&extractor, &req).unwrap_err();
        assert!(check(&error), "{value:.40} gave {error:?}");
    }
    let binary = request(&[(
        "authorization",
        HeaderValue::from_bytes(b"Bearer \xff\xfe.\xff.\xff").unwrap(),
    )]);
    assert!(extract(&extractor, &binary).is_err());
}

#[test]
fn fingerprint_needs_the_peer_and_ignores_the_port() {
    let extractor = FingerprintKey::new();
    let mut req = request(&[("user-agent", HeaderValue::from_static("curl/8"))]);
    assert!(matches!(
        extract(&extractor, &req),
        Err(KeyError::NoPeerAddr)
    ));
    req.extensions_mut()
        .insert(PeerAddr("10.1.2.3:1000".parse().unwrap()));
    let first = extract(&extractor, &req).unwrap();
    req.extensions_mut()
        .insert(PeerAddr("10.1.2.3:2000".parse().unwrap()));
    assert_eq!(extract(&extractor, &req).unwrap(), first);
    req.extensions_mut()
        .insert(PeerAddr("10.1.2.4:2000".parse().unwrap()));
    assert_ne!(extract(&extractor, &req).unwrap(), first);
}

#[test]
fn fingerprint_without_any_input_is_missing() {
    let extractor = FingerprintKey::new().with_peer(false);
    assert!(matches!(
        extract(&extractor, &request(&[])),
        Err(KeyError::Missing { .. })
    ));
    let odd = request(&[(
        "user-agent",
        HeaderValue::from_bytes(b"\xff\x00ok").unwrap_or(HeaderValue::from_static("x")),
    )]);
    assert!(extract(&extractor, &odd).is_ok());
}

#[test]
fn or_falls_back_only_on_missing() {
    let extractor = HeaderKey::new("x-account").or(CookieKey::new("sid"));
    let cookie_only = request(&[("cookie", HeaderValue::from_static("sid=s1"))]);
    assert_eq!(extract(&extractor, &cookie_only).unwrap().as_bytes(), b"s1");
    let malformed = request(&[
        ("x-account", HeaderValue::from_static("")),
        ("cookie", HeaderValue::from_static("sid=s1")),
    ]);
    assert!(matches!(
        extract(&extractor, &malformed),
        Err(KeyError::Empty { .. })
    ));
}

#[test]
fn closures_are_extractors() {
    let by_path = |head: &RequestHead<'_>| -> Result<ClientKey, KeyError> {
        Ok(ClientKey::from(head.uri.path()))
    };
    let req = Request::builder().uri("/tenant/9").body(()).unwrap();
    assert_eq!(extract(&by_path, &req).unwrap().as_bytes(), b"/tenant/9");
}

#[test]
fn missing_key_policy() {
    let missing = || Err(KeyError::Missing { what: "x".into() });
    assert!(MissingKeyPolicy::Reject.resolve(missing()).is_err());
    let a = MissingKeyPolicy::SpreadRandomly.resolve(missing()).unwrap();
    let b = MissingKeyPolicy::SpreadRandomly.resolve(missing()).unwrap();
    assert_ne!(a, b);
}

#[test]
fn client_key_debug_does_not_leak_the_key() {
    let key = ClientKey::from("secret-session-value");
    assert!(!format!("{key:?}").contains("secret"));
}

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::BodyExt;
use tower::{ServiceExt, service_fn};

use super::*;

/// An upstream that answers with the request headers it received, one
/// `name: value` line each, and a few hop-by-hop headers of its own.
fn echo() -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    service_fn(|request: Request<Body>| async move {
        let mut lines: Vec<String> = request
            .headers()
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect();
        lines.sort();
        let mut response = Response::new(Body::from(lines.join("\n")));
        let h = response.headers_mut();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-upstream-secret"),
        );
        h.insert("x-upstream-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-app", HeaderValue::from_static("kept"));
        Ok::<_, Infallible>(response)
    })
}

fn request(peer: &str) -> http::request::Builder {
    let peer: SocketAddr = peer.parse().unwrap();
    let mut builder = Request::get("/path").header(header::HOST, "app.example");
    builder.extensions_mut().unwrap().insert(PeerAddr(peer));
    builder
}

async fn send(
    layer: &ProxyHeadersLayer,
    request: Request<Body>,
) -> (StatusCode, HeaderMap, String) {
    let response = layer.layer(echo()).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_both_ways() {
    let layer = ProxyHeadersLayer::default();
    let request = request("192.0.2.7:4000")
        .header(header::CONNECTION, "close, x-secret")
        .header("x-secret", "named by Connection")
        .header("keep-alive", "timeout=1")
        .header(header::TE, "gzip")
        .header(header::UPGRADE, "websocket")
        .header(header::PROXY_AUTHORIZATION, "Basic Zm9vOmJhcg==")
        .header("proxy-connection", "keep-alive")
        .header("x-kept", "yes")
        .body(Body::empty())
        .unwrap();
    let (status, headers, upstream) = send(&layer, request).await;
    assert_eq!(status, StatusCode::OK);
    for name in [
        "connection",
        "x-secret",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
    ] {
        assert!(
            !upstream.contains(&format!("{name}: ")),
            "{name} reached upstream:\n{upstream}"
        );
    }
    assert!(upstream.contains("x-kept: yes"));
    assert!(upstream.contains("host: app.example"));
    for name in ["connection", "x-upstream-secret", "keep-alive"] {
        assert!(!headers.contains_key(name), "{name} reached the client");
    }
    assert_eq!(headers["x-app"], "kept");
}

#[tokio::test]
async fn te_trailers_survives_for_grpc() {
    let layer = ProxyHeadersLayer::default();
    let request = request("192.0.2.7:4000")
        .header(header::TE, "trailers")
        .body(Body::empty())
        .unwrap();
    let (_, _, upstream) = send(&layer, request).await;
    assert!(upstream.contains("te: trailers"), "{upstream}");
}

#[tokio::test]
async fn an_untrusted_client_cannot_forge_its_address() {
    let layer = ProxyHeadersLayer::new(["10.0.0.0/8".parse().unwrap()]);
    let request = request("192.0.2.7:4000")
        .header("x-forwarded-for", "1.2.3.4")
        .header(header::FORWARDED, "for=1.2.3.4")
        .header(header::VIA, "1.1 evil")
        .body(Body::empty())
        .unwrap();
    let (_, _, upstream) = send(&layer, request).await;
    assert!(
        upstream.contains("x-forwarded-for: 192.0.2.7\n"),
        "{upstream}"
    );
    assert!(
        upstream.contains("forwarded: for=192.0.2.7;proto=http\n"),
        "{upstream}"
    );
    assert!(upstream.contains("via: 1.1 foresight"), "{upstream}");
    assert!(upstream.contains("x-forwarded-proto: http"), "{upstream}");
    assert!(
        !upstream.contains("1.2.3.4") && !upstream.contains("evil"),
        "{upstream}"
    );
}

#[tokio::test]
async fn a_trusted_proxy_chain_is_extended() {
    let layer = ProxyHeadersLayer::new(["10.0.0.0/8".parse().unwrap()]);
    let request = request("10.1.2.3:4000")
        .header("x-forwarded-for", "198.51.100.9")
        .header(header::FORWARDED, "for=198.51.100.9")
        .body(Body::empty())
        .unwrap();
    let (_, _, upstream) = send(&layer, request).await;
    assert!(
        upstream.contains("x-forwarded-for: 198.51.100.9, 10.1.2.3\n"),
        "{upstream}"
    );
    assert!(
        upstream.contains("forwarded: for=198.51.100.9, for=10.1.2.3;proto=http"),
        "{upstream}"
    );
}

#[tokio::test]
async fn host_rules() {
    let layer = ProxyHeadersLayer::default();
    let two = request("192.0.2.7:1")
        .header(header::HOST, "evil.example")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(&layer, two).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "more than one Host header\n")
    );

    let mut missing = Request::get("/").body(Body::empty()).unwrap();
    missing
        .extensions_mut()
        .insert(PeerAddr("192.0.2.7:1".parse().unwrap()));
    let (status, _, body) = send(&layer, missing).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "missing Host header\n")
    );

    let bad = Request::get("/")
        .header(header::HOST, "a b")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(&layer, bad).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "invalid Host header\n")
    );

    let absolute = Request::get("http://real.example/x")
        .header(header::HOST, "other.example")
        .body(Body::empty())
        .unwrap();
    let (status, _, upstream) = send(&layer, absolute).await;
    assert_eq!(status, StatusCode::OK);
    assert!(upstream.contains("host: real.example"), "{upstream}");
}

#[tokio::test]
async fn connect_is_refused() {
    let layer = ProxyHeadersLayer::default();
    let connect = Request::connect("app.example:443")
        .header(header::HOST, "app.example:443")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(&layer, connect).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body, "CONNECT is not supported\n");
    assert!(headers.contains_key(header::ALLOW));
}

#[test]
fn addresses_are_written_as_display_writes_them() {
    let octets = [0u8, 1, 9, 10, 42, 99, 100, 109, 110, 199, 200, 250, 255];
    for a in octets {
        for b in octets {
            let ip = IpAddr::from([a, b, 255 - a, b / 2]);
            let mut written = String::new();
            push_ip(&mut written, ip);
            assert_eq!(written, ip.to_string());
        }
    }
    for text in ["::1", "2001:db8::7", "fe80::1:2:3:4"] {
        let ip: IpAddr = text.parse().unwrap();
        let mut written = String::new();
        push_ip(&mut written, ip);
        assert_eq!(written, text);
    }
}

#[tokio::test]
async fn an_ipv6_client_is_bracketed_in_forwarded_only() {
    let layer = ProxyHeadersLayer::default();
    let request = request("[2001:db8::7]:4000").body(Body::empty()).unwrap();
    let (_, _, upstream) = send(&layer, request).await;
    assert!(
        upstream.contains("forwarded: for=\"[2001:db8::7]\";proto=http"),
        "{upstream}"
    );
    assert!(
        upstream.contains("x-forwarded-for: 2001:db8::7\n"),
        "{upstream}"
    );
    assert!(upstream.contains("via: 1.1 foresight"), "{upstream}");
}

#[tokio::test]
async fn connection_names_headers_in_any_case_and_may_name_te() {
    let layer = ProxyHeadersLayer::default();
    let request = request("192.0.2.7:4000")
        .header(header::CONNECTION, "X-Secret , TE")
        .header("x-secret", "named by Connection")
        .header(header::TE, "trailers")
        .header("x-kept", "yes")
        .body(Body::empty())
        .unwrap();
    let (_, _, upstream) = send(&layer, request).await;
    for name in ["connection", "x-secret", "te"] {
        assert!(
            !upstream.contains(&format!("{name}: ")),
            "{name} reached upstream:\n{upstream}"
        );
    }
    assert!(upstream.contains("x-kept: yes"), "{upstream}");
}

#[test]
fn every_hop_by_hop_name_passes_the_length_check() {
    for (at, name) in HOP_BY_HOP.iter().enumerate() {
        assert_eq!(hop_by_hop_index(name), Some(at), "{name}");
    }
    // Names of the same lengths that are not hop-by-hop.
    for name in [
        "user-agent",
        "x-forwarded-proto",
        "x-foresight-attempt",
        "host",
    ] {
        assert_eq!(hop_by_hop_index(&HeaderName::from_static(name)), None);
    }
}

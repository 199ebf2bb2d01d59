//! [`ProxyHeadersLayer`]: what a reverse proxy owes the request and the
//! response, per RFC 9110 §7.6.
//!
//! - `CONNECT` is refused (405): the gateway is not a tunnel.
//! - One `Host`: a second one is a 400; a request-target in absolute form
//!   replaces it (RFC 9112 §3.2.2); an HTTP/1.1 request without one is a
//!   400; a value that is not an authority is a 400.
//! - Hop-by-hop headers are stripped both ways: `Connection` and every
//!   header it names, `Keep-Alive`, `Proxy-Connection`, `TE` (but
//!   `TE: trailers`, which gRPC needs), `Trailer`, `Transfer-Encoding`,
//!   `Upgrade`, `Proxy-Authorization`, `Proxy-Authenticate`.
//! - `X-Forwarded-For`, `X-Forwarded-Proto`, `Forwarded` and `Via`: a
//!   trusted peer's values are extended, anyone else's replaced, so a client
//!   cannot forge its address.
//!
//! Hand-written because no maintained crate does this as a Tower layer:
//! tower-http has the pieces for setting headers, not the proxy rules.

use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use foresight::core::key::PeerAddr;
use futures_util::future::{Either, MapOk, Ready, TryFutureExt, ready};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use ipnet::IpNet;
use tower::{Layer, Service};

/// Applies the proxy rules of the [module docs](self). Cloning shares the
/// trusted-proxy list.
#[derive(Clone, Debug, Default)]
pub struct ProxyHeadersLayer {
    trusted: Arc<[IpNet]>,
}

impl ProxyHeadersLayer {
    /// Forwarding headers from these peers are extended; from anyone else
    /// they are replaced.
    pub fn new(trusted: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            trusted: trusted.into_iter().collect(),
        }
    }
}

impl<S> Layer<S> for ProxyHeadersLayer {
    type Service = ProxyHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProxyHeaders {
            inner,
            trusted: self.trusted.clone(),
        }
    }
}

/// Service of [`ProxyHeadersLayer`].
#[derive(Clone, Debug)]
pub struct ProxyHeaders<S> {
    inner: S,
    trusted: Arc<[IpNet]>,
}

/// Hop-by-hop whatever `Connection` says.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static VIA_VALUE: &str = "1.1 foresight";

/// The place of `name` in [`HOP_BY_HOP`], if it is there. Called for
/// every name of every message both ways, so the length rules out most
/// names before any comparison.
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    let name = name.as_str();
    if !matches!(name.len(), 2 | 7 | 10 | 16..=19) {
        return None;
    }
    HOP_BY_HOP.iter().position(|hop| hop.as_str() == name)
}

/// Removes the hop-by-hop headers of `headers`, those `Connection` names
/// too. `TE: trailers` is kept when `keep_te_trailers` (requests) and
/// `Connection` does not name `TE`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_te_trailers: bool) {
    // One pass over the message's few names finds the hop-by-hop ones, so
    // that only those present are looked up and removed; most requests
    // carry none. `Connection` is one of them, so a header it names is
    // never missed.
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(at) = hop_by_hop_index(name) {
            present |= 1 << at;
        }
    }
    if present == 0 {
        return;
    }
    // What `Connection` names: usually `keep-alive` or `close`, neither a
    // header to look up. A hop-by-hop name goes with the others below; any
    // other name is removed if the message has it (names are compared
    // without building a `HeaderName` from each token).
    let mut te_named = false;
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        let tokens = value.to_str().ok().into_iter().flat_map(|v| v.split(','));
        for token in tokens.map(str::trim).filter(|t| !t.is_empty()) {
            if HOP_BY_HOP
                .iter()
                .any(|hop| token.eq_ignore_ascii_case(hop.as_str()))
            {
                te_named |= token.eq_ignore_ascii_case(header::TE.as_str());
                continue;
            }
            if let Some(name) = headers
                .keys()
                .find(|name| token.eq_ignore_ascii_case(name.as_str()))
            {
                named.push(name.clone());
            }
        }
    }
    for name in &named {
        headers.remove(name);
    }
    let te_at = 3;
    debug_assert_eq!(HOP_BY_HOP[te_at], header::TE);
    let te_trailers = keep_te_trailers
        && !te_named
        && present & (1 << te_at) != 0
        && headers
            .get(header::TE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for (at, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << at) != 0 {
            headers.remove(name);
        }
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Why a request is refused before it is forwarded.
#[derive(Clone, Copy, Debug)]
struct Refusal(StatusCode, &'static str);

fn refuse(Refusal(status, message): Refusal) -> Response<Body> {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        );
    }
    response
}

/// Checks and normalises `Host`; `Err` is the response to send instead.
fn check_host<B>(request: &mut Request<B>) -> Result<(), Refusal> {
    if request.method() == Method::CONNECT {
        return Err(Refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is not supported\n",
        ));
    }
    let hosts = request.headers().get_all(header::HOST).iter().count();
    if hosts > 1 {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "more than one Host header\n",
        ));
    }
    if let Some(authority) = request.uri().authority().cloned() {
        // Absolute form: the request-target's authority wins.
        let value = HeaderValue::try_from(authority.as_str())
            .map_err(|_| Refusal(StatusCode::BAD_REQUEST, "invalid authority\n"))?;
        request.headers_mut().insert(header::HOST, value);
        return Ok(());
    }
    match request.headers().get(header::HOST) {
        Some(host) => {
            if http::uri::Authority::try_from(host.as_bytes()).is_err() {
                return Err(Refusal(StatusCode::BAD_REQUEST, "invalid Host header\n"));
            }
            Ok(())
        }
        None if request.version() == Version::HTTP_11 => {
            Err(Refusal(StatusCode::BAD_REQUEST, "missing Host header\n"))
        }
        None => Ok(()),
    }
}

/// The forwarding headers a client may not set unless its peer is trusted.
fn is_forwarding(name: &HeaderName) -> bool {
    name == X_FORWARDED_FOR
        || name == X_FORWARDED_PROTO
        || name == header::FORWARDED
        || name == header::VIA
}

/// Appends `ip` as `Display` writes it; an IPv4 address without the
/// formatting machinery, as it is written once or twice per request.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

/// `previous, next`, or `next` alone.
fn extended(previous: Option<&HeaderValue>, next: &str) -> String {
    match previous.and_then(|v| v.to_str().ok()) {
        Some(previous) => format!("{previous}, {next}"),
        None => next.to_owned(),
    }
}

impl<S> ProxyHeaders<S> {
    fn forwarding(&self, headers: &mut HeaderMap, peer: Option<IpAddr>) {
        let trusted = peer.is_some_and(|ip| self.trusted.iter().any(|net| net.contains(&ip)));
        // One pass over the names first: most clients send none of them.
        if !trusted && headers.keys().any(is_forwarding) {
            headers.remove(&X_FORWARDED_FOR);
            headers.remove(&X_FORWARDED_PROTO);
            headers.remove(header::FORWARDED);
            headers.remove(header::VIA);
        }
        let Some(ip) = peer else { return };
        let mut node = String::with_capacity(64);
        node.push_str(if ip.is_ipv4() { "for=" } else { "for=\"[" });
        let at = node.len();
        push_ip(&mut node, ip);
        let xff = extended(headers.get(&X_FORWARDED_FOR), &node[at..]);
        if let Ok(value) = HeaderValue::try_from(xff) {
            headers.insert(X_FORWARDED_FOR.clone(), value);
        }
        if !headers.contains_key(&X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
        }
        node.push_str(if ip.is_ipv4() {
            ";proto=http"
        } else {
            "]\";proto=http"
        });
        let forwarded = match headers.get(header::FORWARDED) {
            Some(previous) => extended(Some(previous), &node),
            None => node,
        };
        if let Ok(value) = HeaderValue::try_from(forwarded) {
            headers.insert(header::FORWARDED, value);
        }
        let via = match headers.get(header::VIA) {
            Some(previous) => HeaderValue::try_from(extended(Some(previous), VIA_VALUE)).ok(),
            None => Some(HeaderValue::from_static(VIA_VALUE)),
        };
        if let Some(value) = via {
            headers.insert(header::VIA, value);
        }
    }
}

type StripResponse<B> = fn(Response<B>) -> Response<Body>;

impl<S, B, RB> Service<Request<B>> for ProxyHeaders<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    RB: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    RB::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future =
        Either<Ready<Result<Response<Body>, S::Error>>, MapOk<S::Future, StripResponse<RB>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Err(refusal) = check_host(&mut request) {
            return Either::Left(ready(Ok(refuse(refusal))));
        }
        strip_hop_by_hop(request.headers_mut(), true);
        let peer = request.extensions().get::<PeerAddr>().map(|p| p.0.ip());
        self.forwarding(request.headers_mut(), peer);
        let strip: StripResponse<RB> = |mut response| {
            strip_hop_by_hop(response.headers_mut(), false);
            response.map(Body::new)
        };
        Either::Right(self.inner.call(request).map_ok(strip))
    }
}

#[cfg(test)]
mod tests;

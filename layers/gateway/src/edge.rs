//! The public service: tower-http's edge hygiene around the proxy rules
//! and the Foresight routing tier.

mod headers;

use std::convert::Infallible;

use axum::body::Body;
use http::header::{
    AUTHORIZATION, COOKIE, HeaderName, HeaderValue, PROXY_AUTHORIZATION, SET_COOKIE,
};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tower::{Service, ServiceBuilder};
use tower_http::ServiceBuilderExt as _;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestId, RequestId};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

use self::headers::EdgeHeadersLayer;
use crate::config::Config;
use crate::proxy_headers::ProxyHeadersLayer;

const NEXT_TOKEN: HeaderName = HeaderName::from_static("x-foresight-next-token");

/// Headers that never reach a log: credentials, cookies and tokens.
pub const SENSITIVE_HEADERS: [HeaderName; 4] =
    [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, NEXT_TOKEN];

static REQUEST_SENSITIVE: [HeaderName; 4] = SENSITIVE_HEADERS;
static RESPONSE_SENSITIVE: [HeaderName; 2] = [SET_COOKIE, NEXT_TOKEN];

/// Makes the `x-request-id` of a request that has none: a random UUID
/// (version 4, RFC 9562), drawn from the thread's CSPRNG (reseeded from
/// the system), which, unlike a system call per request, costs a few
/// hundred instructions.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let uuid = uuid_v4(rand::random());
        HeaderValue::from_bytes(&uuid).ok().map(RequestId::new)
    }
}

/// `random` as the text of a version 4 UUID: 122 random bits, the version
/// and the variant set, lowercase hex with dashes.
fn uuid_v4(random: u128) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = (random & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (index, byte) in bits.to_be_bytes().into_iter().enumerate() {
        if matches!(index, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 0xf)];
        at += 2;
    }
    text
}

/// Wraps `routing` (the Foresight routing tier over the pool) in, outermost
/// first: a panic catcher (500), sensitive-header marking and request ids
/// (`x-request-id`, set when absent and echoed on the response) in one
/// layer of our own (`edge/headers.rs`), a trace span per request, CORS for the
/// configured origins, the request timeout
/// (504), the body read timeout (408), the body limit (413) and the proxy
/// rules of [`ProxyHeadersLayer`]. Every failure is a response: the
/// service never fails.
pub fn public_service<R, RB>(
    routing: R,
    config: &Config,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static
where
    R: Service<Request<Body>, Response = Response<RB>, Error = Infallible> + Clone + Send + 'static,
    R::Future: Send + 'static,
    RB: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    RB::Error: Into<axum::BoxError>,
{
    let limits = &config.limits;
    let cors = (!config.cors.allow_origins.is_empty()).then(|| {
        let origins: Vec<HeaderValue> = config
            .cors
            .allow_origins
            .iter()
            .filter_map(|o| HeaderValue::try_from(o.get_ref().as_str()).ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods(tower_http::cors::Any)
            .allow_headers([AUTHORIZATION, http::header::CONTENT_TYPE])
            .expose_headers([NEXT_TOKEN])
    });
    ServiceBuilder::new()
        .map_response_body(Body::new)
        .layer(CatchPanicLayer::new())
        .layer(EdgeHeadersLayer::new(
            RandomRequestId,
            &REQUEST_SENSITIVE,
            &RESPONSE_SENSITIVE,
        ))
        .layer(TraceLayer::new_for_http())
        .option_layer(cors)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            limits.request_timeout,
        ))
        .map_response_body(Body::new)
        .layer(RequestBodyTimeoutLayer::new(limits.request_timeout))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .map_request_body(Body::new)
        .layer(ProxyHeadersLayer::new(
            config.proxy.trusted_proxies.iter().copied(),
        ))
        .map_future(|future| -> RoutingFuture<RB> { Box::pin(future) })
        .service(routing)
}

/// The routing tier's response future, boxed once: each layer of the edge
/// moves its inner future when it builds its own, and one allocation costs
/// less than moving the routing tier's state machine once per layer
/// (measured with callgrind: see `benches/README.md`).
type RoutingFuture<RB> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<RB>, Infallible>> + Send>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids() {
        let text = uuid_v4(u128::MAX);
        assert_eq!(&text, b"ffffffff-ffff-4fff-bfff-ffffffffffff");
        let text = uuid_v4(0);
        assert_eq!(&text, b"00000000-0000-4000-8000-000000000000");
        let text = uuid_v4(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(&text, b"01234567-89ab-4def-8123-456789abcdef");
    }

    #[test]
    fn request_ids_differ() {
        let request = Request::new(());
        let ids: std::collections::HashSet<_> = (0..1000)
            .map(|_| RandomRequestId.make_request_id(&request).unwrap())
            .map(|id| id.header_value().clone())
            .collect();
        assert_eq!(ids.len(), 1000);
    }
}

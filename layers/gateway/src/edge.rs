//! The public service: tower-http's edge hygiene around the proxy rules
//! and the Foresight routing tier.

use std::convert::Infallible;
use std::sync::Arc;

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
use tower_http::request_id::MakeRequestUuid;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::proxy_headers::ProxyHeadersLayer;

/// Headers that never reach a log: credentials, cookies and tokens.
pub const SENSITIVE_HEADERS: [HeaderName; 4] = [
    AUTHORIZATION,
    COOKIE,
    PROXY_AUTHORIZATION,
    HeaderName::from_static("x-foresight-next-token"),
];

/// Wraps `routing` (the Foresight routing tier over the pool) in, outermost
/// first: a panic catcher (500), sensitive-header marking, request ids
/// (`x-request-id`, set when absent and echoed on the response), a trace
/// span per request, CORS for the configured origins, the request timeout
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
            .expose_headers([HeaderName::from_static("x-foresight-next-token")])
    });
    let sensitive: Arc<[HeaderName]> = SENSITIVE_HEADERS.into();
    ServiceBuilder::new()
        .map_response_body(Body::new)
        .layer(CatchPanicLayer::new())
        .sensitive_request_headers(sensitive.clone())
        .sensitive_response_headers(Arc::from([SET_COOKIE, SENSITIVE_HEADERS[3].clone()]))
        .set_x_request_id(MakeRequestUuid)
        .layer(TraceLayer::new_for_http())
        .propagate_x_request_id()
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
        .service(routing)
}

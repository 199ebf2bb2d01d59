//! Shared helpers of the integration tests.
// Each test crate uses some of these helpers, and they are `pub` to be
// reachable from it.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use foresight_core::edge::{EdgeBody, ErrorResponseLayer};
use foresight_core::signal::Forecast;
use foresight_token::{
    KeyRing, LocalIssuer, ManualClock, MemoryRevocations, SharedClock, SigningKey, TokenError,
    TokenPrefetchLayer, TokioClock, Verifier,
};
use http::{Request, Response};
use tower::util::BoxCloneService;
use tower::{Layer, ServiceExt, service_fn};

pub const ISS: &str = "https://auth.test";
pub const AUD: &str = "api";
/// 2026-01-01T00:00:00Z.
pub const T0: u64 = 1_767_225_600;

pub struct Fixture {
    pub clock: ManualClock,
    pub shared_clock: SharedClock,
    pub ring: KeyRing,
    pub issuer: LocalIssuer,
    pub verifier: Verifier,
    pub revocations: Arc<MemoryRevocations>,
}

pub fn fixture(key: SigningKey) -> Fixture {
    let clock = ManualClock::new(Duration::from_secs(T0));
    let shared_clock: SharedClock = Arc::new(clock.clone());
    let ring = KeyRing::new(key, shared_clock.clone());
    let issuer = LocalIssuer::new(ring.clone(), ISS, AUD, shared_clock.clone());
    let revocations = Arc::new(MemoryRevocations::new(1000, shared_clock.clone()));
    let verifier = Verifier::builder(ring.clone(), ISS, AUD)
        .with_clock(shared_clock.clone())
        .with_revocations(revocations.clone())
        .build();
    Fixture {
        clock,
        shared_clock,
        ring,
        issuer,
        verifier,
        revocations,
    }
}

/// The setup of the paused-time prefetch tests: the Tokio clock (so
/// `tokio::time::advance` moves the tokens' time too), an HS256 key ring, a
/// local issuer and a verifier of its tokens.
pub struct PausedFixture {
    pub clock: SharedClock,
    pub ring: KeyRing,
    pub issuer: LocalIssuer,
    pub verifier: Verifier,
}

pub fn paused_fixture() -> PausedFixture {
    let clock = TokioClock::shared();
    let ring = KeyRing::new(SigningKey::hs256("k1", &[3u8; 32]).unwrap(), clock.clone());
    let issuer = LocalIssuer::new(ring.clone(), ISS, AUD, clock.clone());
    let verifier = Verifier::builder(ring.clone(), ISS, AUD)
        .with_clock(clock.clone())
        .build();
    PausedFixture {
        clock,
        ring,
        issuer,
        verifier,
    }
}

/// A forecast of exactly `mean`, with no interval around it.
pub fn exact(mean: f64) -> Forecast {
    Forecast {
        mean,
        lower: mean,
        upper: mean,
    }
}

pub type App = BoxCloneService<Request<String>, Response<EdgeBody<String>>, Infallible>;

/// The layer over an app answering 200 "ok", behind the edge error mapping.
pub fn app(layer: &TokenPrefetchLayer) -> App {
    let inner = service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new("ok".to_owned()))
    });
    let service = ErrorResponseLayer::new()
        .classify::<TokenError>()
        .layer(layer.layer(inner));
    BoxCloneService::new(service)
}

pub async fn send(
    app: &App,
    token: Option<&str>,
    session: Option<&str>,
) -> Response<EdgeBody<String>> {
    let mut request = Request::builder().uri("/");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(session) = session {
        request = request.header("x-foresight-session", session);
    }
    app.clone()
        .oneshot(request.body(String::new()).unwrap())
        .await
        .unwrap()
}

/// An authentication server and a gateway (the layer over a `/api` route,
/// plus the WebSocket endpoint), both on loopback ports.
pub mod peak;

pub mod net {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use axum::Router;
    use bytes::Bytes;
    use foresight_core::edge::ErrorResponseLayer;
    use foresight_token::jwks::fetch_jwks;
    use foresight_token::server::{AuthServer, Authenticator, LoginAttempt, Rejection};
    use foresight_token::ws::WsConfig;
    use foresight_token::{
        IssuedToken, KeyRing, LocalIssuer, RemoteIssuer, SharedClock, SigningKey, StaticKeys,
        TokenError, TokenHandle, TokenPrefetchLayer, Verifier,
    };
    use http_body_util::{BodyExt as _, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use tower::Layer;

    pub struct Stack {
        pub auth_addr: SocketAddr,
        pub gateway_addr: SocketAddr,
        pub auth: AuthServer,
        pub ring: KeyRing,
        pub keys: StaticKeys,
        pub handle: TokenHandle,
    }

    pub async fn serve(router: Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        addr
    }

    /// Serves `router` with the client address in each request's
    /// extensions, as a server behind no proxy would.
    pub async fn serve_with_client_addr(router: Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            axum::serve(listener, service).await.unwrap();
        });
        addr
    }

    /// An answer of the authentication server.
    #[derive(Debug)]
    pub struct Answer {
        pub status: u16,
        pub headers: http::HeaderMap,
        pub body: Bytes,
    }

    impl Answer {
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
        }

        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|v| v.to_str().unwrap())
        }

        /// Asserts a typed refusal: status, `error` code and description,
        /// never cached.
        #[track_caller]
        pub fn assert_error(&self, status: u16, code: &str, description: &str) {
            assert_eq!(
                (self.status, self.json()),
                (
                    status,
                    serde_json::json!({"error": code, "error_description": description})
                ),
                "{:?}",
                String::from_utf8_lossy(&self.body)
            );
            self.assert_no_store();
        }

        #[track_caller]
        pub fn assert_no_store(&self) {
            assert_eq!(self.header("cache-control"), Some("no-store"));
            assert_eq!(self.header("pragma"), Some("no-cache"));
        }
    }

    /// A request to the authentication server: `content_type` and
    /// `authorization` as given (none when `None`).
    pub async fn call(
        addr: SocketAddr,
        method: http::Method,
        path: &str,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: impl Into<Bytes>,
    ) -> Answer {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = http_client()
            .request(request.body(Full::new(body.into())).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Answer {
            status,
            headers,
            body: response.into_body().collect().await.unwrap().to_bytes(),
        }
    }

    pub fn http_client() -> Client<HttpConnector, Full<Bytes>> {
        Client::builder(TokioExecutor::new()).build_http()
    }

    pub async fn post_json(addr: SocketAddr, path: &str, body: serde_json::Value) -> (u16, Bytes) {
        let request = http::Request::post(format!("http://{addr}{path}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let response = http_client().request(request).await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    }

    /// The password of every test user.
    pub const PASSWORD: &str = "correct horse battery staple";

    /// Accepts any subject with [`PASSWORD`], refuses the rest.
    pub fn authenticator() -> impl Authenticator + Clone {
        |attempt: &LoginAttempt| match attempt.password() {
            Some(password) if password.expose() == PASSWORD => Ok(attempt.sub().to_owned()),
            _ => Err(Rejection::InvalidCredentials),
        }
    }

    pub async fn login(addr: SocketAddr, sub: &str) -> IssuedToken {
        let (status, body) = post_json(
            addr,
            "/token/login",
            serde_json::json!({"sub": sub, "password": PASSWORD}),
        )
        .await;
        assert_eq!(status, 200);
        serde_json::from_slice(&body).unwrap()
    }

    /// The stack; `origin` is allowed on the WebSocket endpoint; `extra`
    /// is merged into the gateway (static pages).
    pub async fn stack(
        clock: SharedClock,
        origin: Option<&str>,
        extra: Router,
        lifetime: Duration,
    ) -> Stack {
        stack_with_clocks(clock.clone(), clock, origin, extra, lifetime).await
    }

    /// Like [`stack`], with the authentication server (issuer) on
    /// `issuer_clock` and the gateway (verifier, prefetch layer) on `clock`.
    pub async fn stack_with_clocks(
        issuer_clock: SharedClock,
        clock: SharedClock,
        origin: Option<&str>,
        extra: Router,
        lifetime: Duration,
    ) -> Stack {
        let ring = KeyRing::new(
            SigningKey::generate_ed25519("k1").unwrap(),
            issuer_clock.clone(),
        );
        let issuer = LocalIssuer::new(ring.clone(), super::ISS, super::AUD, issuer_clock.clone());
        let auth = AuthServer::builder(issuer, issuer_clock, authenticator())
            .with_client_secret("gateway-secret")
            .with_login_lifetime(lifetime)
            .build()
            .unwrap();
        let auth_addr = serve(auth.router()).await;

        let keys = StaticKeys::new();
        keys.update_from_jwks(
            &fetch_jwks(
                format!("http://{auth_addr}/.well-known/jwks.json")
                    .parse()
                    .unwrap(),
            )
            .await
            .unwrap(),
        );
        let verifier = Verifier::builder(keys.clone(), super::ISS, super::AUD)
            .with_clock(clock.clone())
            .build();
        let remote = RemoteIssuer::builder(format!("http://{auth_addr}"))
            .with_client_secret("gateway-secret")
            .with_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let layer = TokenPrefetchLayer::builder(verifier, remote)
            .with_token_lifetime(lifetime)
            .with_refresh_margin(Duration::from_secs(2))
            .build();
        let api = tower::service_fn(|_req: http::Request<axum::body::Body>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(axum::body::Body::from("ok")))
        });
        let api = ErrorResponseLayer::new()
            .classify::<TokenError>()
            .layer(layer.layer(api));
        let mut ws = WsConfig::default().with_heartbeat(Duration::from_secs(1));
        if let Some(origin) = origin {
            ws = ws.with_allow_origin(origin);
        }
        let router = Router::new()
            .route_service("/api", api)
            .merge(layer.handle().ws_router(ws))
            .merge(extra);
        let gateway_addr = serve(router).await;
        Stack {
            auth_addr,
            gateway_addr,
            auth,
            ring,
            keys,
            handle: layer.handle().clone(),
        }
    }

    impl Stack {
        pub async fn refresh_jwks(&self) {
            let uri = format!("http://{}/.well-known/jwks.json", self.auth_addr);
            self.keys
                .update_from_jwks(&fetch_jwks(uri.parse().unwrap()).await.unwrap());
        }
    }

    pub fn shared(clock: &foresight_token::ManualClock) -> SharedClock {
        Arc::new(clock.clone())
    }
}

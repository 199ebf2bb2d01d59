//! The browser client (`web/foresight-token.js`) in headless Chromium,
//! through token expiries and a revocation with replacement: no request may
//! fail. The page gets its first token from a login response (never from
//! its URL), and a request to another origin carries no token and cannot
//! plant one.
//!
//! Needs Debian's `chromium` (or `FORESIGHT_CHROMIUM=/path/to/chrome`).
//! Without it the test is skipped with a message, unless `CI` is set: then
//! it fails.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, State};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use foresight_core::edge::ErrorResponseLayer;
use foresight_token::jwks::fetch_jwks;
use foresight_token::server::AuthServer;
use foresight_token::ws::WsConfig;
use foresight_token::{
    Authenticated, KeyRing, LocalIssuer, RemoteIssuer, SigningKey, StaticKeys, TokenError,
    TokenHandle, TokenPrefetchLayer, TokioClock, Verifier,
};
use tokio::sync::oneshot;
use tower::ServiceBuilder;

const LIFETIME: Duration = Duration::from_secs(4);

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FORESIGHT_CHROMIUM") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

async fn revoke_active(
    State(handle): State<TokenHandle>,
    Extension(Authenticated(claims)): Extension<Authenticated>,
) -> http::StatusCode {
    // Replacement first (pushed over the WebSocket), then the revocation.
    if handle.refresh_now(&claims.sub, &claims.sid).await.is_none() {
        return http::StatusCode::SERVICE_UNAVAILABLE;
    }
    match handle
        .revoke_token(&claims.sid, &claims.jti, claims.exp)
        .await
    {
        Ok(()) => http::StatusCode::NO_CONTENT,
        Err(_) => http::StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Kills the browser's process group when dropped.
struct Browser {
    child: std::process::Child,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_client_survives_expiry_and_revocation() {
    let Some(chromium) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but chromium is not installed (apt-get install -y chromium)");
        }
        // Written to the process's stderr directly, past the test harness's
        // output capture, so that the skip is seen.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n**********************************************************************\n\
             SKIPPED browser_client_survives_expiry_and_revocation: no chromium found.\n\
             Install it (apt-get install -y chromium) or set FORESIGHT_CHROMIUM.\n\
             **********************************************************************\n"
        );
        return;
    };

    let clock = TokioClock::shared();
    let ring = KeyRing::new(SigningKey::generate_ed25519("k1").unwrap(), clock.clone());
    let issuer = LocalIssuer::new(ring, support::ISS, support::AUD, clock.clone());
    let auth = AuthServer::builder(issuer, clock.clone(), support::net::authenticator())
        .with_client_secret("gateway-secret")
        .with_login_lifetime(LIFETIME)
        .build()
        .unwrap();
    let auth_addr = support::net::serve(auth.router()).await;
    let keys = StaticKeys::from_jwks(
        &fetch_jwks(
            format!("http://{auth_addr}/.well-known/jwks.json")
                .parse()
                .unwrap(),
        )
        .await
        .unwrap(),
    );
    let verifier = Verifier::builder(keys, support::ISS, support::AUD)
        .with_clock(clock.clone())
        .with_leeway(Duration::from_secs(1))
        .build();
    let remote = RemoteIssuer::builder(format!("http://{auth_addr}"))
        .with_client_secret("gateway-secret")
        .build()
        .unwrap();
    let layer = TokenPrefetchLayer::builder(verifier, remote)
        .with_token_lifetime(LIFETIME)
        .with_refresh_margin(Duration::from_secs(2))
        .build();
    let handle = layer.handle().clone();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (report_tx, report_rx) = oneshot::channel::<serde_json::Value>();
    let report_tx = Arc::new(Mutex::new(Some(report_tx)));
    let protected = Router::new()
        .route("/api", get(|| async { "ok" }))
        .route("/test/revoke-active", post(revoke_active))
        .with_state(handle.clone())
        .layer(
            ServiceBuilder::new()
                .layer(ErrorResponseLayer::new().classify::<TokenError>())
                .layer(layer),
        );
    // The page logs in once it has loaded, so that its first token is fresh
    // however long the browser took to start.
    let logins = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let logged_in = logins.clone();
    let (foreign_addr, foreign_seen) = foreign_origin().await;
    let router = Router::new()
        .route("/", get(|| async { Html(include_str!("../web/e2e.html")) }))
        .route(
            "/test/login",
            post(move || async move {
                if logged_in.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
                    return http::StatusCode::GONE.into_response();
                }
                let token = support::net::login(auth_addr, "browser-user").await;
                axum::Json(serde_json::json!({ "token": token.token })).into_response()
            }),
        )
        .route(
            "/foresight-token.js",
            get(|| async {
                (
                    [(http::header::CONTENT_TYPE, "text/javascript")],
                    include_str!("../web/foresight-token.js"),
                )
            }),
        )
        .route(
            "/test/report",
            post(
                move |axum::Json(report): axum::Json<serde_json::Value>| async move {
                    if let Some(tx) = report_tx.lock().unwrap().take() {
                        let _ = tx.send(report);
                    }
                    http::StatusCode::NO_CONTENT
                },
            ),
        )
        .merge(protected)
        .merge(handle.ws_router(WsConfig::default().with_allow_origin(format!("http://{addr}"))));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let url =
        format!("http://{addr}/?duration_ms=14000&revoke_at_ms=7000&foreign=http://{foreign_addr}");
    let profile = std::env::temp_dir().join(format!(
        "foresight-chromium-{}-{}",
        std::process::id(),
        addr.port()
    ));
    let mut command = Command::new(&chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let browser = Browser {
        child: command.spawn().expect("chromium starts"),
        profile,
    };

    let report = tokio::time::timeout(Duration::from_secs(90), report_rx)
        .await
        .expect("the page reports within 90 s")
        .expect("the page reports");
    drop(browser);

    // The other origin got no token and could plant none.
    let checks = &report["checks"];
    assert_eq!(checks["foreignStatus"], 200, "{report}");
    assert_eq!(
        *foreign_seen.lock().unwrap(),
        vec![None::<String>],
        "what the other origin received as Authorization"
    );
    assert_eq!(
        checks["insecureRejected"], true,
        "plain HTTP origin accepted"
    );
    assert_eq!(
        checks["foreignWsRejected"], true,
        "foreign WebSocket accepted"
    );

    let failures = report["failures"].as_array().unwrap();
    let events = report["events"].as_array().unwrap();
    let count = |kind: &str, reason: Option<&str>| {
        events
            .iter()
            .filter(|e| e["type"] == kind && reason.is_none_or(|r| e["reason"] == r))
            .count()
    };
    let requests = report["requests"].as_u64().unwrap();
    assert!(
        failures.is_empty(),
        "failed requests: {failures:?}\nevents: {events:?}"
    );
    assert!(requests >= 30, "only {requests} requests");
    assert!(count("connected", None) >= 1, "{events:?}");
    assert!(
        count("switch", Some("expiry")) >= 2,
        "expiries crossed: {events:?}"
    );
    assert_eq!(
        count("retry", None),
        1,
        "one transparent retry after the revocation: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "delivered" && e["via"] == "websocket"),
        "{events:?}"
    );
    assert_eq!(count("not-allowed", None), 1, "{events:?}");
    assert!(
        !events.iter().any(|e| e["jti"] == FOREIGN_JTI),
        "a token from another origin was taken: {events:?}"
    );
}

const FOREIGN_JTI: &str = "planted-by-another-origin";

/// A server on another origin (another port) that lets any page call it
/// with credentials and headers (CORS), records the `Authorization` each
/// request carried, and answers with a next-token header of its own.
async fn foreign_origin() -> (std::net::SocketAddr, Arc<Mutex<Vec<Option<String>>>>) {
    use base64::Engine as _;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let planted = format!(
        "{}.{}.c2ln",
        b64.encode(r#"{"alg":"EdDSA","typ":"JWT"}"#),
        b64.encode(format!(r#"{{"jti":"{FOREIGN_JTI}","exp":4102444800}}"#)),
    );
    let recorded = seen.clone();
    let router = Router::new()
        .route(
            "/probe",
            get(move |headers: http::HeaderMap| async move {
                let authorization = headers
                    .get(http::header::AUTHORIZATION)
                    .map(|v| v.to_str().unwrap_or("?").to_owned());
                recorded.lock().unwrap().push(authorization);
                ([("x-foresight-next-token", planted)], "foreign")
            }),
        )
        .layer(
            tower_http::cors::CorsLayer::very_permissive()
                .expose_headers([http::HeaderName::from_static("x-foresight-next-token")]),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, seen)
}

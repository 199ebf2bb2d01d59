//! The session mirror's reading of the session id from the request: the
//! `Cookie` headers (default `__Host-session` cookie) or a custom header,
//! through the public `SessionMirrorLayer` over a `MemoryStore`.
//!
//! The input is split on `\n`: each part is one `Cookie` header value, the
//! first also the `x-session` header value. A first input byte that is odd
//! marks the request as a shadow copy. Every request must get an answer,
//! never a panic: a 2xx, or on a shadow copy a 204 (no id), a 400 (a
//! malformed id) or a 404 (an id the store does not know, as every id is
//! here: the stores start empty).
#![no_main]

use std::convert::Infallible;
use std::sync::LazyLock;

use foresight_mirror::{Session, SessionMirrorLayer};
use foresight_store::MemoryStore;
use http::header::COOKIE;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tower::{Layer as _, ServiceExt as _, service_fn};

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
});

async fn handler(request: Request<String>) -> Result<Response<String>, Infallible> {
    let session = request
        .extensions()
        .get::<Session>()
        .cloned()
        .expect("the layer adds a session");
    let visits: Option<u64> = session.get("visits").await.ok().flatten();
    Ok(Response::new(format!("{visits:?}")))
}

fn request(data: &[u8]) -> Option<Request<String>> {
    let mut builder = Request::builder().uri("/");
    if data.first().is_some_and(|b| b % 2 == 1) {
        builder = builder.header("x-foresight-role", "shadow");
    }
    for (i, part) in data.split(|&b| b == b'\n').enumerate() {
        let Ok(value) = HeaderValue::from_bytes(part) else {
            continue;
        };
        if i == 0 {
            builder = builder.header(HeaderName::from_static("x-session"), value.clone());
        }
        builder = builder.header(COOKIE, value);
    }
    builder.body(String::new()).ok()
}

/// Whether `status` is an answer the layer may give.
fn expected(status: StatusCode, shadow: bool) -> bool {
    if shadow {
        [
            StatusCode::NO_CONTENT,
            StatusCode::BAD_REQUEST,
            StatusCode::NOT_FOUND,
        ]
        .contains(&status)
    } else {
        status.is_success()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = request(data) else {
        return;
    };
    let shadow = request.headers().contains_key("x-foresight-role");
    let cookie = SessionMirrorLayer::new(MemoryStore::new()).layer(service_fn(handler));
    let header = SessionMirrorLayer::new(MemoryStore::new())
        .with_header(HeaderName::from_static("x-session"))
        .layer(service_fn(handler));
    let plain_cookie = SessionMirrorLayer::new(MemoryStore::new())
        .with_host_prefix(false)
        .with_cookie_name("sid")
        .layer(service_fn(handler));
    RUNTIME.block_on(async move {
        for service in [cookie, header, plain_cookie] {
            let mut copy = Request::new(String::new());
            *copy.headers_mut() = request.headers().clone();
            let response = service.oneshot(copy).await.unwrap();
            let status = response.status();
            assert!(expected(status, shadow), "unexpected status {status}");
        }
    });
});

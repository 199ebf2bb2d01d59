//! Which errors are the client's: the classification over an in-process
//! leaf.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use foresight_core::{BoxError, ClientKey, HttpError, Ranked, Route, RouteBody, Topology};
use foresight_failover::{FailoverError, HealthFailoverLayer};
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

use super::{error_ratio, failover_error, two_instances};

/// A client body that sends one chunk, then fails with `kind`, as hyper's
/// server body does on an aborted upload or a bad chunk size.
struct BrokenBody {
    sent: bool,
    kind: io::ErrorKind,
}

impl http_body::Body for BrokenBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.sent {
            return Poll::Ready(Some(Err(io::Error::new(self.kind, "client body"))));
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"abc")))))
    }
}

/// The leaf's own error around the body error, as hyper-util's client
/// reports a failed request body.
#[derive(Debug, thiserror::Error)]
#[error("request failed")]
struct LeafError(#[source] BoxError);

/// Sends a `method` request with `body` through the layer to a leaf that
/// reads the body (and, if `leaf_fails`, fails on its own instead).
/// Returns the error, the number of leaf calls and the topology.
async fn classify<B>(method: Method, body: B, leaf_fails: bool) -> (BoxError, usize, Topology)
where
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static,
{
    let topology = two_instances();
    let calls = Arc::new(AtomicUsize::new(0));
    let leaf = service_fn({
        let calls = calls.clone();
        move |request: Request<RouteBody>| {
            calls.fetch_add(1, Ordering::Relaxed);
            async move {
                if leaf_fails {
                    return Err(LeafError("connection reset by the instance".into()));
                }
                match request.into_body().collect().await {
                    Ok(_) => Ok(Response::new(())),
                    Err(error) => Err(LeafError(error)),
                }
            }
        }
    });
    let service = HealthFailoverLayer::new(topology.clone()).layer(leaf);
    let ranked: Ranked = ["a", "b"].map(Into::into).into_iter().collect();
    let mut request = Request::builder().method(method).body(body).unwrap();
    request
        .extensions_mut()
        .insert(Route::primary(ClientKey::from("k"), ranked).unwrap());
    let error = service.oneshot(request).await.unwrap_err();
    (error, calls.load(Ordering::Relaxed), topology)
}

#[tokio::test]
async fn a_client_body_error_is_the_clients_and_blames_no_instance() {
    let cases = [
        (
            Method::POST,
            io::ErrorKind::InvalidData,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            io::ErrorKind::UnexpectedEof,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            io::ErrorKind::TimedOut,
            StatusCode::REQUEST_TIMEOUT,
        ),
        // Replayable: the body goes through the replay buffer.
        (
            Method::PUT,
            io::ErrorKind::InvalidInput,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            io::ErrorKind::UnexpectedEof,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (method, kind, status) in cases {
        let body = BrokenBody { sent: false, kind };
        let (error, calls, topology) = classify(method.clone(), body, false).await;
        let error = failover_error(&error);
        assert!(error.is_client_error(), "{method} {kind:?}: {error}");
        assert_eq!(error.status(), status, "{method} {kind:?}");
        assert_eq!(calls, 1, "{method} {kind:?}: replayed");
        assert_eq!(error_ratio(&topology, "a"), 0.0, "{method} {kind:?}");
    }
}

#[tokio::test]
async fn a_body_over_a_limit_blames_no_instance() {
    // A body limit at the edge (tower-http, axum) fails the body midway
    // with `LengthLimitError`; it reaches the client as a 400.
    for method in [Method::POST, Method::PUT] {
        let body = http_body_util::Limited::new(Full::new(Bytes::from_static(b"0123456789")), 4);
        let (error, calls, topology) = classify(method.clone(), body, false).await;
        let error = failover_error(&error);
        assert!(
            matches!(error, FailoverError::ClientBodyAborted { .. }),
            "{method}: {error}"
        );
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(calls, 1, "{method}: replayed");
        assert_eq!(error_ratio(&topology, "a"), 0.0, "{method}");
    }
}

#[tokio::test]
async fn an_error_of_the_leaf_itself_is_the_instances() {
    let body = BrokenBody {
        sent: false,
        kind: io::ErrorKind::InvalidData,
    };
    let (error, calls, topology) = classify(Method::POST, body, true).await;
    let error = failover_error(&error);
    assert!(
        matches!(error, FailoverError::Failed { instance, .. } if instance.as_str() == "a"),
        "{error}"
    );
    assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(calls, 1);
    assert_eq!(error_ratio(&topology, "a"), 1.0);
}

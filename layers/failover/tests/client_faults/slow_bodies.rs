//! A client slow to send its body is not a slow instance.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use foresight_core::{BoxError, ClientKey, Ranked, Route, RouteBody};
use foresight_failover::{AttemptTimeout, HealthFailoverLayer};
use http::{Method, Request, Response};
use http_body::Frame;
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt, service_fn};

use super::{error_ratio, two_instances};

/// A client body fed by a channel: each message is a chunk, and the body
/// ends when the sender is dropped.
struct ChannelBody(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

fn put(
    chunks: &[&'static str],
    delay_ms: u64,
) -> (
    Request<ChannelBody>,
    tokio::sync::mpsc::UnboundedSender<Bytes>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for chunk in chunks {
        tx.send(Bytes::from_static(chunk.as_bytes())).unwrap();
    }
    let ranked: Ranked = ["a", "b"].map(Into::into).into_iter().collect();
    let mut request = Request::builder()
        .method(Method::PUT)
        .header("x-delay-ms", delay_ms)
        .body(ChannelBody(rx))
        .unwrap();
    request
        .extensions_mut()
        .insert(Route::primary(ClientKey::from("k"), ranked).unwrap());
    (request, tx)
}

#[tokio::test(start_paused = true)]
async fn a_client_slow_to_send_its_body_does_not_time_the_instance_out() {
    let topology = two_instances();
    let calls = Arc::new(Mutex::new(Vec::new()));
    // Reads the whole body after `x-delay-ms`, then names its instance.
    let leaf = service_fn({
        let calls = calls.clone();
        move |request: Request<RouteBody>| {
            let target = request.extensions().get::<Route>().unwrap().target.clone();
            calls.lock().unwrap().push(target.to_string());
            let delay: u64 = request.headers()["x-delay-ms"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let body = request.into_body().collect().await?.to_bytes();
                Ok::<_, BoxError>(Response::new(format!("{target}:{}", body.len())))
            }
        }
    });
    let layer = HealthFailoverLayer::new(topology.clone())
        .with_attempt_timeout(AttemptTimeout::Fixed(Duration::from_millis(100)));
    let service = layer.layer(leaf);

    // `a` answers once, so that a timeout on it would count as a failure.
    let (request, tx) = put(&["abc"], 1);
    drop(tx);
    assert_eq!(
        service.clone().oneshot(request).await.unwrap().body(),
        "a:3"
    );

    // A client that sends a chunk, then nothing for a second.
    let (request, tx) = put(&["abc"], 0);
    let slow = tokio::spawn(service.clone().oneshot(request));
    tokio::time::sleep(Duration::from_secs(1)).await;
    tx.send(Bytes::from_static(b"def")).unwrap();
    drop(tx);
    assert_eq!(slow.await.unwrap().unwrap().body(), "a:6");
    assert_eq!(
        *calls.lock().unwrap(),
        ["a", "a"],
        "the slow upload was replayed"
    );
    assert_eq!(layer.stats().timeouts, 0);
    assert_eq!(error_ratio(&topology, "a"), 0.0);

    // The timeout still holds the instance to account once it has the
    // whole body: a slow answer is replayed on `b`.
    let (request, tx) = put(&["abc"], 1_000);
    drop(tx);
    assert_eq!(service.oneshot(request).await.unwrap().body(), "b:3");
    assert_eq!(layer.stats().timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_client_leaving_mid_upload_adds_nothing_to_the_instances_latency() {
    let topology = two_instances();
    let leaf = service_fn(|request: Request<RouteBody>| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let body = request.into_body().collect().await?.to_bytes();
        Ok::<_, BoxError>(Response::new(body.len()))
    });
    let service = HealthFailoverLayer::new(topology.clone()).layer(leaf);
    let (request, tx) = put(&["abc"], 0);
    drop(tx);
    assert_eq!(*service.clone().oneshot(request).await.unwrap().body(), 3);
    let slot = topology.health(&"a".into()).unwrap();
    let before = slot.latency_ewma();
    assert!(before > 0.0);

    // A client that sends a chunk, then nothing for a second, then leaves.
    let (request, tx) = put(&["abc"], 0);
    let upload = tokio::spawn(service.oneshot(request));
    tokio::time::sleep(Duration::from_secs(1)).await;
    upload.abort();
    assert!(upload.await.unwrap_err().is_cancelled());
    drop(tx);
    assert_eq!(slot.latency_ewma(), before);
    assert_eq!(slot.error_ratio(), 0.0);
}

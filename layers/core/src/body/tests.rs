use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};

use super::*;
use crate::error::BoxError;

/// A body of fixed frames, with a size hint only when asked for.
struct Frames {
    frames: VecDeque<Result<Frame<Bytes>, std::io::Error>>,
    exact: Option<u64>,
}

impl Frames {
    fn new(parts: &[&'static str]) -> Self {
        Self {
            frames: parts
                .iter()
                .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
                .collect(),
            exact: None,
        }
    }

    fn sized(mut self) -> Self {
        self.exact = Some(
            self.frames
                .iter()
                .filter_map(|f| f.as_ref().ok()?.data_ref().map(|d| d.len() as u64))
                .sum(),
        );
        self
    }

    fn with_trailers(mut self) -> Self {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "42".parse().unwrap());
        self.frames.push_back(Ok(Frame::trailers(trailers)));
        self
    }

    fn then_fail(mut self, kind: std::io::ErrorKind) -> Self {
        self.frames
            .push_back(Err(std::io::Error::new(kind, "client gone")));
        self
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(self.frames.pop_front())
    }

    fn size_hint(&self) -> SizeHint {
        self.exact.map(SizeHint::with_exact).unwrap_or_default()
    }
}

async fn collect(body: RouteBody) -> Result<(Bytes, Option<HeaderMap>), BoxError> {
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    Ok((collected.to_bytes(), trailers))
}

fn kind(body: &RouteBody) -> String {
    format!("{body:?}")
}

#[tokio::test]
async fn an_empty_body_needs_no_buffer() {
    let mut first = RouteBody::new(Full::new(Bytes::new()));
    assert_eq!(kind(&first), r#"RouteBody("empty")"#);
    let capture = first.capture(16);
    assert!(first.is_end_stream());
    assert_eq!(format!("{capture:?}"), "Capture");
    assert!(capture.complete() && capture.kept_within(0));
    assert!(capture.replay().unwrap().is_end_stream());
}

#[tokio::test]
async fn a_replay_sends_the_same_bytes_and_trailers() {
    let mut first = RouteBody::new(Frames::new(&["ab", "cd", "ef"]).with_trailers());
    let capture = first.capture(64);
    let (bytes, trailers) = collect(first).await.unwrap();
    assert_eq!(bytes, "abcdef");
    assert!(capture.complete());
    let (again, trailers_again) = collect(capture.replay().unwrap()).await.unwrap();
    assert_eq!(again, "abcdef");
    assert_eq!(trailers, trailers_again);
    assert_eq!(trailers.unwrap()["x-checksum"], "42");
}

#[tokio::test]
async fn a_replay_continues_where_a_partial_read_stopped() {
    let mut first = RouteBody::new(Frames::new(&["ab", "cd", "ef"]).sized());
    let capture = first.capture(64);
    assert_eq!(first.size_hint().exact(), Some(6));
    let frame = first.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "ab");
    assert_eq!(first.size_hint().exact(), Some(4));
    // The first attempt fails here, having read one frame of three.
    let replay = capture.replay().unwrap();
    assert_eq!(replay.size_hint().exact(), Some(6));
    // The superseded reader fails instead of stealing frames.
    let stale = first.frame().await.unwrap();
    assert!(stale.unwrap_err().is::<Superseded>());
    assert_eq!(collect(replay).await.unwrap().0, "abcdef");
}

#[tokio::test]
async fn above_the_cap_the_first_attempt_streams_but_nothing_is_kept() {
    let mut first = RouteBody::new(Frames::new(&["abcd", "efgh", "ij"]));
    let capture = first.capture(8);
    assert!(capture.kept_within(8));
    assert_eq!(collect(first).await.unwrap().0, "abcdefghij");
    assert!(!capture.kept_within(8));
    assert!(!capture.complete());
    assert!(capture.replay().is_none());
}

#[tokio::test]
async fn a_known_length_above_the_cap_is_refused_up_front() {
    let mut first = RouteBody::new(Frames::new(&["abcd", "efgh"]).sized());
    let capture = first.capture(4);
    assert!(!capture.kept_within(4));
    assert_eq!(collect(first).await.unwrap().0, "abcdefgh");
}

#[tokio::test]
async fn a_streaming_body_is_untouched() {
    let body = RouteBody::new(Frames::new(&["x"]).sized());
    assert_eq!(kind(&body), r#"RouteBody("streaming")"#);
    assert_eq!(body.size_hint().exact(), Some(1));
    assert_eq!(collect(body).await.unwrap().0, "x");
}

#[tokio::test]
async fn errors_of_the_client_body_are_marked_once() {
    for capture in [false, true] {
        let body = Frames::new(&["ab"]).then_fail(std::io::ErrorKind::InvalidData);
        let mut body = RouteBody::new(body);
        if capture {
            let _capture = body.capture(64);
        }
        // Converted again, as a second layer does: still one mark.
        let mut body = RouteBody::new(RouteBody::new(body));
        body.frame().await.unwrap().unwrap();
        let error = body.frame().await.unwrap().unwrap_err();
        let marked = error
            .downcast_ref::<ClientBodyError>()
            .expect("marked as the client's");
        assert_eq!(marked.fault(), BodyFault::Malformed);
        let source = std::error::Error::source(marked).unwrap();
        assert!(source.is::<std::io::Error>(), "marked twice: {source:?}");
    }
}

/// The same type whatever wrapped it: a compile-time check.
fn same_type<T>(_: &T, _: &T) {}

#[tokio::test]
async fn converting_a_route_body_does_not_wrap_it_again() {
    let mut body = RouteBody::new(Frames::new(&["ab", "cd"]));
    let capture = body.capture(64);
    let again: RouteBody = RouteBody::new(body);
    let plain = RouteBody::new(Full::new(Bytes::from("x")));
    same_type(&again, &plain);
    assert_eq!(kind(&again), r#"RouteBody("captured")"#);
    // Still the capture's reader: what it reads can be replayed.
    assert_eq!(collect(again).await.unwrap().0, "abcd");
    assert_eq!(collect(capture.replay().unwrap()).await.unwrap().0, "abcd");
    // Empty stays empty, a copy stays a copy.
    assert_eq!(
        kind(&RouteBody::new(RouteBody::empty())),
        r#"RouteBody("empty")"#
    );
    let copy = RouteBody::copy(vec![Bytes::from("z")], None);
    assert_eq!(kind(&RouteBody::new(copy)), r#"RouteBody("copy")"#);
}

#[tokio::test]
async fn two_layers_share_one_capture() {
    // A shadow layer asks for a copy, a failover layer below it for a
    // replay: one buffer serves both.
    let mut body = RouteBody::new(Frames::new(&["ab", "cd"]).with_trailers());
    let copy = body.copy_once_read(16, None);
    let mut body = RouteBody::new(body);
    let capture = body.capture(8);
    let (bytes, _) = collect(body).await.unwrap();
    assert_eq!(bytes, "abcd");
    let (copied, trailers) = collect(copy.await.expect("a copy")).await.unwrap();
    assert_eq!(copied, "abcd");
    assert_eq!(trailers.unwrap()["x-checksum"], "42");
    assert_eq!(collect(capture.replay().unwrap()).await.unwrap().0, "abcd");
}

#[tokio::test]
async fn a_later_layer_raises_the_cap_while_nothing_was_dropped() {
    let mut body = RouteBody::new(Frames::new(&["abcd", "efgh"]).sized());
    let small = body.capture(4);
    assert!(!small.kept_within(4));
    let capture = body.capture(16);
    assert!(capture.kept_within(16));
    // Each layer still checks its own cap.
    assert!(!capture.kept_within(4));
    assert_eq!(collect(body).await.unwrap().0, "abcdefgh");
    assert_eq!(
        collect(capture.replay().unwrap()).await.unwrap().0,
        "abcdefgh"
    );
}

#[tokio::test]
async fn a_copy_is_handed_over_at_the_declared_length() {
    // The size hint is unknown; the request declared 4 bytes.
    let mut body = RouteBody::new(Frames::new(&["ab", "cd"]).then_fail(std::io::ErrorKind::Other));
    let copy = body.copy_once_read(16, Some(4));
    body.frame().await.unwrap().unwrap();
    body.frame().await.unwrap().unwrap();
    // The reader stops at the last byte and drops the body.
    drop(body);
    let copy = copy.await.expect("a copy at the declared length");
    assert_eq!(copy.size_hint().exact(), Some(4));
    assert_eq!(collect(copy).await.unwrap().0, "abcd");
}

#[tokio::test]
async fn a_copy_is_handed_over_when_the_body_says_it_ended() {
    let mut body = RouteBody::new(Full::new(Bytes::from("abcd")));
    let copy = body.copy_once_read(16, None);
    body.frame().await.unwrap().unwrap();
    drop(body);
    assert_eq!(collect(copy.await.unwrap()).await.unwrap().0, "abcd");
}

#[tokio::test]
async fn no_copy_above_the_cap_after_a_failure_a_replay_or_an_early_drop() {
    // Above the copy's cap, though within the capture's.
    let mut body = RouteBody::new(Frames::new(&["abcd", "efgh"]));
    let capture = body.capture(64);
    let copy = body.copy_once_read(6, None);
    assert_eq!(collect(body).await.unwrap().0, "abcdefgh");
    assert!(copy.await.is_none());
    assert!(capture.kept_within(64));

    let mut body = RouteBody::new(Frames::new(&["ab"]).then_fail(std::io::ErrorKind::Other));
    let copy = body.copy_once_read(64, None);
    assert!(collect(body).await.is_err());
    assert!(copy.await.is_none());

    let mut body = RouteBody::new(Frames::new(&["ab", "cd"]));
    let copy = body.copy_once_read(64, None);
    let capture = body.capture(64);
    body.frame().await.unwrap().unwrap();
    let replay = capture.replay().unwrap();
    assert!(body.frame().await.unwrap().is_err());
    assert!(copy.await.is_none());
    assert_eq!(collect(replay).await.unwrap().0, "abcd");

    let mut body = RouteBody::new(Frames::new(&["ab", "cd"]));
    let copy = body.copy_once_read(64, None);
    body.frame().await.unwrap().unwrap();
    drop(body);
    assert!(copy.await.is_none());
}

/// A body whose client has not sent anything yet.
struct Silent;

impl Body for Silent {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
}

#[tokio::test]
async fn a_capture_tells_when_the_reader_waits_on_the_client() {
    let mut body = RouteBody::new(Silent);
    let capture = body.capture(64);
    assert!(!capture.awaiting_client());
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(Pin::new(&mut body).poll_frame(&mut cx).is_pending());
    assert!(capture.awaiting_client());
}

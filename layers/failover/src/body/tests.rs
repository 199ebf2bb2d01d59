use std::collections::VecDeque;
use std::convert::Infallible;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Full};

use super::*;

/// A body of fixed frames, with a size hint only when asked for.
struct Frames {
    frames: VecDeque<Frame<Bytes>>,
    exact: Option<u64>,
}

impl Frames {
    fn new(parts: &[&'static str]) -> Self {
        Self {
            frames: parts
                .iter()
                .map(|p| Frame::data(Bytes::from_static(p.as_bytes())))
                .collect(),
            exact: None,
        }
    }

    fn sized(mut self) -> Self {
        self.exact = Some(
            self.frames
                .iter()
                .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
                .sum(),
        );
        self
    }

    fn with_trailers(mut self) -> Self {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "42".parse().unwrap());
        self.frames.push_back(Frame::trailers(trailers));
        self
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.frames.pop_front().map(Ok))
    }

    fn size_hint(&self) -> SizeHint {
        self.exact.map(SizeHint::with_exact).unwrap_or_default()
    }
}

async fn collect(body: ReplayBody<Frames>) -> Result<(Bytes, Option<HeaderMap>), BoxError> {
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    Ok((collected.to_bytes(), trailers))
}

#[tokio::test]
async fn empty_body_needs_no_buffer() {
    let (first, source) = ReplaySource::new(Full::new(Bytes::new()), 16);
    assert!(first.is_end_stream());
    assert!(matches!(source, ReplaySource::Empty));
    assert!(source.replay().unwrap().is_end_stream());
}

#[tokio::test]
async fn a_replay_sends_the_same_bytes_and_trailers() {
    let (first, source) = ReplaySource::new(Frames::new(&["ab", "cd", "ef"]).with_trailers(), 64);
    let (bytes, trailers) = collect(first).await.unwrap();
    assert_eq!(bytes, "abcdef");
    let (again, trailers_again) = collect(source.replay().unwrap()).await.unwrap();
    assert_eq!(again, "abcdef");
    assert_eq!(trailers, trailers_again);
    assert_eq!(trailers.unwrap()["x-checksum"], "42");
}

#[tokio::test]
async fn a_replay_continues_where_a_partial_read_stopped() {
    let (mut first, source) = ReplaySource::new(Frames::new(&["ab", "cd", "ef"]).sized(), 64);
    assert_eq!(first.size_hint().exact(), Some(6));
    let frame = first.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "ab");
    assert_eq!(first.size_hint().exact(), Some(4));
    // The first attempt fails here, having read one frame of three.
    let replay = source.replay().unwrap();
    assert_eq!(replay.size_hint().exact(), Some(6));
    // The superseded reader fails instead of stealing frames.
    let stale = first.frame().await.unwrap();
    assert!(stale.unwrap_err().is::<Superseded>());
    assert_eq!(collect(replay).await.unwrap().0, "abcdef");
}

#[tokio::test]
async fn above_the_cap_the_first_attempt_streams_but_nothing_is_kept() {
    let (first, source) = ReplaySource::new(Frames::new(&["abcd", "efgh", "ij"]), 8);
    assert!(source.replayable());
    assert_eq!(collect(first).await.unwrap().0, "abcdefghij");
    assert!(!source.replayable());
    assert!(source.replay().is_none());
}

#[tokio::test]
async fn a_known_length_above_the_cap_is_refused_up_front() {
    let (first, source) = ReplaySource::new(Frames::new(&["abcd", "efgh"]).sized(), 4);
    assert!(!source.replayable());
    assert_eq!(collect(first).await.unwrap().0, "abcdefgh");
}

#[tokio::test]
async fn passthrough_is_untouched() {
    let body = ReplayBody::passthrough(Frames::new(&["x"]).sized());
    assert_eq!(body.size_hint().exact(), Some(1));
    assert_eq!(collect(body).await.unwrap().0, "x");
}

//! One client connection: a socket shared between hyper and a watchdog, and
//! the state the watchdog reads to enforce the header-read and idle
//! timeouts.
//!
//! hyper closes a connection whose headers are late without a word; HAProxy
//! answers `408 Request Timeout` first, and so does this gateway. hyper owns
//! the socket while it serves the connection, so the socket is shared
//! (`Arc<Mutex<TcpStream>>`) and the watchdog writes the 408 itself. The
//! lock is never contended: the watchdog runs in the connection's own task
//! and takes it only once the connection is no longer polled, and neither
//! side holds it across an await. Reads go through tokio's own
//! `AsyncRead`, which fills hyper's buffer without zeroing it first.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What the watchdog should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing yet; look again at this instant.
    Wait(Instant),
    /// A request head is overdue: answer 408 and close.
    HeaderTimeout,
    /// Idle past the keep-alive timeout: close gracefully.
    Idle,
}

/// Activity of one connection, in milliseconds since it was accepted.
#[derive(Debug)]
pub(crate) struct ConnState {
    start: Instant,
    /// When the current request head started arriving (`u64::MAX`: none).
    head_since: AtomicU64,
    /// Last read or write.
    last_activity: AtomicU64,
    in_flight: AtomicU32,
    /// HTTP/2 (prior knowledge): heads are frames, so no 408 is written.
    http2: AtomicBool,
    first_bytes: AtomicBool,
}

const NONE: u64 = u64::MAX;
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl ConnState {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            // A new connection owes a request head from the start: one that
            // sends nothing gets the 408 too.
            head_since: AtomicU64::new(0),
            last_activity: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            http2: AtomicBool::new(false),
            first_bytes: AtomicBool::new(true),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn at(&self, millis: u64) -> Instant {
        self.start + Duration::from_millis(millis)
    }

    fn on_read(&self, bytes: &[u8]) {
        let now = self.now();
        self.last_activity.store(now, Relaxed);
        if self.first_bytes.swap(false, Relaxed) && bytes.starts_with(H2_PREFACE) {
            self.http2.store(true, Relaxed);
        }
        if self.in_flight.load(Relaxed) == 0 {
            let _ = self
                .head_since
                .compare_exchange(NONE, now, Relaxed, Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_activity.store(self.now(), Relaxed);
    }

    /// A request head was parsed and the service called.
    pub(crate) fn request_started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
        self.head_since.store(NONE, Relaxed);
    }

    /// A request's response future finished or was dropped.
    pub(crate) fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Relaxed);
        self.last_activity.store(self.now(), Relaxed);
    }

    /// What the watchdog should do, given the two timeouts.
    pub(crate) fn verdict(&self, header_timeout: Duration, idle_timeout: Duration) -> Verdict {
        let now = self.now();
        let head_ms = header_timeout.as_millis() as u64;
        let idle_ms = idle_timeout.as_millis() as u64;
        if self.in_flight.load(Relaxed) > 0 {
            return Verdict::Wait(self.at(now + head_ms.min(idle_ms).max(1)));
        }
        let head = self.head_since.load(Relaxed);
        if head != NONE && !self.http2.load(Relaxed) {
            let due = head + head_ms;
            return if now >= due {
                Verdict::HeaderTimeout
            } else {
                // Look again within the idle timeout: the head may arrive
                // and its request end meanwhile, and the connection then
                // goes idle with a deadline before this one.
                Verdict::Wait(self.at(due.min(now + idle_ms.max(1))))
            };
        }
        let due = self.last_activity.load(Relaxed) + idle_ms;
        if now >= due {
            Verdict::Idle
        } else {
            Verdict::Wait(self.at(due))
        }
    }
}

/// A TCP stream shared by hyper (through this type) and the watchdog.
#[derive(Debug, Clone)]
pub(crate) struct SharedStream {
    stream: Arc<Mutex<TcpStream>>,
    state: Arc<ConnState>,
}

impl SharedStream {
    pub(crate) fn new(stream: TcpStream, state: Arc<ConnState>) -> Self {
        Self {
            stream: Arc::new(Mutex::new(stream)),
            state,
        }
    }

    fn stream(&self) -> MutexGuard<'_, TcpStream> {
        // No operation on the stream leaves it inconsistent, so a poisoned
        // lock is safe to reuse.
        self.stream.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `bytes` as far as the socket takes them now, then closes the
    /// sending side and discards what the client still sends for a moment,
    /// so that closing does not reset the connection before the client
    /// reads the answer.
    pub(crate) async fn answer_and_close(&self, bytes: &[u8]) {
        let mut rest = bytes;
        let deadline = Instant::now() + Duration::from_millis(500);
        while !rest.is_empty() && Instant::now() < deadline {
            let writable = poll_fn(|cx| self.stream().poll_write_ready(cx));
            match tokio::time::timeout_at(deadline, writable).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => break,
            }
            let written = self.stream().try_write(rest);
            match written {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        let _ = socket2::SockRef::from(&*self.stream()).shutdown(std::net::Shutdown::Write);
        let mut sink = [0u8; 1024];
        while Instant::now() < deadline {
            let readable = poll_fn(|cx| self.stream().poll_read_ready(cx));
            if !matches!(
                tokio::time::timeout_at(deadline, readable).await,
                Ok(Ok(()))
            ) {
                break;
            }
            let read = self.stream().try_read(&mut sink);
            match read {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut *self.stream()).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            self.state.on_read(read);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut *self.stream()).poll_write(cx, buf))?;
        self.state.on_write();
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(&*self.stream()).shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(30);
    const IDLE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_silent_new_connection_owes_its_head_within_the_header_timeout() {
        let state = ConnState::new();
        assert!(matches!(state.verdict(HEAD, IDLE), Verdict::Wait(_)));
        tokio::time::advance(HEAD).await;
        assert_eq!(state.verdict(HEAD, IDLE), Verdict::HeaderTimeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_served_connection_is_idle_until_the_next_byte() {
        let state = ConnState::new();
        state.on_read(b"GET / HTTP/1.1\r\n");
        state.request_started();
        tokio::time::advance(HEAD * 2).await;
        assert!(
            matches!(state.verdict(HEAD, IDLE), Verdict::Wait(_)),
            "in flight"
        );
        state.request_finished();
        tokio::time::advance(HEAD).await;
        assert!(
            matches!(state.verdict(HEAD, IDLE), Verdict::Wait(_)),
            "idle, not late"
        );
        // Half a head, then nothing: 408 after the header timeout.
        state.on_read(b"GET /next HTTP/1.1\r\nHo");
        tokio::time::advance(HEAD - Duration::from_secs(1)).await;
        assert!(matches!(state.verdict(HEAD, IDLE), Verdict::Wait(_)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(state.verdict(HEAD, IDLE), Verdict::HeaderTimeout);
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_connections_close_after_the_idle_timeout() {
        let state = ConnState::new();
        state.on_read(b"GET / HTTP/1.1\r\n");
        state.request_started();
        state.request_finished();
        tokio::time::advance(IDLE).await;
        assert_eq!(state.verdict(HEAD, IDLE), Verdict::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_timeout_shorter_than_the_header_timeout_is_kept() {
        // A watchdog sleeps until the instant the verdict names: that must
        // never pass the idle deadline of a request served meanwhile.
        let (head, idle) = (Duration::from_secs(20), Duration::from_secs(10));
        let state = ConnState::new();
        let Verdict::Wait(wake) = state.verdict(head, idle) else {
            panic!("a new connection waits");
        };
        state.on_read(b"GET / HTTP/1.1\r\n\r\n");
        state.request_started();
        state.request_finished();
        assert!(
            wake <= Instant::now() + idle,
            "the watchdog would sleep {:?}, beyond a {idle:?} idle timeout",
            wake - Instant::now()
        );
        tokio::time::advance(idle).await;
        assert_eq!(state.verdict(head, idle), Verdict::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn http2_connections_get_no_408() {
        let state = ConnState::new();
        state.on_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        tokio::time::advance(HEAD).await;
        assert!(matches!(state.verdict(HEAD, IDLE), Verdict::Wait(_)));
        tokio::time::advance(IDLE).await;
        assert_eq!(state.verdict(HEAD, IDLE), Verdict::Idle);
    }
}

//! The connections of one instance: at most `max_connections` HTTP/1.1
//! connections, each used by one request at a time, kept open between
//! requests until they idle out.
//!
//! A request's [`Lease`] holds the permit that `poll_ready` reserved and,
//! once it has one, the connection. It gives the connection back to the
//! idle set only when the exchange is complete (the response body read to
//! its end); a request or response dropped halfway discards the connection
//! (hyper closes it), and the permit goes back to the semaphore in every
//! case, so no slot leaks.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use foresight_core::BoxError;
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::Body;
use hyper::client::conn::http1::{self, SendRequest};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use super::body::ResponseBody;
use super::error::upstream;

/// The pool of one instance.
pub(super) struct Conns<C, B> {
    connector: C,
    /// `scheme://authority/`, what the connector is called with.
    target: Uri,
    /// The `Host` of a request that has none.
    pub(super) host: HeaderValue,
    handshake: http1::Builder,
    pub(super) permits: Arc<Semaphore>,
    idle: Arc<IdleSet<B>>,
}

impl<C, B> Conns<C, B> {
    pub(super) fn new(
        connector: C,
        target: Uri,
        host: HeaderValue,
        max_connections: usize,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            connector,
            target,
            host,
            handshake: http1::Builder::new(),
            permits: Arc::new(Semaphore::new(max_connections)),
            idle: Arc::new(IdleSet {
                senders: Mutex::new(Vec::new()),
                timeout: idle_timeout,
                reaping: AtomicBool::new(false),
            }),
        }
    }

    /// The instance's address.
    pub(super) fn authority(&self) -> http::uri::Authority {
        self.target
            .authority()
            .expect("the target URI has an authority")
            .clone()
    }

    #[cfg(test)]
    pub(super) fn idle(&self) -> &IdleSet<B> {
        &self.idle
    }
}

impl<C, B> Conns<C, B>
where
    C: Service<Uri, Error: Into<BoxError>, Future: Send> + Clone + Send + Sync + 'static,
    C::Response: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// Sends `request` (in origin form, with a `Host`) over an idle
    /// connection, or a new one, with the slot of `permit`.
    ///
    /// A request that a reused connection did not start to send (the peer
    /// closed it as it was taken) is sent again over another; one that
    /// failed on a new connection, or after it started, fails.
    pub(super) async fn send(
        self: Arc<Self>,
        mut request: Request<B>,
        permit: OwnedSemaphorePermit,
    ) -> Result<Response<ResponseBody<B>>, BoxError> {
        let mut lease = Lease {
            idle: self.idle.clone(),
            sender: None,
            reusable: false,
            _permit: permit,
        };
        loop {
            let reused = match self.idle.checkout() {
                Some(sender) => {
                    lease.hold(sender);
                    true
                }
                None => {
                    lease.hold(self.connect().await.map_err(upstream)?);
                    false
                }
            };
            let sender = lease.sender.as_mut().expect("held above");
            if let Err(error) = sender.ready().await {
                lease.discard();
                if reused {
                    continue;
                }
                return Err(upstream(error));
            }
            // From here on only a complete response makes the connection
            // reusable.
            lease.reusable = false;
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(response.map(|body| ResponseBody::new(body, lease))),
                Err(mut error) => {
                    lease.discard();
                    match error.take_message() {
                        Some(unsent) if reused => request = unsent,
                        _ => return Err(upstream(error.into_error())),
                    }
                }
            }
        }
    }

    /// A new connection, its task spawned.
    async fn connect(&self) -> Result<SendRequest<B>, BoxError> {
        let io = self
            .connector
            .clone()
            .oneshot(self.target.clone())
            .await
            .map_err(Into::into)?;
        let (sender, connection) = self.handshake.handshake(io).await?;
        // The connection task ends when the peer closes, on an error, or
        // once its `SendRequest` is dropped (idle, expired or discarded).
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

struct Idle<B> {
    sender: SendRequest<B>,
    since: Instant,
}

/// The idle connections of an instance, most recently used last, and
/// whether a task is closing the expired ones.
pub(super) struct IdleSet<B> {
    senders: Mutex<Vec<Idle<B>>>,
    timeout: Duration,
    reaping: AtomicBool,
}

impl<B> IdleSet<B> {
    fn lock(&self) -> MutexGuard<'_, Vec<Idle<B>>> {
        self.senders.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection that is still open and has
    /// not idled out.
    fn checkout(&self) -> Option<SendRequest<B>> {
        let mut idle = self.lock();
        while let Some(Idle { sender, since }) = idle.pop() {
            if since.elapsed() >= self.timeout {
                // The others have been idle longer.
                idle.clear();
                return None;
            }
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Drops the connections that idled out or were closed by the peer;
    /// whether some are left.
    fn evict(&self) -> bool {
        let now = Instant::now();
        let mut idle = self.lock();
        idle.retain(|i| now.duration_since(i.since) < self.timeout && !i.sender.is_closed());
        let left = !idle.is_empty();
        if !left {
            self.reaping.store(false, Relaxed);
        }
        left
    }

    #[cfg(test)]
    pub(super) fn open(&self) -> usize {
        self.lock().iter().filter(|i| !i.sender.is_closed()).count()
    }
}

impl<B: Send + 'static> IdleSet<B> {
    fn put(self: &Arc<Self>, sender: SendRequest<B>) {
        if sender.is_closed() {
            return;
        }
        self.lock().push(Idle {
            sender,
            since: Instant::now(),
        });
        if !self.reaping.load(Relaxed) && !self.reaping.swap(true, Relaxed) {
            self.reap();
        }
    }

    /// Closes idle connections as they expire, from a task that lives
    /// while some are idle.
    fn reap(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to run the task: `checkout` still refuses expired
            // connections, and the next `put` on a runtime starts it.
            self.reaping.store(false, Relaxed);
            return;
        };
        let set = Arc::downgrade(self);
        let period = (self.timeout / 2).max(Duration::from_millis(1));
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                match set.upgrade() {
                    Some(set) if set.evict() => {}
                    _ => break,
                }
            }
        });
    }
}

/// A request's slot in its instance's pool, and its connection once it has
/// one: back to the idle set when dropped while reusable, else closed.
pub(super) struct Lease<B: Send + 'static> {
    idle: Arc<IdleSet<B>>,
    sender: Option<SendRequest<B>>,
    reusable: bool,
    // Released after `drop` has put the connection back, so that the
    // request it wakes finds it.
    _permit: OwnedSemaphorePermit,
}

impl<B: Send + 'static> Lease<B> {
    fn hold(&mut self, sender: SendRequest<B>) {
        self.sender = Some(sender);
        self.reusable = true;
    }

    fn discard(&mut self) {
        self.sender = None;
    }

    /// Ends the lease: the connection goes back to the idle set if
    /// `reusable`, else it is closed.
    pub(super) fn end(mut self, reusable: bool) {
        self.reusable = reusable;
    }
}

impl<B: Send + 'static> Drop for Lease<B> {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take()
            && self.reusable
        {
            self.idle.put(sender);
        }
    }
}

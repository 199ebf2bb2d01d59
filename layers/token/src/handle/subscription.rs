//! The push channel of one session: what the WebSocket endpoint sends.

use super::state::TokenHandle;
use crate::claims::Claims;
use crate::error::SubscribeError;
use crate::issuer::IssuedToken;
use crate::sessions::{Attach, Push};

/// The messages pushed to one session, from
/// [`TokenHandle::subscribe`]: the transport-independent part of the
/// WebSocket endpoint. Dropping it detaches the session's connection.
#[derive(Debug)]
pub struct Subscription {
    receiver: tokio::sync::mpsc::Receiver<Push>,
    sender: tokio::sync::mpsc::Sender<Push>,
    sid: String,
    handle: TokenHandle,
}

impl Subscription {
    /// The next message; `None` once the session is forgotten.
    pub async fn recv(&mut self) -> Option<Push> {
        self.receiver.recv().await
    }

    /// The next message if one is waiting.
    pub fn try_recv(&mut self) -> Option<Push> {
        self.receiver.try_recv().ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.handle.shared.sessions.detach(&self.sid, &self.sender);
    }
}

impl TokenHandle {
    /// Attaches a connection to the session of `claims` (already
    /// verified), with a queue of `queue` messages. Returns the
    /// subscription and the pre-fetched token the session already has, if
    /// any.
    ///
    /// The first connection of a session wins: while it is open, another
    /// one needs the session's current token (then it replaces the first),
    /// else [`SubscribeError::Taken`]. A superseded token whose successor
    /// was used revokes the session ([`SubscribeError::TokenReuse`]), as on
    /// a request.
    pub fn subscribe(
        &self,
        claims: &Claims,
        queue: usize,
    ) -> Result<(Subscription, Option<IssuedToken>), SubscribeError> {
        let (sender, receiver) = tokio::sync::mpsc::channel(queue.max(1));
        let verifier = &self.shared.verifier;
        let now = verifier.clock().unix_secs();
        let attached =
            self.shared
                .sessions
                .attach(claims, now, verifier.leeway_secs(), sender.clone());
        let pending = match attached {
            Attach::Attached(pending) => pending,
            Attach::Full => return Err(SubscribeError::Full),
            Attach::Taken => return Err(SubscribeError::Taken),
            Attach::Reuse => {
                self.revoke_reused(&claims.sid);
                return Err(SubscribeError::TokenReuse);
            }
        };
        Ok((
            Subscription {
                receiver,
                sender,
                sid: claims.sid.clone(),
                handle: self.clone(),
            },
            pending,
        ))
    }
}

//! The push channel of one session: what the WebSocket endpoint sends.

use super::state::TokenHandle;
use crate::claims::Claims;
use crate::issuer::IssuedToken;
use crate::sessions::Push;

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
    /// verified), replacing any previous one, with a queue of `queue`
    /// messages. Returns the subscription and the pre-fetched token the
    /// session already has, if any. `None` if the session table is full.
    pub fn subscribe(
        &self,
        claims: &Claims,
        queue: usize,
    ) -> Option<(Subscription, Option<IssuedToken>)> {
        let (sender, receiver) = tokio::sync::mpsc::channel(queue.max(1));
        let now = self.shared.verifier.clock().unix_secs();
        let pending = self.shared.sessions.attach(claims, now, sender.clone())?;
        Some((
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

//! Revoking a session or one token, and telling the session's connection.

use super::state::TokenHandle;
use crate::error::RevocationError;
use crate::metrics::REVOCATIONS;
use crate::revoke::{Revocation, RevocationFuture, RevocationReason};
use crate::sessions::Push;

impl TokenHandle {
    /// Revokes every token of a session, tells its WebSocket connection and
    /// forgets it. The revocation is kept one verifier `max_lifetime` (plus
    /// the leeway) from now: past every token of the session issued so far.
    pub async fn revoke_session(&self, sid: &str) -> Result<(), RevocationError> {
        self.revoke_session_because(sid, RevocationReason::Revoked)
            .await
    }

    /// [`revoke_session`](Self::revoke_session) with a reason; requests of
    /// the session then fail with the error of that reason
    /// ([`TokenError::TokenReuse`](crate::TokenError::TokenReuse) for
    /// [`RevocationReason::TokenReuse`]). If the revocation cannot be
    /// recorded, nothing changes and the error is returned.
    pub async fn revoke_session_because(
        &self,
        sid: &str,
        reason: RevocationReason,
    ) -> Result<(), RevocationError> {
        self.record_session(sid, reason).await?;
        self.close_session(sid, reason);
        Ok(())
    }

    fn record_session(&self, sid: &str, reason: RevocationReason) -> RevocationFuture<'static> {
        let verifier = &self.shared.verifier;
        verifier.revocations().revoke_because(
            Revocation::Session(sid.to_owned()),
            verifier.revocation_horizon(),
            reason,
        )
    }

    /// Forgets the session and tells its connection.
    fn close_session(&self, sid: &str, reason: RevocationReason) {
        if let Some(channel) = self.shared.sessions.remove(sid) {
            let _ = channel.try_send(Push::Revoked);
        }
        let why = match reason {
            RevocationReason::TokenReuse => "reuse",
            _ => "session",
        };
        metrics::counter!(REVOCATIONS, "what" => why).increment(1);
    }

    /// Revokes a session whose superseded token came back, from the request
    /// path: the list applies it to this instance's checks when asked (see
    /// [`Revocations::revoke_because`](crate::Revocations::revoke_because)),
    /// the connection is closed at once, and the write to a shared list runs
    /// on the runtime. A failure to record it is logged; the session is
    /// closed anyway.
    pub(crate) fn revoke_reused(&self, sid: &str) {
        tracing::warn!(sid, "superseded token reused: session revoked");
        let recorded = self.record_session(sid, RevocationReason::TokenReuse);
        self.close_session(sid, RevocationReason::TokenReuse);
        let sid = sid.to_owned();
        let write = async move {
            if let Err(error) = recorded.await {
                tracing::error!(%error, sid, "revocation of a reused session failed");
            }
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(write);
        }
    }

    /// Revokes one token (by `jti`); the session keeps its other tokens.
    /// Kept until the later of its `exp` and one verifier `max_lifetime`
    /// from now (plus the leeway), so that a wrong `exp` cannot end it
    /// early.
    pub async fn revoke_token(
        &self,
        sid: &str,
        jti: &str,
        exp: u64,
    ) -> Result<(), RevocationError> {
        let verifier = &self.shared.verifier;
        verifier
            .revocations()
            .revoke(
                Revocation::Token(jti.to_owned()),
                exp.saturating_add(verifier.leeway_secs())
                    .max(verifier.revocation_horizon()),
            )
            .await?;
        self.shared.sessions.forget_next(sid, jti);
        metrics::counter!(REVOCATIONS, "what" => "token").increment(1);
        Ok(())
    }
}

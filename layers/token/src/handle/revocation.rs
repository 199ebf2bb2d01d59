//! Revoking a session or one token, and telling the session's connection.

use super::state::TokenHandle;
use crate::error::RevocationError;
use crate::metrics::REVOCATIONS;
use crate::revoke::Revocation;
use crate::sessions::Push;

impl TokenHandle {
    /// Revokes every token of a session, tells its WebSocket connection and
    /// forgets it.
    pub async fn revoke_session(&self, sid: &str) -> Result<(), RevocationError> {
        let verifier = &self.shared.verifier;
        let until = verifier.clock().unix_secs()
            + crate::verify::DEFAULT_MAX_LIFETIME.as_secs()
            + verifier.leeway_secs();
        verifier
            .revocations()
            .revoke(Revocation::Session(sid.to_owned()), until)
            .await?;
        if let Some(channel) = self.shared.sessions.remove(sid) {
            let _ = channel.try_send(Push::Revoked);
        }
        metrics::counter!(REVOCATIONS, "what" => "session").increment(1);
        Ok(())
    }

    /// Revokes one token (by `jti`, until its `exp`); the session keeps its
    /// other tokens.
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
                exp + verifier.leeway_secs(),
            )
            .await?;
        self.shared.sessions.forget_next(sid, jti);
        metrics::counter!(REVOCATIONS, "what" => "token").increment(1);
        Ok(())
    }
}

//! The hook that checks a login's credentials.

use std::fmt;
use std::net::IpAddr;

use foresight_core::BoxError;

/// A password as sent to `/token/login`. `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password, to be verified (never logged).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// One login: the claimed subject, its password if one was sent, and the
/// client address when the server knows it (served with
/// `into_make_service_with_connect_info::<SocketAddr>()`).
#[derive(Clone, Debug)]
pub struct LoginAttempt {
    sub: String,
    password: Option<Password>,
    client: Option<IpAddr>,
}

impl LoginAttempt {
    /// A login of `sub` with `password`.
    pub fn new(sub: impl Into<String>, password: Option<Password>) -> Self {
        Self {
            sub: sub.into(),
            password,
            client: None,
        }
    }

    /// The same attempt, from `client`.
    pub fn with_client(mut self, client: IpAddr) -> Self {
        self.client = Some(client);
        self
    }

    /// The subject the client claims to be.
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// The password sent, if any.
    pub fn password(&self) -> Option<&Password> {
        self.password.as_ref()
    }

    /// The client address, if known.
    pub fn client(&self) -> Option<IpAddr> {
        self.client
    }
}

/// Why an [`Authenticator`] refused a login.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Unknown subject, wrong or missing password: one answer for all, so
    /// that a client cannot tell which users exist.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The credentials could not be checked (a user store is down).
    #[error("credentials cannot be checked now")]
    Unavailable {
        /// The failure.
        #[source]
        source: BoxError,
    },
}

/// Checks the credentials of a login and names the subject of its tokens.
///
/// [`AuthServer`](super::AuthServer) cannot be built without one: there is
/// no anonymous login. `authenticate` runs on Tokio's blocking pool, so it
/// may hash a password or block on a user store; the server bounds how
/// many run at once. Implemented for every
/// `Fn(&LoginAttempt) -> Result<String, Rejection>`.
///
/// ```
/// use foresight_token::server::{Authenticator, LoginAttempt, Password, Rejection};
///
/// // Only for a closed test setup: anyone who can reach the server logs in.
/// let anyone = |attempt: &LoginAttempt| Ok::<_, Rejection>(attempt.sub().to_owned());
/// let one_user = |attempt: &LoginAttempt| match attempt.password() {
///     Some(p) if attempt.sub() == "alice" && p.expose() == "correct horse" => Ok("alice".to_owned()),
///     _ => Err(Rejection::InvalidCredentials),
/// };
/// let attempt = LoginAttempt::new("alice", Some(Password::new("wrong")));
/// assert!(anyone.authenticate(&attempt).is_ok());
/// assert!(matches!(one_user.authenticate(&attempt), Err(Rejection::InvalidCredentials)));
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// The subject of the tokens to issue, or why the login is refused.
    fn authenticate(&self, attempt: &LoginAttempt) -> Result<String, Rejection>;
}

impl<F> Authenticator for F
where
    F: Fn(&LoginAttempt) -> Result<String, Rejection> + Send + Sync + 'static,
{
    fn authenticate(&self, attempt: &LoginAttempt) -> Result<String, Rejection> {
        self(attempt)
    }
}

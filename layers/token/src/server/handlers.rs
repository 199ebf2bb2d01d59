//! The request handlers of the authentication server.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA};
use http::{HeaderMap, HeaderValue, StatusCode};

use super::AuthServer;
use super::authenticator::{LoginAttempt, Password, Rejection};
use super::error::AuthServerError;
use crate::handle::bearer;
use crate::issuer::{TokenRequest, random_id};
use crate::revoke::{Revocation, Revocations as _};

/// Longest accepted `sub`, `sid` or `jti`.
const MAX_ID: usize = 256;
/// Longest accepted password (hashing a huge one costs the server).
const MAX_PASSWORD: usize = 1024;
/// Longest a revocation is kept: the verifiers' maximum token lifetime.
const MAX_REVOCATION: u64 = 12 * 3600;

type Answer = Result<Response, AuthServerError>;

pub(super) async fn count(
    State(server): State<AuthServer>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() != "/stats" {
        server.inner.rates.record();
    }
    next.run(request).await
}

/// Responses of the token endpoints are never cached (RFC 6749 §5.1).
pub(super) async fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, AuthServerError> {
    match body {
        Ok(Json(body)) => Ok(body),
        Err(rejection) => Err(match rejection {
            JsonRejection::MissingJsonContentType(_) => AuthServerError::NotJson,
            JsonRejection::JsonSyntaxError(_) => {
                AuthServerError::InvalidRequest("request body is not valid JSON")
            }
            JsonRejection::JsonDataError(_) => AuthServerError::InvalidRequest(
                "request body lacks a field or has one of the wrong type",
            ),
            rejection if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                AuthServerError::TooLarge
            }
            _ => AuthServerError::InvalidRequest("request body cannot be read"),
        }),
    }
}

fn check_id(id: &str, what: &'static str) -> Result<(), AuthServerError> {
    if id.is_empty() || id.len() > MAX_ID {
        return Err(AuthServerError::InvalidRequest(what));
    }
    Ok(())
}

fn unix_now(server: &AuthServer) -> Duration {
    server.inner.clock.unix()
}

fn limited(result: Result<(), Duration>) -> Result<(), AuthServerError> {
    result.map_err(|retry_after| AuthServerError::RateLimited { retry_after })
}

impl AuthServer {
    fn check_client(&self, headers: &HeaderMap) -> Result<(), AuthServerError> {
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|v| bearer(v.as_bytes()))
            .ok_or(AuthServerError::MissingClientSecret)?;
        if self.inner.secret.matches(presented.as_bytes()) {
            Ok(())
        } else {
            Err(AuthServerError::WrongClientSecret)
        }
    }
}

#[derive(serde::Deserialize)]
pub(super) struct LoginBody {
    sub: String,
    password: Option<String>,
}

pub(super) async fn login(
    State(server): State<AuthServer>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Result<Json<LoginBody>, JsonRejection>,
) -> Answer {
    let LoginBody { sub, password } = body(request)?;
    check_id(&sub, "sub must be 1 to 256 bytes")?;
    if password.as_ref().is_some_and(|p| p.len() > MAX_PASSWORD) {
        return Err(AuthServerError::InvalidRequest(
            "password must be at most 1024 bytes",
        ));
    }
    let inner = &server.inner;
    let now = unix_now(&server);
    let client = connect.map(|Extension(ConnectInfo(addr))| addr.ip());
    if let Some(client) = client {
        limited(
            inner
                .login_limit_per_address
                .check(&client.to_string(), now),
        )?;
    }
    limited(inner.login_limit.check(&sub, now))?;
    // The permit moves into the blocking task: a dropped request cannot
    // free it while its password is still being hashed.
    let permit = inner
        .logins
        .clone()
        .try_acquire_owned()
        .map_err(|_| AuthServerError::LoginsBusy)?;
    let mut attempt = LoginAttempt::new(sub, password.map(Password::new));
    if let Some(client) = client {
        attempt = attempt.with_client(client);
    }
    let authenticator = inner.authenticator.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        authenticator.authenticate(&attempt)
    })
    .await
    .map_err(|_| AuthServerError::AuthenticatorUnavailable)?;
    let sub = match checked {
        Ok(sub) => sub,
        Err(Rejection::InvalidCredentials) => return Err(AuthServerError::InvalidCredentials),
        Err(error) => {
            tracing::warn!(%error, "authenticator failed");
            return Err(AuthServerError::AuthenticatorUnavailable);
        }
    };
    let sid = random_id();
    let lifetime = inner.sessions.first_lifetime(inner.login_lifetime);
    let now = inner.clock.unix_secs();
    inner
        .sessions
        .open(sid.clone(), sub.clone(), now, lifetime)
        .map_err(|retry_after| AuthServerError::SessionsFull { retry_after })?;
    match inner
        .issuer
        .sign(&TokenRequest::new(sub, sid.clone(), lifetime))
    {
        Ok(token) => Ok(Json(token).into_response()),
        Err(error) => {
            inner.sessions.close(&sid);
            Err(AuthServerError::Issue(error))
        }
    }
}

#[derive(serde::Deserialize)]
pub(super) struct RefreshBody {
    sub: String,
    sid: String,
    lifetime_secs: u64,
}

pub(super) async fn refresh(
    State(server): State<AuthServer>,
    headers: HeaderMap,
    request: Result<Json<RefreshBody>, JsonRejection>,
) -> Answer {
    server.check_client(&headers)?;
    let RefreshBody {
        sub,
        sid,
        lifetime_secs,
    } = body(request)?;
    check_id(&sub, "sub must be 1 to 256 bytes")?;
    check_id(&sid, "sid must be 1 to 256 bytes")?;
    let inner = &server.inner;
    limited(inner.refresh_limit.check(&sub, unix_now(&server)))?;
    if inner.revocations.is_session_revoked(&sid) {
        inner.sessions.close(&sid);
        return Err(AuthServerError::UnknownSession);
    }
    let lifetime = inner
        .sessions
        .renew(
            &sid,
            &sub,
            inner.clock.unix_secs(),
            Duration::from_secs(lifetime_secs),
        )
        .map_err(|_| AuthServerError::UnknownSession)?;
    let token = inner
        .issuer
        .sign(&TokenRequest::new(sub, sid, lifetime))
        .map_err(AuthServerError::Issue)?;
    Ok(Json(token).into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct RevokeBody {
    sid: Option<String>,
    jti: Option<String>,
    exp: Option<u64>,
}

pub(super) async fn revoke(
    State(server): State<AuthServer>,
    headers: HeaderMap,
    request: Result<Json<RevokeBody>, JsonRejection>,
) -> Answer {
    server.check_client(&headers)?;
    let RevokeBody { sid, jti, exp } = body(request)?;
    let inner = &server.inner;
    let now = inner.clock.unix_secs();
    let until = now + MAX_REVOCATION;
    let recorded = match (sid, jti) {
        (Some(sid), _) => {
            check_id(&sid, "sid must be 1 to 256 bytes")?;
            inner.sessions.close(&sid);
            inner.revocations.insert(Revocation::Session(sid), until)
        }
        (None, Some(jti)) => {
            check_id(&jti, "jti must be 1 to 256 bytes")?;
            let exp = exp.map_or(until, |exp| exp.min(until));
            inner.revocations.insert(Revocation::Token(jti), exp)
        }
        (None, None) => return Err(AuthServerError::InvalidRequest("sid or jti required")),
    };
    recorded.map_err(AuthServerError::Revocation)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn jwks(State(server): State<AuthServer>) -> Response {
    Json(server.inner.issuer.key_ring().jwks()).into_response()
}

pub(super) async fn stats(State(server): State<AuthServer>) -> Response {
    let rates = &server.inner.rates;
    Json(serde_json::json!({
        "total": rates.total(),
        "last_second": rates.last_second(),
        "peak_per_second": rates.peak(),
    }))
    .into_response()
}

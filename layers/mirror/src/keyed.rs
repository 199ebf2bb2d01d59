//! The path of a request that carries an idempotency key (see
//! [`crate::idempotency`]): look the key up, reserve it, run the handler
//! once, keep its answer.

use std::sync::Arc;
use std::time::Duration;

use foresight_core::BoxError;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, Limited};
use tokio::sync::Mutex;
use tower_service::Service;

use crate::config::Config;
use crate::error::SessionError;
use crate::future::MirrorBody;
use crate::idempotency::{self, Decision};
use crate::persist::{Outcome, persist, reserve};
use crate::session::{State, load};

/// How often a request waits on a sibling attempt's reservation.
const SIBLING_POLL: Duration = Duration::from_millis(50);

/// Compare-and-set rounds for the reservation before a 409.
const RESERVE_ROUNDS: usize = 3;

/// Runs `request` with key `key` at most once per session.
pub(crate) async fn call<S, ReqBody, ResBody>(
    config: Arc<Config>,
    state: Arc<Mutex<State>>,
    mut inner: S,
    request: Request<ReqBody>,
    key: String,
) -> Result<Result<Response<MirrorBody<ResBody>>, SessionError>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let fingerprint = idempotency::request_of(request.method(), request.uri());
    match claim(&config, &state, &key, &fingerprint).await {
        Ok(Claim::Run) => {}
        Ok(Claim::Replay(answer)) => {
            metrics::counter!(REPLAYED).increment(1);
            return Ok(Ok(idempotency::replay(&answer).map(Either::Right)));
        }
        Ok(Claim::Sessionless) => {
            let response = inner.call(request).await?;
            let mut guard = state.lock().await;
            return Ok(finish(&config, &mut guard, response.map(Either::Left)).await);
        }
        Err(e) => return Ok(Err(e)),
    }
    let response = inner.call(request).await?;
    let (parts, body) = response.into_parts();
    let body = match Limited::new(body, idempotency::MAX_BUFFERED_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(source) => return Ok(Err(SessionError::AnswerNotKept(source.to_string().into()))),
    };
    let mut guard = state.lock().await;
    idempotency::complete(
        &mut guard.idempotency,
        &key,
        parts.status,
        &parts.headers,
        &body,
    );
    guard.dirty = true;
    let response = Response::from_parts(parts, Either::Right(Full::new(body)));
    Ok(finish(&config, &mut guard, response).await)
}

/// Saves the session after the handler and sets its cookie.
async fn finish<B>(
    config: &Config,
    state: &mut State,
    mut response: Response<MirrorBody<B>>,
) -> Result<Response<MirrorBody<B>>, SessionError> {
    match persist(config, state).await? {
        Outcome::Nothing => {}
        Outcome::SetId(id) => config.carrier.write(response.headers_mut(), Some(id)),
        Outcome::ClearId => config.carrier.write(response.headers_mut(), None),
    }
    Ok(response)
}

enum Claim {
    Run,
    Replay(idempotency::Answer),
    Sessionless,
}

/// Loads the session and reserves `key`, or finds its answer. A
/// reservation held by another attempt of this same request (a hedge, a
/// replay) is waited for, at most the lease; one held by another request is
/// a 409.
async fn claim(
    config: &Config,
    state: &Mutex<State>,
    key: &str,
    fingerprint: &str,
) -> Result<Claim, SessionError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(idempotency::LEASE);
    let mut rounds = 0;
    loop {
        let mut guard = state.lock().await;
        load(config, &mut guard).await?;
        if guard.id.is_none() {
            return Ok(Claim::Sessionless);
        }
        let now = idempotency::now();
        match idempotency::decide(&guard.idempotency, key, fingerprint, now) {
            Decision::Replay(answer) => return Ok(Claim::Replay(answer)),
            Decision::Reused => return Err(SessionError::IdempotencyKeyReused),
            Decision::InUse => {
                let sibling = idempotency::reserved_by(&guard.idempotency, key, guard.attempt);
                if !sibling || tokio::time::Instant::now() >= deadline {
                    return Err(SessionError::IdempotencyKeyInUse);
                }
                reload(&mut guard);
                drop(guard);
                tokio::time::sleep(SIBLING_POLL).await;
            }
            Decision::Run => {
                let attempt = guard.attempt;
                idempotency::reserve(&mut guard.idempotency, key, fingerprint, now, attempt);
                guard.idempotency_key = Some(key.to_owned());
                match reserve(config, &guard).await {
                    Ok(version) => {
                        guard.version = Some(version);
                        return Ok(Claim::Run);
                    }
                    Err(SessionError::Conflict(_)) if rounds + 1 < RESERVE_ROUNDS => {
                        rounds += 1;
                        guard.idempotency_key = None;
                        reload(&mut guard);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Forgets what was loaded, so that the next `load` reads the store again.
fn reload(state: &mut State) {
    state.loaded = false;
    state.id = None;
    state.version = None;
    state.base = None;
    state.data = foresight_store::SessionData::new();
    state.writers.clear();
    state.idempotency.clear();
}

/// Counted per answer replayed from a record.
pub(crate) const REPLAYED: &str = "foresight_mirror_idempotent_replays_total";

//! Saving a session after the handler, and answering shadow requests.

use foresight_store::{SessionData, SessionId, StoreError};

use crate::carrier::Presented;
use crate::config::Config;
use crate::error::SessionError;
use crate::fence;
use crate::idempotency;
use crate::session::State;

/// What the response must tell the client about its session id.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Nothing,
    SetId(SessionId),
    ClearId,
}

/// Persists the session if the handler changed it. Only dirty sessions are
/// written, each write a compare-and-set on the version loaded.
pub(crate) async fn persist(config: &Config, state: &mut State) -> Result<Outcome, SessionError> {
    if let Some(err) = &state.failed {
        return Err(err.clone());
    }
    if !state.loaded {
        return Ok(Outcome::Nothing);
    }
    let store = &config.store;
    if state.destroy {
        if let Some(id) = state.id {
            store
                .delete(id, None)
                .await
                .map_err(SessionError::from_store)?;
        }
        return Ok(if state.presented.is_some() {
            Outcome::ClearId
        } else {
            Outcome::Nothing
        });
    }
    if !state.dirty {
        if let (Some(id), Some(interval)) = (state.id, config.read_touch)
            && config.touched.due(id, interval)
        {
            // The read already succeeded: a failed touch costs at most an
            // earlier idle expiry, not the response.
            if touch(config, id).await == Some(false) {
                return Ok(Outcome::ClearId);
            }
        }
        return Ok(Outcome::Nothing);
    }
    let loaded = state.version;
    match (state.id, loaded) {
        (Some(old), Some(version)) if state.rotate => {
            let new = store
                .create(
                    &stamped(state, &state.data, &state.writers, &state.idempotency)?,
                    config.expiry,
                )
                .await
                .map_err(SessionError::from_store)?;
            if let Err(e) = store.delete(old, Some(version)).await {
                // The old session changed meanwhile: keep it, drop the copy.
                let _ = store.delete(new, None).await;
                return Err(SessionError::from_store(e));
            }
            metrics::counter!("foresight_mirror_rotations_total").increment(1);
            Ok(Outcome::SetId(new))
        }
        (Some(id), Some(version)) => {
            save(config, state, id, version).await?;
            config.touched.written(id);
            Ok(Outcome::Nothing)
        }
        _ => {
            if state.data.is_empty() {
                return Ok(Outcome::Nothing);
            }
            let new = store
                .create(&stamped(state, &state.data, &[], &[])?, config.expiry)
                .await
                .map_err(SessionError::from_store)?;
            Ok(Outcome::SetId(new))
        }
    }
}

async fn save(
    config: &Config,
    state: &State,
    id: SessionId,
    version: foresight_store::Version,
) -> Result<(), SessionError> {
    if fence::sibling_wrote(&state.writers, state.attempt) {
        metrics::counter!(fence::FENCED_WRITES).increment(1);
        return Ok(());
    }
    let mut data = stamped(state, &state.data, &state.writers, &state.idempotency)?;
    let mut expected = version;
    let mut attempts_left = if config.merge.is_some() {
        config.merge_attempts
    } else {
        0
    };
    // Re-applications of a blind write after a lost compare-and-set.
    let mut blind_attempts_left = 3;
    loop {
        match config.store.save(id, &data, expected).await {
            Ok(_) => return Ok(()),
            Err(e @ StoreError::Conflict { .. }) => {
                metrics::counter!("foresight_mirror_conflicts_total").increment(1);
                let Some(mut theirs) = config
                    .store
                    .load(id)
                    .await
                    .map_err(SessionError::from_store)?
                else {
                    return Err(SessionError::from_store(e));
                };
                let writers = fence::take(&mut theirs.value);
                let records = idempotency::take(&mut theirs.value);
                // Another attempt of this request wrote meanwhile (a hedge,
                // or the replay of a timed-out attempt): the request's effect
                // is in, and this later copy of it must not be laid over
                // whatever came after.
                if fence::sibling_wrote(&writers, state.attempt) {
                    metrics::counter!(fence::FENCED_WRITES).increment(1);
                    return Ok(());
                }
                // A blind write (the handler set keys and saw none of the
                // data) does not depend on the version it loaded: if its
                // keys' `BlindWritePolicy` allows, it is applied after the
                // newer one, setting its keys over it. That is what a
                // failover replay needs when the dead instance's first
                // attempt, or a write behind a cache not yet invalidated,
                // got there first. A write already applied (the newer
                // version holds exactly its keys) succeeds under any policy:
                // nothing is overwritten. A write that read first may have
                // computed from a stale value (two increments both writing
                // 1): that stays a conflict, or goes to the merge policy.
                if !state.observed {
                    let mut ours = theirs.value.clone();
                    for key in &state.written {
                        if let Some(value) = state.data.get_value(key) {
                            ours.insert_value(key, value.clone())
                                .map_err(SessionError::from_data)?;
                        }
                    }
                    if ours == theirs.value {
                        metrics::counter!("foresight_mirror_blind_writes_already_applied_total")
                            .increment(1);
                        return Ok(());
                    }
                    if blind_attempts_left == 0
                        || !config.blind_writes.may_reapply(state.written.iter())
                    {
                        metrics::counter!("foresight_mirror_blind_writes_refused_total")
                            .increment(1);
                        return Err(SessionError::from_store(e));
                    }
                    blind_attempts_left -= 1;
                    metrics::counter!("foresight_mirror_blind_writes_reapplied_total").increment(1);
                    data = stamped(state, &ours, &writers, &records)?;
                    expected = theirs.version;
                    continue;
                }
                let (Some(policy), Some(base)) = (&config.merge, &state.base) else {
                    return Err(SessionError::from_store(e));
                };
                if attempts_left == 0 {
                    return Err(SessionError::from_store(e));
                }
                attempts_left -= 1;
                let Some(merged) = policy.merge(base, &state.data, &theirs.value) else {
                    return Err(SessionError::from_store(e));
                };
                metrics::counter!("foresight_mirror_merges_total").increment(1);
                data = stamped(state, &merged, &writers, &records)?;
                expected = theirs.version;
            }
            Err(e) => return Err(SessionError::from_store(e)),
        }
    }
}

/// `data` with the hidden records put back: the writing attempts
/// (`writers` and this request's attempt) and the idempotency records
/// (`records`, with this request's key as this request has it).
fn stamped(
    state: &State,
    data: &SessionData,
    writers: &[foresight_core::attempt::Attempt],
    records: &[idempotency::Record],
) -> Result<SessionData, SessionError> {
    let mut data = data.clone();
    fence::stamp(&mut data, writers, state.attempt).map_err(SessionError::from_data)?;
    let records = idempotency::merge(
        records,
        &state.idempotency,
        state.idempotency_key.as_deref(),
    );
    idempotency::stamp(&mut data, &records).map_err(SessionError::from_data)?;
    Ok(data)
}

/// Writes this request's idempotency reservation: the session as loaded,
/// with the records as the request holds them, without its attempt among
/// the writers (nothing of the request is applied yet). Returns the new
/// version.
pub(crate) async fn reserve(
    config: &Config,
    state: &State,
) -> Result<foresight_store::Version, SessionError> {
    let (Some(id), Some(version)) = (state.id, state.version) else {
        return Err(SessionError::Malformed);
    };
    let mut data = state.data.clone();
    fence::stamp(&mut data, &state.writers, None).map_err(SessionError::from_data)?;
    idempotency::stamp(&mut data, &state.idempotency).map_err(SessionError::from_data)?;
    config
        .store
        .save(id, &data, version)
        .await
        .map_err(SessionError::from_store)
}

/// A shadow request, when the handler is skipped: validate the id, load the
/// session (warming a cache in front of the store), restart its idle
/// timeout. `Ok(true)` if there was a session to warm.
pub(crate) async fn warm(config: &Config, presented: Presented) -> Result<bool, SessionError> {
    let id = match presented {
        Presented::None => return Ok(false),
        Presented::Malformed => return Err(SessionError::Malformed),
        Presented::Id(id) => id,
    };
    let found = config
        .store
        .load(id)
        .await
        .map_err(SessionError::from_store)?;
    if found.is_none() {
        return Ok(false);
    }
    let alive = touch(config, id).await != Some(false);
    metrics::counter!("foresight_mirror_shadow_warmed_total").increment(1);
    Ok(alive)
}

/// Restarts the idle timeout of a session that was read: whether it is
/// still alive, `None` if the touch failed. A failure is counted and
/// logged, never returned: the read it follows succeeded.
async fn touch(config: &Config, id: SessionId) -> Option<bool> {
    match config.store.touch(id, config.expiry.idle).await {
        Ok(alive) => Some(alive),
        Err(e) => {
            metrics::counter!("foresight_mirror_touch_errors_total").increment(1);
            tracing::warn!(error = %e, %id, "idle timeout not restarted after a read");
            None
        }
    }
}

//! The `Session` handle that handlers find in request extensions.

use std::fmt;
use std::sync::Arc;

use foresight_core::attempt::Attempt;
use foresight_store::{SessionData, SessionId, Version};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

use crate::config::Config;
use crate::error::SessionError;

/// The session of one request, loaded from the store the first time a
/// handler reads or writes it, and saved (with compare-and-set) after the
/// handler answered, only if it changed.
///
/// Cheap to clone; clones share the same state. Found in request extensions
/// (and, with the `axum` feature, as an extractor).
#[derive(Clone)]
pub struct Session {
    state: Arc<Mutex<State>>,
    config: Arc<Config>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub(crate) struct State {
    /// The id the request presented, not yet checked.
    pub(crate) presented: Option<SessionId>,
    pub(crate) loaded: bool,
    /// The id of the stored session, once loaded and found.
    pub(crate) id: Option<SessionId>,
    /// The version loaded.
    pub(crate) version: Option<Version>,
    /// The data as loaded, kept only when a merge policy may need it.
    pub(crate) base: Option<SessionData>,
    pub(crate) data: SessionData,
    pub(crate) dirty: bool,
    /// Whether the handler saw any of the data (a read, a removal that
    /// returned a value, an update closure): then its write may depend on
    /// what it saw, and only a compare-and-set can tell whether it is stale.
    pub(crate) observed: bool,
    /// Keys the handler set, in order: what a blind write re-applies onto a
    /// newer version after losing a compare-and-set.
    pub(crate) written: Vec<String>,
    pub(crate) rotate: bool,
    pub(crate) destroy: bool,
    /// A load failure, reported in the response even if the handler
    /// swallowed it.
    pub(crate) failed: Option<SessionError>,
    /// The attempt this request is, as the routing tier tagged it.
    pub(crate) attempt: Option<Attempt>,
    /// The attempts that wrote the session, as loaded (see `fence`).
    pub(crate) writers: Vec<Attempt>,
    /// The session's idempotency records, as loaded or as this request
    /// changed them (see `idempotency`).
    pub(crate) idempotency: Vec<crate::idempotency::Record>,
    /// This request's idempotency key, when the layer deduplicates it.
    pub(crate) idempotency_key: Option<String>,
}

impl Session {
    pub(crate) fn new(
        config: Arc<Config>,
        presented: Option<SessionId>,
        attempt: Option<Attempt>,
    ) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                presented,
                loaded: false,
                id: None,
                version: None,
                base: None,
                data: SessionData::new(),
                dirty: false,
                observed: false,
                written: Vec::new(),
                rotate: false,
                destroy: false,
                failed: None,
                attempt,
                writers: Vec::new(),
                idempotency: Vec::new(),
                idempotency_key: None,
            })),
            config,
        }
    }

    pub(crate) fn shares(&self) -> Arc<Mutex<State>> {
        self.state.clone()
    }

    /// Locks the state, loading the session first if needed.
    async fn loaded(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        let mut state = self.state.lock().await;
        load(&self.config, &mut state).await?;
        Ok(state)
    }

    /// The value under `key`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let mut state = self.loaded().await?;
        state.observed = true;
        state.data.get(key).map_err(SessionError::from_data)
    }

    /// The raw value under `key`.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, SessionError> {
        let mut state = self.loaded().await?;
        state.observed = true;
        Ok(state.data.get_value(key).cloned())
    }

    /// Stores `value` under `key`; the session is saved after the handler.
    /// Creates the session if the request had none.
    pub async fn insert<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), SessionError> {
        let mut state = self.loaded().await?;
        state
            .data
            .insert(key, value)
            .map_err(SessionError::from_data)?;
        state.dirty = true;
        if !state.written.iter().any(|k| k == key) {
            state.written.push(key.to_owned());
        }
        Ok(())
    }

    /// Removes `key`, returning its raw value.
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, SessionError> {
        let mut state = self.loaded().await?;
        state.observed = true;
        let old = state.data.remove(key);
        state.dirty |= old.is_some();
        Ok(old)
    }

    /// Runs `f` on the data and marks the session changed.
    pub async fn update<R>(
        &self,
        f: impl FnOnce(&mut SessionData) -> R,
    ) -> Result<R, SessionError> {
        let mut state = self.loaded().await?;
        state.dirty = true;
        state.observed = true;
        Ok(f(&mut state.data))
    }

    /// A copy of the whole data.
    pub async fn data(&self) -> Result<SessionData, SessionError> {
        let mut state = self.loaded().await?;
        state.observed = true;
        Ok(state.data.clone())
    }

    /// The id of the stored session, `None` for a session not saved yet.
    pub async fn id(&self) -> Result<Option<SessionId>, SessionError> {
        Ok(self.loaded().await?.id)
    }

    /// The version loaded, `None` for a session not saved yet.
    pub async fn version(&self) -> Result<Option<Version>, SessionError> {
        let mut state = self.loaded().await?;
        state.observed = true;
        Ok(state.version)
    }

    /// Gives the session a new id when it is saved, e.g. after a login or
    /// any privilege change. The old id is deleted from the store (with
    /// compare-and-set) and is dead afterwards.
    pub async fn rotate_id(&self) -> Result<(), SessionError> {
        let mut state = self.loaded().await?;
        state.rotate = true;
        state.dirty = true;
        Ok(())
    }

    /// Deletes the session after the handler (logout) and clears the id on
    /// the client.
    pub async fn destroy(&self) -> Result<(), SessionError> {
        let mut state = self.loaded().await?;
        state.destroy = true;
        Ok(())
    }
}

/// Loads the presented session once; an id the store does not know is
/// dropped, never adopted.
pub(crate) async fn load(config: &Config, state: &mut State) -> Result<(), SessionError> {
    if let Some(err) = &state.failed {
        return Err(err.clone());
    }
    if state.loaded {
        return Ok(());
    }
    if let Some(id) = state.presented {
        match config.store.load(id).await {
            Ok(Some(mut found)) => {
                state.id = Some(id);
                state.version = Some(found.version);
                state.writers = crate::fence::take(&mut found.value);
                state.idempotency = crate::idempotency::take(&mut found.value);
                if config.merge.is_some() {
                    state.base = Some(found.value.clone());
                }
                state.data = found.value;
            }
            Ok(None) => {
                metrics::counter!("foresight_mirror_unknown_ids_total").increment(1);
            }
            Err(e) => {
                let err = SessionError::from_store(e);
                state.failed = Some(err.clone());
                return Err(err);
            }
        }
    }
    state.loaded = true;
    Ok(())
}

//! Configuration shared by the layer, its services and the session handles.

use std::sync::Arc;
use std::time::Duration;

use foresight_store::{Expiry, SharedStore};

use crate::blind::BlindWrites;
use crate::carrier::Carrier;
use crate::merge::MergePolicy;
use crate::touch::TouchLog;

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) store: SharedStore,
    pub(crate) carrier: Carrier,
    pub(crate) expiry: Expiry,
    pub(crate) shadow_runs_handler: bool,
    pub(crate) merge: Option<Arc<dyn MergePolicy>>,
    pub(crate) merge_attempts: usize,
    pub(crate) read_touch: Option<Duration>,
    pub(crate) touched: Arc<TouchLog>,
    pub(crate) blind_writes: BlindWrites,
    /// Requests with an `Idempotency-Key` run once per session.
    pub(crate) idempotency: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("store", &self.store)
            .field("carrier", &self.carrier)
            .field("expiry", &self.expiry)
            .field("shadow_runs_handler", &self.shadow_runs_handler)
            .field("merge", &self.merge.is_some())
            .field("merge_attempts", &self.merge_attempts)
            .field("read_touch", &self.read_touch)
            .field("blind_writes", &self.blind_writes)
            .field("idempotency", &self.idempotency)
            .finish()
    }
}

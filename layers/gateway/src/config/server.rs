//! `[server]`: the process's runtime.
//!
//! ```toml
//! [server]
//! workers = 1        # runtime worker threads; default: one per available CPU
//! ```
//!
//! The default follows HAProxy's, whose `nbthread` is the number of CPUs
//! the process may run on: a gateway alone on its host uses the host. On a
//! host shared with the instances or with other proxies, or to compare
//! with a proxy pinned to fewer threads, set it explicitly. The section is
//! applied at start; a reload does not change it.

use std::num::NonZeroUsize;

use serde::Deserialize;
use toml::Spanned;

/// `[server]`: the runtime that serves both listeners.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Worker threads of the runtime, at least 1 (default: one per CPU
    /// available to the process).
    pub workers: Option<Spanned<usize>>,
}

impl ServerConfig {
    /// The worker threads to start: the configured number, else one per
    /// CPU available to the process (one when that is unknown).
    pub fn worker_threads(&self) -> NonZeroUsize {
        match &self.workers {
            Some(workers) => NonZeroUsize::new(*workers.get_ref()).unwrap_or(NonZeroUsize::MIN),
            None => std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
        }
    }

    pub(crate) fn check(&self) -> Result<(), (std::ops::Range<usize>, String)> {
        match &self.workers {
            Some(workers) if *workers.get_ref() == 0 => {
                Err((workers.span(), "[server] workers must be at least 1".into()))
            }
            _ => Ok(()),
        }
    }
}

//! Hot reload of the instance set: on SIGHUP and whenever the config file
//! changes, the file is read and validated again, and its instances and
//! weights replace the topology's in one step. An invalid file is logged
//! with its line and column and changes nothing. Other settings (listeners,
//! key, limits) take effect at the next start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use foresight::core::Topology;
use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use crate::config::{Config, LoadError};

/// Reads `path` and applies its instances to `topology`; returns how many
/// instances the topology now has.
pub fn reload(path: &Path, topology: &Topology) -> Result<usize, LoadError> {
    let config = Config::load(path)?;
    let specs = config.instance_specs();
    let count = specs.len();
    topology
        .replace(specs)
        .expect("a validated config has unique ids and valid weights");
    metrics::counter!("foresight_gateway_reloads_total").increment(1);
    Ok(count)
}

/// Reloads on SIGHUP and on changes of the file until `shutdown` is true.
pub async fn watch_config(path: PathBuf, topology: Topology, mut shutdown: watch::Receiver<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "no SIGHUP handler: reload on file changes only");
            None
        }
    };
    // One pending notice is enough: a burst of file events is one reload.
    let (tx, mut changed) = mpsc::channel::<()>(1);
    let file_name = path.file_name().map(|n| n.to_owned());
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let ours = event
                .paths
                .iter()
                .any(|p| p.file_name() == file_name.as_deref());
            if ours && (event.kind.is_modify() || event.kind.is_create()) {
                let _ = tx.try_send(());
            }
        }
    });
    let _watcher = match watcher {
        Ok(mut watcher) => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            match watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => Some(watcher),
                Err(error) => {
                    tracing::warn!(%error, "cannot watch the config file: reload on SIGHUP only");
                    None
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, "no file watcher: reload on SIGHUP only");
            None
        }
    };
    loop {
        let hup = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = hup => {}
            Some(()) = changed.recv() => {
                // Editors write in several steps: let the file settle.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while changed.try_recv().is_ok() {}
            }
            () = crate::server::stopped(&mut shutdown) => return,
        }
        match reload(&path, &topology) {
            Ok(count) => tracing::info!(instances = count, "configuration reloaded"),
            Err(error) => {
                metrics::counter!("foresight_gateway_reload_errors_total").increment(1);
                tracing::error!(%error, "configuration not reloaded");
                eprintln!("configuration not reloaded: {error}");
            }
        }
    }
}

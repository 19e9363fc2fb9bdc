//! Reloading the TLS files: on SIGHUP, and when their contents change.
//!
//! The files are polled (read every few seconds and compared with what was last loaded)
//! rather than watched with inotify (the `notify` crate). cert-manager and the kubelet replace
//! a mounted Secret by swapping a `..data` symlink in the directory, which a watch on the
//! files themselves never sees, and a watch on the directory sees a burst of events for one
//! change; NFS and some overlay mounts deliver no events at all. Reading three small files
//! every few seconds costs nothing measurable, works the same on every mount, and needs no
//! dependency. SIGHUP is there for whoever wants the new files used at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{NodeTls, Reloaded};

/// How often the files are read to look for a change.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Reloads `tls` on SIGHUP and whenever the files differ from the last ones tried, every
/// `interval`, until the task is aborted. A reload that fails keeps the material in use and
/// logs why (once per change of the files, so a broken file does not fill the log).
///
/// SIGHUP is listened for from the call on, not from the task's first poll: a SIGHUP sent once
/// the node says it listens must reload it, not end it (the signal's default action).
pub(crate) fn watch(tls: Arc<NodeTls>, interval: Duration) -> JoinHandle<()> {
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; TLS files reload on change only");
            None
        }
    };
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is now: the files were just loaded
        loop {
            #[cfg(unix)]
            let forced = tokio::select! {
                _ = ticks.tick() => false,
                Some(()) = async {
                    match hangup.as_mut() {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    }
                } => true,
            };
            #[cfg(not(unix))]
            let forced = {
                ticks.tick().await;
                false
            };
            reload_once(&tls, forced).await;
        }
    })
}

/// One reload, its outcome logged. The files are read on the blocking pool: a hung mount must
/// not stall a runtime worker.
pub(crate) async fn reload_once(tls: &Arc<NodeTls>, forced: bool) {
    let node = Arc::clone(tls);
    let outcome = tokio::task::spawn_blocking(move || node.reload(forced)).await;
    let trigger = if forced { "SIGHUP" } else { "file change" };
    match outcome {
        Ok(Ok(Reloaded::Swapped)) => tracing::info!(
            trigger,
            "TLS certificate, key and CA reloaded; new connections use them"
        ),
        Ok(Ok(Reloaded::Unchanged)) => {}
        Ok(Err(error)) => tracing::error!(
            trigger,
            %error,
            "TLS reload failed; keeping the certificate, key and CA in use"
        ),
        Err(error) => tracing::error!(%error, "TLS reload task failed"),
    }
}

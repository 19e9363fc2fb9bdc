//! Membership through etcd: follow the cluster's live member list into the pool, and keep this
//! node's own key registered while it serves.
//!
//! Both halves start without etcd being reachable. A node that waited for etcd before
//! listening would turn an etcd outage into a cache outage at every restart; instead it
//! listens at once, reports not-ready until the first list arrives, and registers as soon as
//! etcd answers.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use geecache_discovery_etcd as discovery;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::PeerSink;
use crate::config::EtcdConfig;

/// A running etcd membership: the watcher, the task feeding its lists to the pool, and (once
/// announced) the task that holds this node's registration.
#[derive(Debug)]
pub(crate) struct Following {
    config: discovery::Config,
    membership: discovery::Membership,
    follower: JoinHandle<()>,
    registrar: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Following {
    /// Starts watching the cluster; every list goes to `sink`, its size to `on_change`, and
    /// `known` turns true with the first list the sink accepts.
    ///
    /// # Errors
    ///
    /// When the settings do not make a valid discovery configuration.
    pub(crate) fn start(
        settings: &EtcdConfig,
        sink: Arc<dyn PeerSink>,
        known: Arc<AtomicBool>,
        on_change: impl Fn(usize) + Send + Sync + 'static,
    ) -> Result<Following, String> {
        let mut builder = discovery::Config::builder()
            .endpoints(settings.endpoints.iter().cloned())
            .cluster(settings.cluster.clone());
        if let Some(ttl) = settings.ttl {
            builder = builder.ttl(ttl);
        }
        let config = builder.build().map_err(|e| e.to_string())?;
        // `spawn`, not `start`: `start` fails when etcd is down, and the node should come up
        // (not ready) and wait for etcd instead.
        let membership = discovery::Membership::spawn(&config);
        let follower = super::follow("etcd", membership.subscribe(), sink, known, on_change);
        Ok(Following {
            config,
            membership,
            follower,
            registrar: None,
        })
    }

    /// Registers `self_url` in the background, retrying with jittered backoff until etcd
    /// answers; the registration is held until [`leave`](Following::leave).
    pub(crate) fn announce(&mut self, self_url: &str) {
        if self.registrar.is_some() {
            return;
        }
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(hold_registration(
            self.config.clone(),
            self_url.to_owned(),
            stopped,
        ));
        self.registrar = Some((stop, task));
    }

    /// Revokes the registration, so every peer drops this node now rather than after the TTL.
    pub(crate) async fn leave(&mut self) -> bool {
        let Some((stop, mut task)) = self.registrar.take() else {
            return false;
        };
        let _ = stop.send(());
        // The revoke is one etcd request; bound the wait so an unreachable etcd cannot hold
        // the shutdown (the lease then runs out on its own, as after a crash).
        let limit = self.config.request_timeout() + Duration::from_secs(1);
        if tokio::time::timeout(limit, &mut task).await.is_err() {
            task.abort();
            tracing::warn!(
                "etcd did not answer the revoke in time; peers drop this node when its lease runs out"
            );
        }
        true
    }

    /// Stops watching.
    pub(crate) async fn shutdown(mut self) {
        let _ = self.leave().await;
        self.membership.shutdown().await;
        let _ = self.follower.await;
    }
}

/// Registers `url`, retrying until it succeeds or `stop` fires, then holds the registration
/// until `stop` fires and revokes it.
async fn hold_registration(
    config: discovery::Config,
    url: String,
    mut stop: oneshot::Receiver<()>,
) {
    let (initial, max) = config.backoff();
    let mut pause = initial;
    let registration = loop {
        tokio::select! {
            // Stopping mid-attempt may leave a just-granted lease behind; it expires within
            // the TTL, which is the same outcome as a crash and no worse.
            _ = &mut stop => return,
            result = discovery::Registration::start(&config, &url) => match result {
                Ok(registration) => break registration,
                Err(e) => tracing::warn!(
                    error = %e,
                    retry_in = ?pause,
                    "cannot register with etcd yet; retrying"
                ),
            },
        }
        // Jitter, so that a fleet restarted together does not retry in lockstep.
        let wait = pause.mul_f64(0.5 + rand::random::<f64>() / 2.0);
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(wait) => {}
        }
        pause = (pause * 2).min(max);
    };
    let _ = stop.await;
    match registration.shutdown().await {
        Ok(()) => tracing::info!(url, "left the cluster: etcd registration revoked"),
        Err(e) => tracing::warn!(
            error = %e,
            "cannot revoke the etcd registration; peers drop this node when its lease runs out"
        ),
    }
}

//! Membership through DNS: follow a name's records into the pool.
//!
//! Like etcd, this starts without DNS answering: the node listens at once, reports not-ready
//! until the first list arrives, and keeps its last list through DNS outages. There is nothing
//! to announce or revoke: the records are the platform's (a Kubernetes headless Service lists
//! ready pods and drops a terminating one), not the node's.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use geecache_discovery_dns as discovery;
use tokio::task::JoinHandle;

use super::PeerSink;
use crate::config::DnsConfig;

/// A running DNS membership: the poller, and the task feeding its lists to the pool.
#[derive(Debug)]
pub(crate) struct Following {
    watcher: discovery::Watcher,
    follower: JoinHandle<()>,
}

impl Following {
    /// Starts polling; every new list goes to `sink`, its size to `on_change`, and `known`
    /// turns true with the first list the sink accepts.
    ///
    /// # Errors
    ///
    /// When the settings do not make a valid configuration, or no server is given and the
    /// system's resolver configuration cannot be read.
    pub(crate) fn start(
        settings: &DnsConfig,
        sink: Arc<dyn PeerSink>,
        known: Arc<AtomicBool>,
        on_change: impl Fn(usize) + Send + Sync + 'static,
    ) -> Result<Following, String> {
        let mut builder = discovery::Config::builder()
            .target(&settings.target)
            .interval(settings.interval);
        if let Some(server) = settings.server {
            builder = builder.name_server(server);
        }
        let config = builder.build().map_err(|e| e.to_string())?;
        let watcher = discovery::Watcher::spawn(&config).map_err(|e| e.to_string())?;
        let sink = match settings.https {
            true => Arc::new(Https(sink)) as Arc<dyn PeerSink>,
            false => sink,
        };
        let follower = super::follow("dns", watcher.subscribe(), sink, known, on_change);
        Ok(Following { watcher, follower })
    }

    /// Stops polling.
    pub(crate) async fn shutdown(self) {
        self.watcher.shutdown().await;
        let _ = self.follower.await;
    }
}

/// Gives the members of a DNS list the cluster's scheme, `https://`: records name hosts and
/// ports, never a scheme, and the discovery crate writes `http://`.
struct Https(Arc<dyn PeerSink>);

impl PeerSink for Https {
    fn set_peers(&self, peers: &[String]) -> Result<(), String> {
        let peers: Vec<String> = (peers.iter())
            .map(|url| match url.strip_prefix("http://") {
                Some(rest) => format!("https://{rest}"),
                None => url.clone(),
            })
            .collect();
        self.0.set_peers(&peers)
    }

    fn peers(&self) -> Vec<String> {
        self.0.peers()
    }
}

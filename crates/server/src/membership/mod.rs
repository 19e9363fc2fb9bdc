//! Where the peer list comes from, and the one place that hands it to the pool.
//!
//! The list is static (flags or config file) or, in a binary built with the `etcd` feature,
//! followed live in etcd ([`etcd`]): every new list goes to [`PeerSink::set_peers`], without
//! the node, the router or the pool knowing where lists come from.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use geecache_transport_http::HttpPool;

/// What receives peer lists: the HTTP pool, or a fake in tests.
pub(crate) trait PeerSink: Send + Sync + 'static {
    /// Replaces the members. All-or-nothing: on error the previous list stays.
    fn set_peers(&self, peers: &[String]) -> Result<(), String>;
    /// The members now, this node included.
    fn peers(&self) -> Vec<String>;
}

impl PeerSink for HttpPool {
    fn set_peers(&self, peers: &[String]) -> Result<(), String> {
        HttpPool::set_peers(self, peers).map_err(|e| e.to_string())
    }

    fn peers(&self) -> Vec<String> {
        HttpPool::peers(self)
    }
}

/// A source of peer lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Membership {
    /// A fixed list, from `--peers` or the config file.
    Static(Vec<String>),
    /// The live members of a cluster in etcd.
    #[cfg(feature = "etcd")]
    Etcd(crate::config::EtcdConfig),
}

/// A running membership source.
#[derive(Debug)]
pub(crate) struct Running {
    known: Arc<AtomicBool>,
    #[cfg(feature = "etcd")]
    etcd: Option<etcd::Following>,
}

impl Running {
    /// Whether a peer list has been delivered at least once (readiness needs it: before
    /// that, this node would load every key itself and fill its cache with others' keys).
    #[cfg(test)]
    pub(crate) fn peers_known(&self) -> bool {
        self.known.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The flag that says whether a peer list has been delivered, for readiness to read live: a
    /// watched list may arrive after the node has started.
    pub(crate) fn known_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.known)
    }

    /// Announces this node (at `self_url`) to the other members, once it is listening. A static
    /// list has no one to tell; etcd gets this node's key, retried in the background until
    /// etcd is reachable.
    #[cfg_attr(not(feature = "etcd"), allow(clippy::unused_self, unused_variables))]
    pub(crate) fn announce(&mut self, self_url: &str) {
        #[cfg(feature = "etcd")]
        if let Some(etcd) = &mut self.etcd {
            etcd.announce(self_url);
        }
    }

    /// Withdraws the announcement, so peers stop sending here before the node drains.
    /// Returns whether the other members were told (a static list cannot be).
    pub(crate) async fn leave(&mut self) -> bool {
        #[cfg(feature = "etcd")]
        if let Some(etcd) = &mut self.etcd {
            return etcd.leave().await;
        }
        false
    }

    /// Stops the source. A static list has nothing to stop; etcd's watcher ends its task.
    pub(crate) async fn shutdown(mut self) {
        let _ = self.leave().await;
        #[cfg(feature = "etcd")]
        if let Some(etcd) = self.etcd.take() {
            etcd.shutdown().await;
        }
    }
}

impl Membership {
    /// Starts delivering lists to `sink`; `on_change` hears the member count after each.
    ///
    /// # Errors
    ///
    /// When the first list is refused (a bad URL the config check did not catch).
    pub(crate) async fn start(
        self,
        sink: Arc<dyn PeerSink>,
        on_change: impl Fn(usize) + Send + Sync + 'static,
    ) -> Result<Running, String> {
        match self {
            Membership::Static(peers) => {
                sink.set_peers(&peers)?;
                let members = sink.peers();
                tracing::debug!(peers = ?members, "static peer list delivered");
                on_change(members.len());
                Ok(Running {
                    known: Arc::new(AtomicBool::new(true)),
                    #[cfg(feature = "etcd")]
                    etcd: None,
                })
            }
            #[cfg(feature = "etcd")]
            Membership::Etcd(config) => {
                let known = Arc::new(AtomicBool::new(false));
                let following =
                    etcd::Following::start(&config, sink, Arc::clone(&known), on_change)?;
                Ok(Running {
                    known,
                    etcd: Some(following),
                })
            }
        }
    }
}

#[cfg(feature = "etcd")]
pub(crate) mod etcd;

#[cfg(test)]
mod tests;

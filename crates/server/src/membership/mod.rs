//! Where the peer list comes from, and the one place that hands it to the pool.
//!
//! Today the list is static (flags or config file). The seam is here so that a discovery
//! service (etcd, behind a cargo feature) can become another [`Membership`] variant that
//! calls [`PeerSink::set_peers`] whenever the live set changes, without the node, the router
//! or the pool knowing where lists come from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
}

/// A running membership source.
#[derive(Debug)]
pub(crate) struct Running {
    known: Arc<AtomicBool>,
}

impl Running {
    /// Whether a peer list has been delivered at least once (readiness needs it: before
    /// that, this node would load every key itself and fill its cache with others' keys).
    pub(crate) fn peers_known(&self) -> bool {
        self.known.load(Ordering::Acquire)
    }

    /// Stops the source. A static list has nothing to stop; a watcher would end its task.
    pub(crate) async fn shutdown(self) {}
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
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! Where the peer list comes from, and the one place that hands it to the pool.
//!
//! The list is static (flags or config file), followed live in DNS ([`dns`]) or, in a binary
//! built with the `etcd` feature, in etcd (the `etcd` module): every new list goes through
//! [`follow`] to [`PeerSink::set_peers`], without the node, the router or the pool knowing where
//! lists come from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What receives peer lists: the node's pool (HTTP or gRPC), or a fake in tests.
pub(crate) trait PeerSink: Send + Sync + 'static {
    /// Replaces the members. All-or-nothing: on error the previous list stays.
    fn set_peers(&self, peers: &[String]) -> Result<(), String>;
    /// The members now, this node included.
    fn peers(&self) -> Vec<String>;
}

/// A source of peer lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Membership {
    /// A fixed list, from `--peers` or the config file.
    Static(Vec<String>),
    /// The live members of a cluster in etcd.
    #[cfg(feature = "etcd")]
    Etcd(crate::config::EtcdConfig),
    /// The records of a DNS name, looked up again every interval.
    Dns(crate::config::DnsConfig),
}

/// A running membership source.
#[derive(Debug)]
pub(crate) struct Running {
    known: Arc<AtomicBool>,
    #[cfg(feature = "etcd")]
    etcd: Option<etcd::Following>,
    dns: Option<dns::Following>,
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
    /// Returns whether the other members were told (a static list cannot be, and neither can
    /// DNS: its records change when the platform, e.g. Kubernetes, says so).
    pub(crate) async fn leave(&mut self) -> bool {
        #[cfg(feature = "etcd")]
        if let Some(etcd) = &mut self.etcd {
            return etcd.leave().await;
        }
        false
    }

    /// Stops the source. A static list has nothing to stop; etcd's watcher and DNS's poller
    /// end their tasks.
    pub(crate) async fn shutdown(mut self) {
        let _ = self.leave().await;
        #[cfg(feature = "etcd")]
        if let Some(etcd) = self.etcd.take() {
            etcd.shutdown().await;
        }
        if let Some(dns) = self.dns.take() {
            dns.shutdown().await;
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
                    dns: None,
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
                    dns: None,
                })
            }
            Membership::Dns(config) => {
                let known = Arc::new(AtomicBool::new(false));
                let following =
                    dns::Following::start(&config, sink, Arc::clone(&known), on_change)?;
                Ok(Running {
                    known,
                    #[cfg(feature = "etcd")]
                    etcd: None,
                    dns: Some(following),
                })
            }
        }
    }
}

/// Feeds every list `lists` publishes to `sink` until the channel closes: the one path a
/// watched list takes into the pool, whichever source it comes from, so a change from DNS
/// rebalances and hands keys off exactly as one from etcd. `on_change` hears the member count
/// after each applied list, and `known` turns true with the first.
fn follow(
    source: &'static str,
    mut lists: watch::Receiver<Option<Arc<[String]>>>,
    sink: Arc<dyn PeerSink>,
    known: Arc<AtomicBool>,
    on_change: impl Fn(usize) + Send + Sync + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Ends when the source shuts down and closes the channel.
        while lists.changed().await.is_ok() {
            let Some(list) = lists.borrow_and_update().clone() else {
                continue;
            };
            match sink.set_peers(&list) {
                Ok(()) => {
                    let members = sink.peers();
                    tracing::info!(
                        source,
                        peers = members.len(),
                        members = ?members,
                        "member list applied"
                    );
                    on_change(members.len());
                    known.store(true, Ordering::Release);
                }
                // A member the pool refuses (a URL it cannot use); the previous ring stays.
                Err(e) => tracing::warn!(
                    source,
                    error = e,
                    list = ?list,
                    "member list refused; keeping the previous one"
                ),
            }
        }
    })
}

pub(crate) mod dns;
#[cfg(feature = "etcd")]
pub(crate) mod etcd;

#[cfg(test)]
mod tests;

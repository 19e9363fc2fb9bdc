//! Which protocol a node's peers speak, and the pool that speaks it.
//!
//! The node needs four things of a pool: a [`PeerPicker`] for its groups, a sink for peer
//! lists, the cluster view (for `/stats` and the health metrics) and, for gRPC, the service
//! answering peers. Everything else (ring, health, hand-off) is the group's `Cluster`, which
//! both pools hold. An enum rather than a trait object: there are two transports, the node
//! matches on them once at start, and the groups get the pool itself as their
//! `Arc<dyn PeerPicker>`, so a request pays for no extra layer whichever the transport.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context as _;
use geecache_group::{Cluster, PeerObserver, PeerPicker, Registry};
use geecache_transport_grpc::{GrpcPool, PeerService};
use geecache_transport_http::{HttpPool, RouterConfig};

use super::NodeOptions;
use crate::membership::PeerSink;

#[cfg(test)]
mod tests;

/// The protocol between peers. Clients always speak HTTP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Transport {
    /// HTTP/1.1 with protobuf bodies, groupcache's protocol (Go nodes speak it too).
    #[default]
    Http,
    /// gRPC (`geecache.v1.Peer`): every call to a peer is a stream on one HTTP/2 connection,
    /// served on the same port as the HTTP routes.
    Grpc,
}

impl Transport {
    /// The name used by `--transport`, the config file and the demo's summary.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Grpc => "grpc",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "http" => Ok(Transport::Http),
            "grpc" => Ok(Transport::Grpc),
            _ => Err(()),
        }
    }
}

/// A node's peer pool, whichever transport it speaks.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    /// Peers over HTTP/1.1.
    Http(Arc<HttpPool>),
    /// Peers over gRPC.
    Grpc(Arc<GrpcPool>),
}

impl Pool {
    /// The pool of `options.transport` for the node at `url`, with `observer` hearing of every
    /// fetch from a peer.
    pub(crate) fn build(
        url: &str,
        options: &NodeOptions,
        observer: Arc<dyn PeerObserver>,
    ) -> anyhow::Result<Pool> {
        let tls = options.tls.as_ref().map(|tls| tls.client_config());
        Ok(match options.transport {
            Transport::Http => Pool::Http({
                let mut builder = HttpPool::builder(url);
                if let Some(tls) = tls {
                    builder = builder.tls(tls);
                }
                builder
                    .base_path(options.base_path.clone())
                    .ring(options.ring)
                    .replicas(options.replicas)
                    .handoff(options.handoff)
                    .peer_token(options.peer_token.clone())
                    .max_bytes_in_flight(options.max_peer_bytes_in_flight.unwrap_or(usize::MAX))
                    .observer(observer)
                    .build()
                    .context("building the peer pool")?
            }),
            Transport::Grpc => Pool::Grpc({
                let mut builder = GrpcPool::builder(url);
                if let Some(tls) = tls {
                    builder = builder.tls(tls);
                }
                builder
                    .ring(options.ring)
                    .replicas(options.replicas)
                    .handoff(options.handoff)
                    .peer_token(options.peer_token.clone())
                    // The group drops a peer call at its peer timeout; the client's own
                    // deadline (sent to the peer as `grpc-timeout`) is the same, so the peer
                    // stops working on a call when nobody waits for it any more.
                    .timeout(options.peer_timeout)
                    .observer(observer)
                    .build()
                    .context("building the gRPC peer pool")?
            }),
        })
    }

    /// The pool as the groups' peer picker: the pool itself, not a wrapper.
    pub(crate) fn picker(&self) -> Arc<dyn PeerPicker> {
        match self {
            Pool::Http(pool) => Arc::clone(pool) as Arc<dyn PeerPicker>,
            Pool::Grpc(pool) => Arc::clone(pool) as Arc<dyn PeerPicker>,
        }
    }

    /// The cluster view: members, owners, health.
    pub(crate) fn cluster(&self) -> Arc<Cluster> {
        match self {
            Pool::Http(pool) => pool.cluster(),
            Pool::Grpc(pool) => pool.cluster(),
        }
    }

    /// `config` told where the HTTP routes find the cluster. With HTTP peers the pool (whose
    /// base path the peer route takes); with gRPC peers only its cluster, and the HTTP peer
    /// route stays at the configured base path (answering HTTP peers of a mixed rollout).
    pub(crate) fn routes(&self, config: RouterConfig, base_path: &str) -> RouterConfig {
        match self {
            Pool::Http(pool) => config.pool(Arc::clone(pool)),
            Pool::Grpc(pool) => config.cluster(pool.cluster()).base_path(base_path),
        }
    }

    /// The routes answering peers besides the HTTP ones: the gRPC service for a gRPC pool, to
    /// merge into the node's router (one port, both protocols), or `None`.
    pub(crate) fn peer_service(
        &self,
        registry: &Registry,
        options: &NodeOptions,
    ) -> anyhow::Result<Option<axum::Router>> {
        match self {
            Pool::Http(_) => Ok(None),
            Pool::Grpc(_) => {
                let service = PeerService::builder(registry.clone())
                    .max_key_bytes(options.max_key_bytes)
                    .peer_token(options.peer_token.clone())
                    .build()
                    .context("building the gRPC peer service")?;
                Ok(Some(service.into_router()))
            }
        }
    }
}

impl PeerSink for Pool {
    /// Applies the members whose scheme is this node's, and logs the others: a member
    /// learned from etcd with `http://` in a TLS cluster (a node started without TLS, say)
    /// is left out rather than spoken to in clear text, and the rest of the list still
    /// applies. The config check refuses such a static list at start.
    fn set_peers(&self, peers: &[String]) -> Result<(), String> {
        let https = self.cluster().self_name().starts_with("https://");
        let (kept, refused): (Vec<&String>, Vec<&String>) =
            (peers.iter()).partition(|peer| peer.trim().starts_with("https://") == https);
        if !refused.is_empty() {
            tracing::warn!(
                refused = ?refused,
                scheme = if https { "https" } else { "http" },
                "members refused: their URL's scheme is not this cluster's (a cluster is all \
                 https, with TLS, or all http)"
            );
        }
        match self {
            Pool::Http(pool) => pool.set_peers(kept).map_err(|e| e.to_string()),
            Pool::Grpc(pool) => pool.set_peers(kept).map_err(|e| e.to_string()),
        }
    }

    fn peers(&self) -> Vec<String> {
        match self {
            Pool::Http(pool) => pool.peers(),
            Pool::Grpc(pool) => pool.peers(),
        }
    }
}

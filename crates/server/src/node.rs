//! One cache node: groups, peer pool, membership, routes and the HTTP server, wired together.
//!
//! `serve` runs one node per process; `demo` runs three in one process, which is why nothing
//! here is global: each node has its own group registry, pool and metrics registry.
//!
//! `transport.rs` holds the choice of peer protocol (HTTP or gRPC) and the pool of each;
//! `handoff.rs` what a node does with its values when the membership changes.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::http::HeaderValue;
use geecache_consistenthash::Preset;
use geecache_group::{Group, Registry};
use geecache_transport_http::{RouterConfig, ServeConfig, serve_with};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::membership::{self, Membership};
use crate::metrics::{self, Metrics};
use crate::source::DataSource;
use crate::tls::NodeTls;

mod handoff;
#[cfg(test)]
mod tests;
mod transport;

use transport::Pool;
pub(crate) use transport::Transport;

/// A group to serve.
#[derive(Clone, Debug)]
pub(crate) struct NodeGroup {
    /// Its name.
    pub(crate) name: String,
    /// Cache budget, 0 = unbounded.
    pub(crate) cache_bytes: u64,
    /// Default time to live.
    pub(crate) ttl: Option<Duration>,
    /// Where values come from.
    pub(crate) source: DataSource,
    /// Which entries the caches give up first.
    pub(crate) policy: geecache_group::Policy,
    /// What the cache budget counts of each entry.
    pub(crate) charge: geecache_group::Charge,
    /// How long a "not found" is cached at the key's owner; `None`: not cached.
    pub(crate) negative_ttl: Option<Duration>,
    /// How values fetched from peers are admitted to the hot cache.
    pub(crate) hot: geecache_group::HotAdmission,
    /// How long single fetches to one peer gather into one batch request; zero: off.
    pub(crate) peer_batch_window: Duration,
}

/// Everything a node needs besides its listener.
#[derive(Clone, Debug)]
pub(crate) struct NodeOptions {
    /// The URL peers use; `None`: `http://` + the listener's address.
    pub(crate) self_url: Option<String>,
    /// Where the peer list comes from.
    pub(crate) membership: Membership,
    /// The protocol between peers.
    pub(crate) transport: Transport,
    /// Peer route prefix.
    pub(crate) base_path: String,
    /// The ring placing keys on nodes.
    pub(crate) ring: Preset,
    /// Virtual nodes per node; 0: the ring's default.
    pub(crate) replicas: usize,
    /// How long after a change of membership keys are taken from their previous owner.
    pub(crate) handoff: Duration,
    /// The groups.
    pub(crate) groups: Vec<NodeGroup>,
    /// How long a group waits for a peer (the one deadline of every peer call).
    pub(crate) peer_timeout: Duration,
    /// Longest key accepted.
    pub(crate) max_key_bytes: usize,
    /// Shared secret of peer and admin routes.
    pub(crate) peer_token: Option<String>,
    /// Secret of the client routes.
    pub(crate) api_token: Option<String>,
    /// Most connections open at once; `None`: no limit (the demo's and tests' nodes).
    pub(crate) max_connections: Option<usize>,
    /// Most bytes of peer answers received at once; `None`: no limit but each answer's.
    pub(crate) max_peer_bytes_in_flight: Option<usize>,
    /// How the peer route reads a `+` in a key.
    pub(crate) peer_key_encoding: geecache_transport_http::path::Decoding,
    /// Most keys in one batch get, from a client or a peer (HTTP routes).
    pub(crate) max_batch_keys: usize,
    /// Most bytes in a batch get's request body (HTTP routes).
    pub(crate) max_batch_bytes: usize,
    /// Largest value a client may set.
    pub(crate) max_set_bytes: usize,
    /// TLS for every route and peer (`None`: plain HTTP), its material loaded already: the
    /// transports are handed the configurations, never the files.
    pub(crate) tls: Option<Arc<NodeTls>>,
}

impl NodeGroup {
    /// A group with every group option at its default: no time to live, S3-FIFO, the budget
    /// counting keys and values, no cached "not found", hot copies by the owner's rate, each
    /// peer fetch sent alone.
    pub(crate) fn new(name: &str, cache_bytes: u64, source: DataSource) -> NodeGroup {
        NodeGroup {
            name: name.to_owned(),
            cache_bytes,
            ttl: None,
            source,
            policy: geecache_group::GroupBuilder::DEFAULT_POLICY,
            charge: geecache_group::Charge::Payload,
            negative_ttl: None,
            hot: geecache_group::HotAdmission::default(),
            peer_batch_window: Duration::ZERO,
        }
    }
}

impl NodeOptions {
    /// A node serving `groups` to the static members `peers` (itself among them, at
    /// `self_url`) with every other setting at `geecache serve`'s default, over plain HTTP.
    /// Callers that differ say so with `NodeOptions { .., ..NodeOptions::new(..) }`, so a new
    /// setting is written here once rather than in every place that starts a node.
    pub(crate) fn new(
        self_url: Option<String>,
        peers: Vec<String>,
        groups: Vec<NodeGroup>,
    ) -> NodeOptions {
        use crate::config::defaults;
        NodeOptions {
            self_url,
            membership: Membership::Static(peers),
            transport: Transport::Http,
            base_path: defaults::BASE_PATH.to_owned(),
            ring: defaults::RING,
            replicas: 0,
            handoff: defaults::HANDOFF,
            groups,
            peer_timeout: defaults::PEER_TIMEOUT,
            max_key_bytes: usize::try_from(defaults::MAX_KEY_BYTES).unwrap_or(usize::MAX),
            peer_token: None,
            api_token: None,
            max_connections: None,
            max_peer_bytes_in_flight: None,
            peer_key_encoding: geecache_transport_http::path::Decoding::Form,
            max_batch_keys: defaults::MAX_BATCH_KEYS,
            max_batch_bytes: defaults::MAX_BATCH_BYTES,
            max_set_bytes: defaults::MAX_SET_BYTES,
            tls: None,
        }
    }
}

/// What `/readyz` reports (the transport serves the route and asks this).
#[derive(Debug)]
struct Readiness {
    serving: AtomicBool,
    /// Shared with the membership source, which may deliver the first list after start.
    peers_known: Arc<AtomicBool>,
    shutting_down: AtomicBool,
}

impl Readiness {
    /// `None` when ready, else why not.
    fn not_ready_because(&self) -> Option<&'static str> {
        if self.shutting_down.load(Ordering::Acquire) {
            Some("shutting down")
        } else if !self.serving.load(Ordering::Acquire) {
            Some("not serving yet")
        } else if !self.peers_known.load(Ordering::Acquire) {
            Some("peer list not known yet")
        } else {
            None
        }
    }
}

/// How a shutdown ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drained {
    /// Every in-flight request finished.
    Clean,
    /// The drain timeout passed; the rest were cut off.
    TimedOut,
}

/// A running node.
pub(crate) struct Node {
    addr: SocketAddr,
    url: String,
    registry: Registry,
    readiness: Arc<Readiness>,
    membership: Option<membership::Running>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<io::Result<()>>,
}

impl Node {
    /// Builds the node's groups and routes and starts serving on `listener`.
    ///
    /// # Errors
    ///
    /// When the pool refuses the self URL, base path or peer list, or a group cannot be built.
    pub(crate) async fn start(listener: TcpListener, options: NodeOptions) -> anyhow::Result<Node> {
        let addr = listener.local_addr().context("reading the bound address")?;
        let url = options
            .self_url
            .clone()
            .unwrap_or_else(|| match options.tls {
                Some(_) => format!("https://{addr}"),
                None => format!("http://{addr}"),
            });
        let registry = Registry::new();
        let metrics = Arc::new(Metrics::new(registry.clone()));

        let pool = Pool::build(&url, &options, metrics.peer_observer())?;
        metrics.watch_peers(pool.cluster());

        for group in &options.groups {
            let mut builder = Group::builder(group.name.clone())
                .register(&registry)
                .cache_bytes(usize::try_from(group.cache_bytes).unwrap_or(usize::MAX))
                .policy(group.policy)
                .charge(group.charge)
                .hot(group.hot)
                .peer_batch_window(group.peer_batch_window)
                .peer_timeout(options.peer_timeout)
                .peers(pool.picker())
                .getter(metrics.timed(&group.name, group.source.clone()));
            if let Some(ttl) = group.ttl {
                builder = builder.ttl(ttl);
            }
            if let Some(ttl) = group.negative_ttl {
                builder = builder.negative_ttl(ttl);
            }
            builder
                .build()
                .with_context(|| format!("building group {:?}", group.name))?;
        }

        let peer_metrics = Arc::clone(&metrics);
        let mut running = options
            .membership
            .clone()
            .start(
                Arc::new(handoff::Rebalancing::new(
                    Arc::new(pool.clone()),
                    registry.clone(),
                    options.handoff,
                )) as Arc<dyn membership::PeerSink>,
                move |n| {
                    peer_metrics.set_peer_count(n);
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("setting the peer list: {e}"))?;
        let readiness = Arc::new(Readiness {
            serving: AtomicBool::new(false),
            peers_known: running.known_flag(),
            shutting_down: AtomicBool::new(false),
        });

        let ready = Arc::clone(&readiness);
        // `try_router`, not `router`: the config was validated already, but a transport that
        // disagrees must stop the node with a message, not a panic.
        let api_metrics = metrics.api();
        let tls_metrics = Arc::clone(&metrics);
        let routes = pool.routes(RouterConfig::new(registry.clone()), &options.base_path);
        let mut app = geecache_transport_http::try_router(
            routes
                .max_key_bytes(options.max_key_bytes)
                .max_batch_keys(options.max_batch_keys)
                .max_batch_bytes(options.max_batch_bytes)
                .max_value_bytes(options.max_set_bytes)
                .peer_key_decoding(options.peer_key_encoding)
                .peer_token(options.peer_token.clone())
                .api_token(options.api_token.clone())
                .readiness(move || match ready.not_ready_because() {
                    None => Ok(()),
                    Some(reason) => Err(reason.to_owned()),
                })
                .metrics(move |accept| {
                    let (content_type, text) = metrics.render(accept);
                    (HeaderValue::from_static(content_type), text)
                }),
        )
        .context("building the routes")?;
        // gRPC peers reach the service on the same port: `serve` speaks HTTP/2 (h2c, or h2
        // by ALPN over TLS) beside HTTP/1.1, and the service's paths
        // (`/geecache.v1.Peer/...`) are its own.
        if let Some(service) = pool.peer_service(&registry, &options)? {
            app = app.merge(service);
        }
        let app = app.layer(axum::middleware::from_fn_with_state(
            api_metrics,
            metrics::api::observe,
        ));

        let (stop, stopped) = oneshot::channel::<()>();
        let mut serving = ServeConfig::new();
        if let Some(n) = options.max_connections {
            serving = serving.max_connections(n);
        }
        if let Some(tls) = &options.tls {
            serving = serving
                .tls(tls.server_config())
                .on_handshake_failure(tls_metrics.handshake_observer());
        }
        let server = tokio::spawn(serve_with(listener, app, serving, async move {
            // A dropped sender (the node dropped without `shutdown`) stops the server too.
            let _ = stopped.await;
        }));
        readiness.serving.store(true, Ordering::Release);
        // Only now: peers told of this node before it listens would get refused connections.
        running.announce(&url);

        Ok(Node {
            addr,
            url,
            registry,
            readiness,
            membership: Some(running),
            stop: Some(stop),
            server,
        })
    }

    /// The URL peers (and clients) reach this node at.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The node's groups.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Leaves the membership (peers stop routing here), hands its values to their keys' new
    /// owners and answers their peeks while they keep coming (up to half of `drain`), stops
    /// accepting, lets in-flight requests finish for the rest of `drain`, then returns.
    pub(crate) async fn shutdown(mut self, drain: Duration) -> Drained {
        self.readiness.shutting_down.store(true, Ordering::Release);
        // Leave first: once peers have dropped this node they send it nothing new but peeks
        // at the keys they took over, so the drain below only has to wait for what is
        // already in flight.
        let handed_off = tokio::time::Instant::now();
        let left = match self.membership.as_mut() {
            Some(membership) => membership.leave().await,
            None => false,
        };
        if left {
            // Give the keys' new owners the values, and answer their peeks, within half the
            // drain time.
            handoff::leave(&self.registry, drain / 2).await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let drain = drain.saturating_sub(handed_off.elapsed());
        let outcome = match tokio::time::timeout(drain, &mut self.server).await {
            Ok(Ok(Ok(()))) => Drained::Clean,
            Ok(Ok(Err(e))) => {
                tracing::warn!(error = %e, "server ended with an error");
                Drained::Clean
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "server task failed");
                Drained::Clean
            }
            Err(_) => {
                self.server.abort();
                Drained::TimedOut
            }
        };
        if let Some(membership) = self.membership.take() {
            membership.shutdown().await;
        }
        outcome
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("addr", &self.addr)
            .field("url", &self.url)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A node dropped without `shutdown` (an early return on error) must not leave a
        // server running on its port.
        if self.stop.is_some() {
            self.server.abort();
        }
    }
}

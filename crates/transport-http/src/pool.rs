//! `HttpPool`: the group's cluster view, with HTTP peers for its members.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use geecache_consistenthash::Preset;
use geecache_group::{
    Cluster, HealthPolicy, PeerGetter, PeerHealth, PeerObserver, PeerPicker, Pick,
};

use crate::DEFAULT_BASE_PATH;
use crate::auth::Token;
use crate::budget::Budget;
use crate::client::{HttpPeer, Transport};
use crate::error::Error;
use crate::validate;

/// A [`PeerPicker`] over peer base URLs: the group's [`Cluster`] (a consistent-hash ring, each
/// member's health, a dead owner's keys going to the next member), with an HTTP client per
/// member that keeps a stack of idle keep-alive HTTP/1.1 connections (at most 64 each; one
/// idle for over 20 s is closed rather than reused, ahead of the 30 s after which a geecache
/// server closes it).
///
/// The pool's own URL is always a member of the ring (so every node computes the same owners
/// from the same list) but is never picked: when a node owns a key it loads it itself.
///
/// ```
/// use geecache_transport_http::HttpPool;
///
/// let pool = HttpPool::builder("http://127.0.0.1:8001").build()?;
/// pool.set_peers(["http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003"])?;
/// assert_eq!(pool.peers().len(), 3);
/// let owner = pool.owner_of("Tom").ok_or("empty ring")?;
/// assert!(pool.peers().contains(&owner));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HttpPool {
    base_path: String,
    transport: Arc<Transport>,
    /// Who the members are, who owns a key, and who is healthy: none of it is HTTP's.
    cluster: Arc<Cluster>,
}

impl HttpPool {
    /// Starts building a pool for the node reachable at `self_url`, e.g.
    /// `"http://127.0.0.1:8001"`. Every node must name every peer, itself included, by the
    /// same string: the ring hashes it.
    pub fn builder(self_url: impl Into<String>) -> PoolBuilder {
        PoolBuilder {
            self_url: self_url.into(),
            base_path: DEFAULT_BASE_PATH.to_owned(),
            preset: Preset::Groupcache,
            replicas: 0,
            health: HealthPolicy::default(),
            handoff: Duration::from_secs(60),
            max_response_bytes: 64 << 20,
            max_bytes_in_flight: usize::MAX,
            peer_token: None,
            observer: None,
            tls: None,
        }
    }

    /// Replaces the members with `peers` (self is added if missing), in that order.
    ///
    /// The order matters only when two members' virtual nodes collide on the ring (the member
    /// listed later wins, as in groupcache), so give every node the same list.
    ///
    /// Every URL is checked first; on an error nothing changes. Then the new ring and clients
    /// are swapped in at once: requests already in flight finish with the peer they picked. A
    /// member that stays keeps its connections and its health.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for the first URL that is not `http://host[:port]` (a trailing
    /// `/` is dropped: see [`validate::peer_url`]), or `https://host[:port]` when the pool
    /// speaks TLS ([`PoolBuilder::tls`]): a cluster is all one or all the other
    /// ([`validate::peer_scheme`]).
    pub fn set_peers<I, S>(&self, peers: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let list = peers
            .into_iter()
            .map(|peer| {
                let url = validate::peer_url(peer.as_ref())?;
                validate::peer_scheme(&url, self.transport.tls())?;
                Ok(url)
            })
            .collect::<Result<Vec<String>, Error>>()?;
        self.cluster.set_members(list, |url| {
            let peer = HttpPeer::new(url.to_owned(), &self.base_path, Arc::clone(&self.transport))?;
            Ok::<_, Error>(Arc::new(peer) as Arc<dyn PeerGetter>)
        })?;
        // Each member's share of the keys, in percent: a skewed ring shows at once.
        let shares: Vec<String> = (self.shares().iter())
            .map(|(member, share)| format!("{member}={:.1}%", share * 100.0))
            .collect();
        tracing::info!(peers = ?self.peers(), ring = %self.ring(), ?shares, "peer list replaced");
        Ok(())
    }

    /// The current members, sorted, self included.
    #[must_use]
    pub fn peers(&self) -> Vec<String> {
        self.cluster.members()
    }

    /// This node's URL.
    #[must_use]
    pub fn self_url(&self) -> &str {
        self.cluster.self_name()
    }

    /// The ring this pool places keys with.
    #[must_use]
    pub fn ring(&self) -> Preset {
        self.cluster.ring()
    }

    /// Each member's share of the keys, sorted by member: how evenly the ring spreads them.
    #[must_use]
    pub fn shares(&self) -> Vec<(String, f64)> {
        self.cluster.shares()
    }

    /// Every other member's health, sorted by URL.
    #[must_use]
    pub fn health(&self) -> Vec<PeerHealth> {
        self.cluster.health()
    }

    /// The member that owns `key` on the ring, healthy or not; may be this node.
    #[must_use]
    pub fn owner_of(&self, key: &str) -> Option<String> {
        self.cluster.owner_of(key)
    }

    /// The cluster view itself: members, owners and health, whatever the transport.
    #[must_use]
    pub fn cluster(&self) -> Arc<Cluster> {
        Arc::clone(&self.cluster)
    }

    /// The bytes of peer answers being received now, over every peer: what
    /// [`PoolBuilder::max_bytes_in_flight`] bounds.
    #[must_use]
    pub fn bytes_in_flight(&self) -> usize {
        self.transport.bytes_in_flight()
    }

    /// The base path of the peer route, e.g. `/_geecache/`.
    #[must_use]
    pub fn base_path(&self) -> &str {
        &self.base_path
    }
}

impl PeerPicker for HttpPool {
    fn pick_peer(&self, key: &str) -> Option<Arc<dyn PeerGetter>> {
        self.cluster.pick_peer(key)
    }

    fn pick(&self, key: &str) -> Pick {
        self.cluster.pick(key)
    }

    fn pick_after(&self, key: &str, failed: &str) -> Pick {
        self.cluster.pick_after(key, failed)
    }

    fn all_peers(&self) -> Vec<Arc<dyn PeerGetter>> {
        self.cluster.all_peers()
    }

    fn previous_owner(&self, key: &str) -> Option<Arc<dyn PeerGetter>> {
        self.cluster.previous_owner(key)
    }

    fn owns(&self, key: &str) -> bool {
        self.cluster.owns(key)
    }

    fn heir(&self, key: &str) -> Option<Arc<dyn PeerGetter>> {
        self.cluster.heir(key)
    }

    fn settled_changes(&self) -> u64 {
        self.cluster.settled_changes()
    }

    fn is_self(&self, name: &str) -> bool {
        self.cluster.is_self(name)
    }
}

impl fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPool")
            .field("base_path", &self.base_path)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// Configures an [`HttpPool`]; start with [`HttpPool::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct PoolBuilder {
    self_url: String,
    base_path: String,
    preset: Preset,
    replicas: usize,
    health: HealthPolicy,
    handoff: Duration,
    max_response_bytes: usize,
    max_bytes_in_flight: usize,
    peer_token: Option<String>,
    observer: Option<Arc<dyn PeerObserver>>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl PoolBuilder {
    /// The base path of the peer route. Default `/_geecache/`; use `/_groupcache/` to talk to
    /// Go groupcache nodes, which use that one.
    pub fn base_path(mut self, base: impl Into<String>) -> Self {
        self.base_path = base.into();
        self
    }

    /// Which ring places keys on members. Default [`Preset::Groupcache`], Go groupcache's ring,
    /// so a pool speaks to Go nodes unless told otherwise; [`Preset::Balanced`] spreads keys
    /// evenly when every node is geecache. Every node of a cluster must use the same ring.
    pub fn ring(mut self, preset: Preset) -> Self {
        self.preset = preset;
        self
    }

    /// Virtual nodes per member on the ring. Default (or `0`): the ring's own
    /// ([`Preset::default_replicas`]: 50 for groupcache's, as groupcache). Every node of a
    /// cluster must use the same number.
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// When a peer's circuit opens (it is skipped, and its keys go to the next member) and how
    /// long until it is probed again. Default [`HealthPolicy::default`].
    pub fn health(mut self, policy: HealthPolicy) -> Self {
        self.health = policy;
        self
    }

    /// For how long after a change of membership a key's new owner asks its previous owner for
    /// it (a peek: cache only) before loading it from the source. Default 60 s; zero turns it
    /// off. Always off with Go groupcache's base path, since Go nodes do not know the peek.
    pub fn handoff(mut self, period: Duration) -> Self {
        self.handoff = period;
        self
    }

    /// The largest response body accepted from a peer. Default 64 MiB. A larger answer is a
    /// peer error, refused before it is read when its length is announced.
    pub fn max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }

    /// The most bytes of peer answers the pool receives at once, over all its peers. Default:
    /// no limit beyond [`max_response_bytes`](Self::max_response_bytes) per answer. A fetch
    /// whose answer would go over it fails at once (before its first byte when the length is
    /// announced) with [`PeerError::OverLimit`](geecache_group::PeerError::OverLimit): the
    /// group loads the key itself, and the peer's health does not change.
    pub fn max_bytes_in_flight(mut self, n: usize) -> Self {
        self.max_bytes_in_flight = n;
        self
    }

    /// A shared secret sent to peers as `Authorization: Bearer <token>`. Default none.
    pub fn peer_token(mut self, token: Option<String>) -> Self {
        self.peer_token = token;
        self
    }

    /// Dials peers over TLS with `config`: every peer URL must then be `https://`, and the
    /// peer's certificate must name the URL's host. The pool sets the ALPN protocol
    /// (`http/1.1`) on its own copy; give `config` a client certificate for mutual TLS.
    /// Certificates rotate inside `config` (a resolver and a verifier that swap what they
    /// hold); the pool reads no file. Default: plain HTTP.
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        let mut config = (*config).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        self.tls = Some(Arc::new(config));
        self
    }

    /// A hook told about every fetch from a peer, e.g. for metrics.
    pub fn observer(mut self, o: Arc<dyn PeerObserver>) -> Self {
        self.observer = Some(o);
        self
    }

    /// Builds the pool, with this node as its only member until
    /// [`set_peers`](HttpPool::set_peers).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for the node's own URL (its scheme too), [`Error::InvalidBasePath`],
    /// [`Error::InvalidToken`], or [`Error::Zero`] for a zero response limit or budget.
    pub fn build(self) -> Result<Arc<HttpPool>, Error> {
        let self_url = validate::peer_url(&self.self_url)?;
        validate::peer_scheme(&self_url, self.tls.is_some())?;
        validate::base_path(&self.base_path)?;
        if self.max_response_bytes == 0 {
            return Err(Error::Zero("max_response_bytes"));
        }
        if self.max_bytes_in_flight == 0 {
            return Err(Error::Zero("max_bytes_in_flight"));
        }
        let token = Token::from_option(self.peer_token)?;
        let transport = Arc::new(Transport::new(
            self.max_response_bytes,
            Budget::new(self.max_bytes_in_flight),
            token,
            self.observer,
            self.tls,
        ));
        // Go nodes would answer a peek with a full get, loading the key: never peek them.
        let handoff = match self.base_path == crate::GROUPCACHE_BASE_PATH {
            true => Duration::ZERO,
            false => self.handoff,
        };
        let cluster = Cluster::builder(self_url)
            .ring(self.preset)
            .replicas(self.replicas)
            .health(self.health)
            .handoff(handoff)
            .build();
        Ok(Arc::new(HttpPool {
            base_path: self.base_path,
            transport,
            cluster: Arc::new(cluster),
        }))
    }
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("self_url", &self.self_url)
            .field("base_path", &self.base_path)
            .field("replicas", &self.replicas)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_bytes_in_flight", &self.max_bytes_in_flight)
            .field(
                "peer_token",
                &self.peer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

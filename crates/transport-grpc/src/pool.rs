//! `GrpcPool`: the group's cluster view, with gRPC peers for its members.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use geecache_consistenthash::Preset;
use geecache_group::{
    Cluster, HealthPolicy, PeerGetter, PeerHealth, PeerObserver, PeerPicker, Pick,
};

use crate::auth::Token;
use crate::client::{GrpcPeer, Settings};
use crate::error::Error;

/// A [`PeerPicker`] over peer base URLs: the group's [`Cluster`] (a consistent-hash ring, each
/// member's health, a dead owner's keys going to the next member, the previous owners for
/// peeks, the heirs for hand-overs), with a gRPC client per member that multiplexes every call
/// to that member on one HTTP/2 connection.
///
/// Everything but the wire is the cluster's, so a `GrpcPool` and an
/// `HttpPool` (of `geecache-transport-http`) given the same list place every key on the same
/// member, and behave alike when a member fails, joins or leaves.
///
/// ```
/// use geecache_transport_grpc::GrpcPool;
///
/// let pool = GrpcPool::builder("http://127.0.0.1:8001").build()?;
/// pool.set_peers(["http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003"])?;
/// assert_eq!(pool.peers().len(), 3);
/// let owner = pool.owner_of("Tom").ok_or("empty ring")?;
/// assert!(pool.peers().contains(&owner));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct GrpcPool {
    settings: Arc<Settings>,
    /// Who the members are, who owns a key, and who is healthy: none of it is gRPC's.
    cluster: Arc<Cluster>,
}

impl GrpcPool {
    /// Starts building a pool for the node reachable at `self_url`, e.g.
    /// `"http://127.0.0.1:8001"`. Every node must name every peer, itself included, by the
    /// same string: the ring hashes it.
    pub fn builder(self_url: impl Into<String>) -> PoolBuilder {
        PoolBuilder {
            self_url: self_url.into(),
            preset: Preset::Groupcache,
            replicas: 0,
            health: HealthPolicy::default(),
            handoff: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            max_message_bytes: 64 << 20,
            peer_token: None,
            observer: None,
            tls: None,
        }
    }

    /// Replaces the members with `peers` (self is added if missing), in that order.
    ///
    /// Every URL is checked first; on an error nothing changes. A member that stays keeps its
    /// channel and its health. No connection is made here: each peer connects on its first
    /// call.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for the first URL that is not `http://host[:port]`, or
    /// `https://host[:port]` when the pool speaks TLS ([`PoolBuilder::tls`]): a cluster is all
    /// one or all the other.
    pub fn set_peers<I, S>(&self, peers: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let list = peers
            .into_iter()
            .map(|peer| {
                let url = peer_url(peer.as_ref())?;
                peer_scheme(&url, self.settings.tls.is_some())?;
                Ok(url)
            })
            .collect::<Result<Vec<String>, Error>>()?;
        self.cluster.set_members(list, |url| {
            let peer = GrpcPeer::new(url.to_owned(), Arc::clone(&self.settings))?;
            Ok::<_, Error>(Arc::new(peer) as Arc<dyn PeerGetter>)
        })?;
        tracing::info!(peers = ?self.peers(), ring = %self.ring(), "peer list replaced (grpc)");
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

    /// Each member's share of the keys, sorted by member.
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

    /// The cluster view itself, e.g. for a `/stats` page that lists members and their health.
    #[must_use]
    pub fn cluster(&self) -> Arc<Cluster> {
        Arc::clone(&self.cluster)
    }
}

/// Every method goes to the cluster: the transport adds nothing to who owns what.
impl PeerPicker for GrpcPool {
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

impl fmt::Debug for GrpcPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcPool")
            .field("timeout", &self.settings.timeout)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// A peer's base URL in its one spelling, `http://host[:port]` or `https://host[:port]` with a
/// single trailing `/` dropped: the rule of the HTTP transport's `validate::peer_url`, so a
/// list both transports accept names the same members.
fn peer_url(url: &str) -> Result<String, Error> {
    let url = url
        .strip_suffix('/')
        .filter(|u| !u.ends_with('/'))
        .unwrap_or(url);
    let bad = |reason| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let authority = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| bad("must start with http:// or https://"))?;
    if authority.is_empty() {
        return Err(bad("missing host"));
    }
    if authority.contains(['/', '?', '#', '@']) {
        return Err(bad("must be scheme://host[:port] with nothing after"));
    }
    if authority
        .bytes()
        .any(|b| b == b',' || b.is_ascii_whitespace() || b.is_ascii_control() || !b.is_ascii())
    {
        return Err(bad("host holds a character that is not allowed"));
    }
    if !authority.ends_with(']')
        && let Some((_, port)) = authority.rsplit_once(':')
        && port.parse::<u16>().is_err()
    {
        return Err(bad("port is not a number from 0 to 65535"));
    }
    Ok(url.to_owned())
}

/// Checks that a peer's scheme is the pool's: `https://` with TLS, `http://` without (the rule
/// of the HTTP transport's `validate::peer_scheme`).
fn peer_scheme(url: &str, tls: bool) -> Result<(), Error> {
    let reason = match (url.starts_with("https://"), tls) {
        (true, true) | (false, false) => return Ok(()),
        (false, true) => {
            "http:// in a cluster that speaks TLS; every member's URL must be https:// (a mixed \
             cluster would send values and tokens in clear text)"
        }
        (true, false) => {
            "https:// in a cluster without TLS; give the pool a TLS configuration or use \
             http:// everywhere"
        }
    };
    Err(Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    })
}

/// Configures a [`GrpcPool`]; start with [`GrpcPool::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct PoolBuilder {
    self_url: String,
    preset: Preset,
    replicas: usize,
    health: HealthPolicy,
    handoff: Duration,
    timeout: Duration,
    max_message_bytes: usize,
    peer_token: Option<String>,
    observer: Option<Arc<dyn PeerObserver>>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl PoolBuilder {
    /// Which ring places keys on members. Default [`Preset::Groupcache`]. Every node of a
    /// cluster must use the same ring.
    pub fn ring(mut self, preset: Preset) -> Self {
        self.preset = preset;
        self
    }

    /// Virtual nodes per member; `0` (the default) means the ring's own.
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// When a peer's circuit opens and how long until it is probed again.
    pub fn health(mut self, policy: HealthPolicy) -> Self {
        self.health = policy;
        self
    }

    /// For how long after a change of membership a key's new owner peeks at its previous
    /// owner before loading it. Default 60 s; zero turns it off.
    pub fn handoff(mut self, period: Duration) -> Self {
        self.handoff = period;
        self
    }

    /// The deadline of every call (sent to the peer as `grpc-timeout`) and of connecting.
    /// Default 5 s; give it the group's peer timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest message sent to or accepted from a peer. Default 64 MiB, as the HTTP
    /// transport's response limit. A larger answer is a peer error.
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// A shared secret sent to peers as `authorization: Bearer <token>`. Default none.
    pub fn peer_token(mut self, token: Option<String>) -> Self {
        self.peer_token = token;
        self
    }

    /// A hook told how every fetch from a peer ended and how long it took (e.g. for a
    /// latency histogram). The same hook the HTTP pool takes, so one implementation serves a
    /// node whatever its transport. Default none.
    pub fn observer(mut self, observer: Arc<dyn PeerObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Dials peers over TLS with `config`: every peer URL must then be `https://`, and the
    /// peer's certificate must name the URL's host. The pool sets the ALPN protocol (`h2`) on
    /// its own copy; give `config` a client certificate for mutual TLS. Certificates rotate
    /// inside `config` (a resolver and a verifier that swap what they hold); the pool reads
    /// no file. Default: HTTP/2 without TLS (h2c).
    pub fn tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        let mut config = (*config).clone();
        config.alpn_protocols = vec![b"h2".to_vec()];
        self.tls = Some(Arc::new(config));
        self
    }

    /// Builds the pool, with this node as its only member until
    /// [`set_peers`](GrpcPool::set_peers).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for the node's own URL, [`Error::InvalidToken`], or
    /// [`Error::Zero`] for a zero timeout or message limit.
    pub fn build(self) -> Result<Arc<GrpcPool>, Error> {
        let self_url = peer_url(&self.self_url)?;
        peer_scheme(&self_url, self.tls.is_some())?;
        if self.timeout.is_zero() {
            return Err(Error::Zero("timeout"));
        }
        if self.max_message_bytes == 0 {
            return Err(Error::Zero("max_message_bytes"));
        }
        let settings = Arc::new(Settings {
            timeout: self.timeout,
            max_message_bytes: self.max_message_bytes,
            token: Token::from_option(self.peer_token)?,
            observer: self.observer,
            tls: self.tls,
        });
        let cluster = Cluster::builder(self_url)
            .ring(self.preset)
            .replicas(self.replicas)
            .health(self.health)
            .handoff(self.handoff)
            .build();
        Ok(Arc::new(GrpcPool {
            settings,
            cluster: Arc::new(cluster),
        }))
    }
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("self_url", &self.self_url)
            .field("replicas", &self.replicas)
            .field("timeout", &self.timeout)
            .field("max_message_bytes", &self.max_message_bytes)
            .field(
                "peer_token",
                &self.peer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("observer", &self.observer.is_some())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

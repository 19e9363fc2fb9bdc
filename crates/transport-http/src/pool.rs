//! `HttpPool`: the peer picker over a consistent-hash ring of peer URLs.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use geecache_consistenthash::{HashFn, Preset, Ring};
use geecache_group::{PeerGetter, PeerPicker};

use crate::DEFAULT_BASE_PATH;
use crate::auth::Token;
use crate::client::{HttpPeer, PeerObserver, Transport};
use crate::error::Error;
use crate::validate;

/// A [`PeerPicker`] over a consistent-hash [`Ring`] of peer base URLs, with a stack of idle
/// keep-alive HTTP/1.1 connections per peer (at most 64 each; one idle for over 20 s is closed
/// rather than reused, ahead of the 30 s after which a geecache server closes it).
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
    self_url: String,
    base_path: String,
    preset: Preset,
    replicas: usize,
    transport: Arc<Transport>,
    /// The current members. Readers clone the `Arc` (or look up under the read lock, which is
    /// never held across an await); `set_peers` builds a whole new `Members` and swaps it in,
    /// so a request sees either the old ring and clients or the new ones, never a mix.
    members: RwLock<Arc<Members>>,
}

struct Members {
    ring: Ring<HashFn>,
    /// Every member but self, by URL.
    peers: HashMap<String, Arc<HttpPeer>>,
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
            max_response_bytes: 64 << 20,
            peer_token: None,
            observer: None,
        }
    }

    /// Replaces the members with `peers` (self is added if missing), in that order.
    ///
    /// The order matters only when two members' virtual nodes collide on the ring (the member
    /// listed later wins, as in groupcache), so give every node the same list.
    ///
    /// Every URL is checked first; on an error nothing changes. Then the new ring and clients
    /// are swapped in at once: requests already in flight finish with the peer they picked.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`] for the first URL that is not `http://host[:port]` (a trailing
    /// `/` is dropped: see [`validate::peer_url`]).
    pub fn set_peers<I, S>(&self, peers: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<String> = Vec::new();
        for peer in peers {
            let peer = validate::peer_url(peer.as_ref())?;
            if !list.contains(&peer) {
                list.push(peer);
            }
        }
        if !list.contains(&self.self_url) {
            list.push(self.self_url.clone());
        }

        // Built outside the lock: hashing 50 virtual nodes per member is the slow part.
        let current = self.current();
        let mut ring = self.preset.ring(self.replicas);
        ring.add(list.iter().map(String::as_str));
        let mut peers = HashMap::with_capacity(list.len());
        for url in list.into_iter().filter(|url| *url != self.self_url) {
            // A member that stays keeps its peer, and with it its open connections.
            let peer = match current.peers.get(&url) {
                Some(peer) => Arc::clone(peer),
                None => Arc::new(HttpPeer::new(
                    url.clone(),
                    &self.base_path,
                    Arc::clone(&self.transport),
                )?),
            };
            peers.insert(url, peer);
        }
        let next = Arc::new(Members { ring, peers });
        *self.members.write().unwrap_or_else(PoisonError::into_inner) = next;
        // Each member's share of the keys, in percent: a skewed ring shows at once.
        let shares: Vec<String> = self
            .shares()
            .iter()
            .map(|(member, share)| format!("{member}={:.1}%", share * 100.0))
            .collect();
        tracing::info!(peers = ?self.peers(), ring = %self.preset, ?shares, "peer list replaced");
        Ok(())
    }

    /// The current members, sorted, self included.
    #[must_use]
    pub fn peers(&self) -> Vec<String> {
        let mut members: Vec<String> = self.current().ring.members().map(str::to_owned).collect();
        members.sort_unstable();
        members
    }

    /// This node's URL.
    #[must_use]
    pub fn self_url(&self) -> &str {
        &self.self_url
    }

    /// The ring this pool places keys with.
    #[must_use]
    pub fn ring(&self) -> Preset {
        self.preset
    }

    /// Each member's share of the keys, sorted by member: how evenly the ring spreads them.
    #[must_use]
    pub fn shares(&self) -> Vec<(String, f64)> {
        let members = self.current();
        let mut shares: Vec<(String, f64)> = members
            .ring
            .shares()
            .into_iter()
            .map(|(m, s)| (m.to_owned(), s))
            .collect();
        shares.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        shares
    }

    /// The member that owns `key` on the ring; may be this node.
    #[must_use]
    pub fn owner_of(&self, key: &str) -> Option<String> {
        self.current().ring.get(key).map(str::to_owned)
    }

    /// The base path of the peer route, e.g. `/_geecache/`.
    #[must_use]
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    fn owned_elsewhere(&self, key: &str) -> Option<Arc<HttpPeer>> {
        let members = self.members.read().unwrap_or_else(PoisonError::into_inner);
        let owner = members.ring.get(key)?;
        if owner == self.self_url {
            return None;
        }
        members.peers.get(owner).cloned()
    }

    fn current(&self) -> Arc<Members> {
        Arc::clone(&self.members.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl PeerPicker for HttpPool {
    fn pick_peer(&self, key: &str) -> Option<Arc<dyn PeerGetter>> {
        self.owned_elsewhere(key)
            .map(|peer| peer as Arc<dyn PeerGetter>)
    }

    fn all_peers(&self) -> Vec<Arc<dyn PeerGetter>> {
        let members = self.current();
        let peers = members.peers.values().cloned();
        peers.map(|peer| peer as Arc<dyn PeerGetter>).collect()
    }

    fn is_self(&self, name: &str) -> bool {
        name == self.self_url
    }
}

impl fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPool")
            .field("self_url", &self.self_url)
            .field("base_path", &self.base_path)
            .field("ring", &self.preset)
            .field("replicas", &self.replicas)
            .field("peers", &self.peers())
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
    max_response_bytes: usize,
    peer_token: Option<String>,
    observer: Option<Arc<dyn PeerObserver>>,
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

    /// The largest response body accepted from a peer. Default 64 MiB. A larger answer is a
    /// peer error, refused before it is read when its length is announced.
    pub fn max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }

    /// A shared secret sent to peers as `Authorization: Bearer <token>`. Default none.
    pub fn peer_token(mut self, token: Option<String>) -> Self {
        self.peer_token = token;
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
    /// [`Error::InvalidUrl`] for the node's own URL, [`Error::InvalidBasePath`],
    /// [`Error::InvalidToken`], or [`Error::Zero`] for a zero response limit.
    pub fn build(self) -> Result<Arc<HttpPool>, Error> {
        let self_url = validate::peer_url(&self.self_url)?;
        validate::base_path(&self.base_path)?;
        if self.max_response_bytes == 0 {
            return Err(Error::Zero("max_response_bytes"));
        }
        let token = Token::from_option(self.peer_token)?;
        let transport = Arc::new(Transport::new(
            self.max_response_bytes,
            token,
            self.observer,
        ));
        let mut ring = self.preset.ring(self.replicas);
        ring.add([self_url.as_str()]);
        let replicas = ring.replicas();
        Ok(Arc::new(HttpPool {
            self_url,
            base_path: self.base_path,
            preset: self.preset,
            replicas,
            transport,
            members: RwLock::new(Arc::new(Members {
                ring,
                peers: HashMap::new(),
            })),
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
            .field(
                "peer_token",
                &self.peer_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

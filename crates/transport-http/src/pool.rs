//! `HttpPool`: the peer picker over a consistent-hash ring of peer URLs.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use geecache_consistenthash::{DEFAULT_REPLICAS, Ring};
use geecache_group::{Group, PeerGetter, PeerPicker};

use crate::DEFAULT_BASE_PATH;
use crate::auth::Token;
use crate::client::{DeleteMode, HttpPeer, PeerObserver, Transport};
use crate::error::{Error, validate_base_path, validate_peer_url};

/// At most this many DELETEs of one removal are in flight at once: a removal in a large
/// cluster must not open a connection to every node at the same instant.
const FANOUT_LIMIT: usize = 16;

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
    replicas: usize,
    transport: Arc<Transport>,
    /// The current members. Readers clone the `Arc` (or look up under the read lock, which is
    /// never held across an await); `set_peers` builds a whole new `Members` and swaps it in,
    /// so a request sees either the old ring and clients or the new ones, never a mix.
    members: RwLock<Arc<Members>>,
}

struct Members {
    ring: Ring,
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
            replicas: DEFAULT_REPLICAS,
            timeout: Duration::from_secs(1),
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
    /// [`Error::InvalidUrl`] for the first URL that is not `http://host[:port]`.
    pub fn set_peers<I, S>(&self, peers: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<String> = Vec::new();
        for peer in peers {
            let peer = peer.as_ref();
            validate_peer_url(peer)?;
            if !list.iter().any(|p| p == peer) {
                list.push(peer.to_owned());
            }
        }
        if !list.contains(&self.self_url) {
            list.push(self.self_url.clone());
        }

        // Built outside the lock: hashing 50 virtual nodes per member is the slow part.
        let current = self.current();
        let mut ring = Ring::new(self.replicas);
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
        tracing::info!(peers = ?self.peers(), "peer list replaced");
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

    /// The timeout of each peer request.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.transport.timeout()
    }

    /// Removes `key` from `group` everywhere in the cluster, as far as the cluster can be
    /// reached.
    ///
    /// The key is dropped here, then, if another node owns it, that owner is asked to remove it
    /// and to tell every other node to drop its hot copy; if this node owns it (or the owner
    /// cannot be reached), this node tells every other node itself. At most 16 of those
    /// requests run at once, each within the pool's timeout. Nodes that did not confirm are
    /// listed in the result: a node that is down serves nothing, but one that answered with an
    /// error may still hold a copy until it expires or is evicted.
    pub async fn remove(&self, group: &Group, key: &str) -> Removal {
        let cached_here = group.remove(key);
        let owner = self.owned_elsewhere(key);
        let mut unconfirmed = match owner {
            None => self.fan_out(group.name(), key).await,
            Some(owner) => match owner.delete(group.name(), key, DeleteMode::Owner).await {
                Ok(unconfirmed) => unconfirmed,
                Err(error) => {
                    tracing::warn!(group = group.name(), key, owner = owner.url(), %error,
                        "owner did not take the removal; telling every peer directly");
                    self.fan_out(group.name(), key).await
                }
            },
        };
        // Again, after the others: a get here may have fetched the old value back from a peer
        // that had not yet dropped it. (The group also refuses to cache a load that raced
        // with a removal; this covers a hot copy fetched in between.)
        group.remove(key);
        unconfirmed.retain(|url| *url != self.self_url);
        unconfirmed.sort_unstable();
        Removal {
            cached_here,
            unconfirmed,
        }
    }

    /// Removes `key` here and tells every other member to drop it; what the owner does.
    pub(crate) async fn remove_as_owner(&self, group: &Group, key: &str) -> Removal {
        let cached_here = group.remove(key);
        let mut unconfirmed = self.fan_out(group.name(), key).await;
        unconfirmed.sort_unstable();
        Removal {
            cached_here,
            unconfirmed,
        }
    }

    /// Tells every member but self to drop `key`; returns those that did not confirm.
    async fn fan_out(&self, group: &str, key: &str) -> Vec<String> {
        let peers: Vec<Arc<HttpPeer>> = self.current().peers.values().cloned().collect();
        futures_util::stream::iter(peers)
            .map(|peer| async move {
                match peer.delete(group, key, DeleteMode::Local).await {
                    Ok(_) => None,
                    Err(error) => {
                        tracing::warn!(group, key, peer = peer.url(), %error,
                            "peer did not confirm a removal");
                        Some(peer.url().to_owned())
                    }
                }
            })
            .buffer_unordered(FANOUT_LIMIT)
            .filter_map(std::future::ready)
            .collect()
            .await
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
}

impl fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPool")
            .field("self_url", &self.self_url)
            .field("base_path", &self.base_path)
            .field("replicas", &self.replicas)
            .field("peers", &self.peers())
            .finish_non_exhaustive()
    }
}

/// What a cluster-wide [`HttpPool::remove`] achieved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Removal {
    /// Whether this node had the key cached.
    pub cached_here: bool,
    /// Members that did not confirm they dropped the key (unreachable, timed out, or answered
    /// with an error), sorted.
    pub unconfirmed: Vec<String>,
}

impl Removal {
    /// Whether every member confirmed.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.unconfirmed.is_empty()
    }
}

/// Configures an [`HttpPool`]; start with [`HttpPool::builder`].
#[must_use = "a builder does nothing until .build() is called"]
pub struct PoolBuilder {
    self_url: String,
    base_path: String,
    replicas: usize,
    timeout: Duration,
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

    /// Virtual nodes per member on the ring. Default 50, as groupcache; every node of a cluster
    /// must use the same number.
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// How long a request to a peer may take, connection included. Default 1 s. After it the
    /// caller loads the key itself.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
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
    /// [`Error::InvalidToken`], or [`Error::Zero`] for a zero timeout or response limit.
    pub fn build(self) -> Result<Arc<HttpPool>, Error> {
        validate_peer_url(&self.self_url)?;
        validate_base_path(&self.base_path)?;
        if self.timeout.is_zero() {
            return Err(Error::Zero("timeout"));
        }
        if self.max_response_bytes == 0 {
            return Err(Error::Zero("max_response_bytes"));
        }
        let token = Token::from_option(self.peer_token)?;
        let transport = Arc::new(Transport::new(
            self.timeout,
            self.max_response_bytes,
            token,
            self.observer,
        ));
        let mut ring = Ring::new(self.replicas);
        ring.add([self.self_url.as_str()]);
        let replicas = ring.replicas();
        Ok(Arc::new(HttpPool {
            self_url: self.self_url,
            base_path: self.base_path,
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
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field(
                "peer_token",
                &self.peer_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

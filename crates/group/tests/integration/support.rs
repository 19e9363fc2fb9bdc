//! Fakes: a counting loader and an in-memory cluster whose owners come from a real ring.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use geecache_consistenthash::Ring;
use geecache_group::{
    BoxFuture, Getter, Group, GroupBuilder, LoadError, Loaded, Origin, PeerError, PeerGetter,
    PeerPicker, Rejected, RemoveMode,
};

/// The value every loader in these tests returns for `key`, so any answer can be checked.
pub(crate) fn value_of(key: &str) -> String {
    format!("value-of-{key}")
}

/// A loader that counts its calls, knows keys starting with `k`, fails on `fail*` and panics on
/// `panic*`. Its key check refuses keys with `..`, and its loads refuse `k-deny*`. With
/// `delay`, it waits (on tokio's clock) before answering.
#[derive(Clone, Default)]
pub(crate) struct CountingLoader {
    pub(crate) calls: Arc<AtomicUsize>,
    pub(crate) delay: Option<Duration>,
    pub(crate) ttl: Option<Duration>,
}

impl CountingLoader {
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Getter for CountingLoader {
    async fn get(&self, key: &str) -> Result<Loaded, LoadError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        if key.starts_with("panic") {
            panic!("loader asked to panic for {key}");
        }
        if key.starts_with("fail") {
            return Err(LoadError::failed(format!("source is down for {key}")));
        }
        if !key.starts_with('k') {
            return Err(LoadError::NotFound);
        }
        if key.starts_with("k-deny") {
            return Err(Rejected::new("denied on a closer look").into());
        }
        Ok(Loaded::from(value_of(key)).with_optional_ttl(self.ttl))
    }

    fn check_key(&self, key: &str) -> Result<(), Rejected> {
        match key.contains("..") {
            true => Err(Rejected::new("'..' is not allowed")),
            false => Ok(()),
        }
    }
}

/// A peer that is another in-process group, reached as a peer request would reach it.
pub(crate) struct LocalPeer {
    pub(crate) name: String,
    pub(crate) group: Arc<Group>,
}

/// A group's answer as a peer request carries it back.
fn as_peer_answer(
    fetched: Result<geecache_group::Fetched, geecache_group::Error>,
) -> Result<Loaded, PeerError> {
    match fetched {
        Ok(f) => Ok(Loaded::new(f.value).with_optional_ttl(f.ttl)),
        Err(e) if e.is_not_found() => Err(PeerError::NotFound),
        Err(geecache_group::Error::Rejected(r)) => Err(PeerError::Rejected(r)),
        Err(e) => Err(PeerError::Status {
            status: 500,
            message: e.to_string(),
        }),
    }
}

impl PeerGetter for LocalPeer {
    fn get<'a>(
        &'a self,
        _group: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Loaded, PeerError>> {
        Box::pin(async move { as_peer_answer(self.group.fetch(key, Origin::Peer).await) })
    }

    fn get_many<'a>(
        &'a self,
        _group: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Result<Loaded, PeerError>>, PeerError>> {
        Box::pin(async move {
            let fetched = self.group.fetch_many(keys, Origin::Peer).await;
            Ok(fetched.into_iter().map(as_peer_answer).collect())
        })
    }

    fn remove<'a>(
        &'a self,
        _group: &'a str,
        key: &'a str,
        mode: RemoveMode,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        Box::pin(async move { Ok(self.group.remove_for_peer(key, mode).await.unconfirmed) })
    }

    fn peek<'a>(
        &'a self,
        _group: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Loaded>, PeerError>> {
        let found = (self.group.peek(key)).map_err(|e| PeerError::Malformed(e.to_string()));
        Box::pin(async move { Ok(found?.map(|f| Loaded::new(f.value).with_optional_ttl(f.ttl))) })
    }

    fn set<'a>(
        &'a self,
        _group: &'a str,
        key: &'a str,
        value: Loaded,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        Box::pin(async move {
            match self.group.set_for_peer(key, value).await {
                Ok(written) => Ok(written.unconfirmed),
                Err(e) => Err(PeerError::Malformed(e.to_string())),
            }
        })
    }

    fn purge<'a>(&'a self, _group: &'a str) -> BoxFuture<'a, Result<(), PeerError>> {
        self.group.purge_local();
        Box::pin(std::future::ready(Ok(())))
    }

    fn hand_over<'a>(
        &'a self,
        _group: &'a str,
        values: Vec<(String, Loaded)>,
    ) -> BoxFuture<'a, Result<usize, PeerError>> {
        let taken = values
            .into_iter()
            .map(|(key, value)| self.group.take_handed(&key, value))
            .filter(Result::is_ok)
            .count();
        Box::pin(std::future::ready(Ok(taken)))
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// How a fake peer misbehaves.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    /// Answers with an error status.
    Error,
    /// Never answers.
    Hang,
    /// Answers "not found".
    NotFound,
}

pub(crate) struct FaultyPeer {
    pub(crate) fault: Fault,
    pub(crate) calls: AtomicUsize,
}

impl PeerGetter for FaultyPeer {
    fn get<'a>(
        &'a self,
        _group: &'a str,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<Loaded, PeerError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let fault = self.fault;
        Box::pin(async move {
            match fault {
                Fault::Error => Err(PeerError::Status {
                    status: 500,
                    message: "boom".into(),
                }),
                Fault::NotFound => Err(PeerError::NotFound),
                Fault::Hang => std::future::pending().await,
            }
        })
    }

    fn remove<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
        _mode: RemoveMode,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        let get = self.get(group, key);
        Box::pin(async move { get.await.map(|_| Vec::new()) })
    }

    fn name(&self) -> &str {
        "faulty"
    }
}

/// Picks through a ring; `None` when the owner is this node.
pub(crate) struct RingPicker {
    pub(crate) me: String,
    pub(crate) ring: Ring,
    pub(crate) peers: HashMap<String, Arc<dyn PeerGetter>>,
}

impl PeerPicker for RingPicker {
    fn pick_peer(&self, key: &str) -> Option<Arc<dyn PeerGetter>> {
        let owner = self.ring.get(key)?;
        if owner == self.me {
            return None;
        }
        self.peers.get(owner).cloned()
    }

    fn all_peers(&self) -> Vec<Arc<dyn PeerGetter>> {
        let others = self.peers.iter().filter(|(name, _)| **name != self.me);
        others.map(|(_, peer)| Arc::clone(peer)).collect()
    }

    fn is_self(&self, name: &str) -> bool {
        name == self.me
    }
}

/// Always picks the same peer.
pub(crate) struct FixedPicker(pub(crate) Arc<dyn PeerGetter>);

impl PeerPicker for FixedPicker {
    fn pick_peer(&self, _key: &str) -> Option<Arc<dyn PeerGetter>> {
        Some(Arc::clone(&self.0))
    }

    fn all_peers(&self) -> Vec<Arc<dyn PeerGetter>> {
        vec![Arc::clone(&self.0)]
    }
}

pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) group: Arc<Group>,
    pub(crate) loader: CountingLoader,
    /// The requests this node received from the others.
    pub(crate) served: Arc<Served>,
}

/// Requests a node received from its peers, by kind.
#[derive(Default)]
pub(crate) struct Served {
    pub(crate) gets: AtomicUsize,
    pub(crate) batches: AtomicUsize,
    pub(crate) batched_keys: AtomicUsize,
}

impl Served {
    pub(crate) fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    pub(crate) fn batches(&self) -> usize {
        self.batches.load(Ordering::SeqCst)
    }
}

/// A peer that counts what it is asked before passing it on.
struct CountedPeer {
    inner: LocalPeer,
    served: Arc<Served>,
}

impl PeerGetter for CountedPeer {
    fn get<'a>(&'a self, group: &'a str, key: &'a str) -> BoxFuture<'a, Result<Loaded, PeerError>> {
        self.served.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(group, key)
    }

    fn get_many<'a>(
        &'a self,
        group: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Result<Loaded, PeerError>>, PeerError>> {
        self.served.batches.fetch_add(1, Ordering::SeqCst);
        self.served
            .batched_keys
            .fetch_add(keys.len(), Ordering::SeqCst);
        self.inner.get_many(group, keys)
    }

    fn takes_batches(&self) -> bool {
        true
    }

    fn remove<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
        mode: RemoveMode,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        self.inner.remove(group, key, mode)
    }

    fn peek<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Loaded>, PeerError>> {
        self.inner.peek(group, key)
    }

    fn hand_over<'a>(
        &'a self,
        group: &'a str,
        values: Vec<(String, Loaded)>,
    ) -> BoxFuture<'a, Result<usize, PeerError>> {
        self.inner.hand_over(group, values)
    }

    fn set<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
        value: Loaded,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        self.inner.set(group, key, value)
    }

    fn purge<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<(), PeerError>> {
        self.inner.purge(group)
    }

    fn name(&self) -> &str {
        self.inner.name()
    }
}

/// `n` nodes, each with its own registry and loader, wired to each other through a ring.
pub(crate) fn cluster(n: usize, configure: impl Fn(GroupBuilder) -> GroupBuilder) -> Vec<Node> {
    let names: Vec<String> = (1..=n).map(|i| format!("node-{i}")).collect();
    let nodes: Vec<Node> = names
        .iter()
        .map(|name| {
            let loader = CountingLoader {
                delay: Some(Duration::from_millis(100)),
                ..CountingLoader::default()
            };
            let group = configure(Group::builder("scores").getter(loader.clone()))
                .build()
                .expect("valid group");
            Node {
                name: name.clone(),
                group,
                loader,
                served: Arc::default(),
            }
        })
        .collect();
    let mut ring = Ring::new(50);
    ring.add(names.iter().cloned());
    for node in &nodes {
        let peers = nodes
            .iter()
            .map(|other| {
                let peer: Arc<dyn PeerGetter> = Arc::new(CountedPeer {
                    inner: LocalPeer {
                        name: other.name.clone(),
                        group: Arc::clone(&other.group),
                    },
                    served: Arc::clone(&other.served),
                });
                (other.name.clone(), peer)
            })
            .collect();
        let picker = RingPicker {
            me: node.name.clone(),
            ring: ring.clone(),
            peers,
        };
        node.group
            .register_peers(Arc::new(picker))
            .expect("first registration");
    }
    nodes
}

/// Which of `cluster`'s nodes owns `key` (the same ring as theirs).
pub(crate) fn owner_of(nodes: &[Node], key: &str) -> usize {
    let mut ring = Ring::new(50);
    ring.add(nodes.iter().map(|n| n.name.clone()));
    let owner = ring.get(key).expect("a cluster has members");
    nodes
        .iter()
        .position(|n| n.name == owner)
        .expect("a member")
}

/// A single group with its own registry and a counting loader.
pub(crate) fn group(
    configure: impl FnOnce(GroupBuilder) -> GroupBuilder,
) -> (Arc<Group>, CountingLoader) {
    let loader = CountingLoader::default();
    let group = configure(Group::builder("scores").getter(loader.clone()))
        .build()
        .expect("valid group");
    (group, loader)
}

/// The accounting identity every group keeps: each get is a cache hit outside a flight or a
/// load, and hits are split between the two caches.
pub(crate) fn assert_stats_add_up(group: &Group) {
    let s = group.stats();
    assert_eq!(
        s.gets,
        s.main.hits + s.hot.hits + s.loads,
        "gets = hits outside flights + loads: {s:?}"
    );
    assert!(s.cache_hits >= s.main.hits + s.hot.hits, "{s:?}");
    assert!(s.loads_deduped <= s.loads + s.peer_errors, "{s:?}");
    assert!(
        s.local_loads + s.local_load_errors <= s.loads_deduped,
        "{s:?}"
    );
    assert_eq!(s.main.bytes + s.hot.bytes, group.bytes(), "{s:?}");
    if group.cache_bytes() > 0 {
        assert!(group.bytes() <= group.cache_bytes(), "over budget: {s:?}");
    }
}

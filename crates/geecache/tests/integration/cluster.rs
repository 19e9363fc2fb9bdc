//! Three real nodes on loopback, run once over HTTP and once over gRPC from the same test
//! bodies: who owns what, fallback and health, removal and hand-off are the group's, so each
//! transport must give the same answers.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::join_all;
use geecache::group::{
    Group, HealthPolicy, Loaded, PeerHealth, PeerPicker, PeerState, Registry, getter_fn,
};
use geecache::transport_http::{HttpPool, RouterConfig, router, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Long enough never to pass on a loaded machine.
const PATIENT: Duration = Duration::from_secs(20);
const GROUP: &str = "g";

/// Which protocol the nodes speak to each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Http,
    #[cfg(feature = "grpc")]
    Grpc,
}

/// Runs `$body(transport)` as one test per transport: `$body::http`, `$body::grpc`.
macro_rules! over_each_transport {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn http() {
                super::$body(super::Transport::Http).await;
            }

            #[cfg(feature = "grpc")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn grpc() {
                super::$body(super::Transport::Grpc).await;
            }
        }
    )*};
}

over_each_transport!(
    each_key_is_loaded_once_by_its_owner,
    a_dead_owner_is_skipped_and_its_keys_go_to_the_next_member,
    removal_reaches_the_owner_and_every_hot_copy,
    a_joining_node_takes_its_keys_from_their_previous_owners,
    a_leaving_node_hands_its_values_over,
    a_batch_loads_each_key_once_and_survives_a_dead_owner,
    a_set_value_reaches_every_node_and_a_purge_empties_them,
);

fn value_of(key: &str, generation: u64) -> String {
    format!("value-of-{key}@{generation}")
}

/// What the nodes share: the log of source loads (node, key) and the data's generation.
#[derive(Clone, Default)]
struct World {
    loads: Arc<Mutex<Vec<(String, String)>>>,
    generation: Arc<AtomicU64>,
}

impl World {
    fn loads_of(&self, key: &str) -> Vec<String> {
        let loads = self.loads.lock().unwrap_or_else(PoisonError::into_inner);
        (loads.iter())
            .filter(|(_, k)| k == key)
            .map(|(node, _)| node.clone())
            .collect()
    }
}

/// A node's pool, whichever transport it speaks.
enum Pool {
    Http(Arc<HttpPool>),
    #[cfg(feature = "grpc")]
    Grpc(Arc<geecache::transport_grpc::GrpcPool>),
}

impl Pool {
    fn set_peers(&self, peers: &[String]) {
        match self {
            Pool::Http(pool) => pool.set_peers(peers).unwrap(),
            #[cfg(feature = "grpc")]
            Pool::Grpc(pool) => pool.set_peers(peers).unwrap(),
        }
    }

    fn owner_of(&self, key: &str) -> String {
        match self {
            Pool::Http(pool) => pool.owner_of(key),
            #[cfg(feature = "grpc")]
            Pool::Grpc(pool) => pool.owner_of(key),
        }
        .expect("non-empty ring")
    }

    fn health(&self) -> Vec<PeerHealth> {
        match self {
            Pool::Http(pool) => pool.health(),
            #[cfg(feature = "grpc")]
            Pool::Grpc(pool) => pool.health(),
        }
    }
}

struct Node {
    url: String,
    group: Arc<Group>,
    pool: Pool,
    server: Option<JoinHandle<io::Result<()>>>,
    _stop: oneshot::Sender<()>,
}

impl Node {
    /// Stops the node at once: its port refuses connections, its connections break. Returns
    /// once the server is gone: an abort only asks, and until the server's task has ended its
    /// connections (one HTTP/2 connection per gRPC peer) could still answer a request.
    async fn kill(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            // Cancelled, or ended by itself: either way it serves nothing more.
            let _ = server.await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

struct Cluster {
    nodes: Vec<Node>,
    urls: Vec<String>,
    world: World,
}

#[derive(Clone, Copy)]
struct Options {
    hot_admission: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options { hot_admission: 10 }
    }
}

impl Cluster {
    async fn start(transport: Transport, options: Options) -> Cluster {
        let mut listeners = Vec::new();
        for _ in 0..3 {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let urls: Vec<String> = (listeners.iter())
            .map(|l| format!("http://{}", l.local_addr().unwrap()))
            .collect();
        let world = World::default();
        // A probe of a dead peer long after the test is over: no probe, no second load.
        let mut health = HealthPolicy::default();
        health.backoff_min = Duration::from_secs(600);
        health.backoff_max = Duration::from_secs(600);
        let mut nodes = Vec::new();
        for (listener, url) in listeners.into_iter().zip(&urls) {
            let registry = Registry::new();
            let (pool, picker, app): (Pool, Arc<dyn PeerPicker>, _) = match transport {
                Transport::Http => {
                    let pool = HttpPool::builder(url.as_str())
                        .health(health)
                        .build()
                        .unwrap();
                    let app = router(RouterConfig::new(registry.clone()).pool(pool.clone()));
                    (Pool::Http(pool.clone()), pool, app)
                }
                #[cfg(feature = "grpc")]
                Transport::Grpc => {
                    use geecache::transport_grpc::{GrpcPool, PeerService};
                    let pool = GrpcPool::builder(url.as_str())
                        .health(health)
                        .timeout(PATIENT)
                        .build()
                        .unwrap();
                    // Both protocols on the one port: clients over HTTP, peers over gRPC.
                    let app = router(RouterConfig::new(registry.clone()).cluster(pool.cluster()))
                        .merge(
                            PeerService::builder(registry.clone())
                                .build()
                                .unwrap()
                                .into_router(),
                        );
                    (Pool::Grpc(pool.clone()), pool, app)
                }
            };
            pool.set_peers(&urls);
            let (node, world2) = (url.clone(), world.clone());
            let group = Group::builder(GROUP)
                .register(&registry)
                .hot_admission(options.hot_admission)
                .peer_timeout(PATIENT)
                .peers(picker)
                .getter(getter_fn(move |key: String| {
                    let (node, world) = (node.clone(), world2.clone());
                    async move {
                        (world.loads.lock().unwrap_or_else(PoisonError::into_inner))
                            .push((node, key.clone()));
                        let generation = world.generation.load(Ordering::SeqCst);
                        Ok(Loaded::from(value_of(&key, generation)))
                    }
                }))
                .build()
                .unwrap();
            let (stop, stopped) = oneshot::channel::<()>();
            let server = tokio::spawn(serve(listener, app, async {
                let _ = stopped.await;
            }));
            nodes.push(Node {
                url: url.clone(),
                group,
                pool,
                server: Some(server),
                _stop: stop,
            });
        }
        Cluster { nodes, urls, world }
    }

    /// The index of the node owning `key`; every node's ring must agree.
    fn owner(&self, key: &str) -> usize {
        let owner = self.nodes[0].pool.owner_of(key);
        for node in &self.nodes {
            assert_eq!(node.pool.owner_of(key), owner, "rings disagree on {key}");
        }
        self.urls.iter().position(|u| *u == owner).unwrap()
    }

    fn keys_owned_by(&self, owner: usize, prefix: &str, n: usize) -> Vec<String> {
        (0..10_000)
            .map(|i| format!("{prefix}{i}"))
            .filter(|k| self.owner(k) == owner)
            .take(n)
            .collect()
    }

    async fn get(&self, node: usize, key: &str) -> String {
        let value = tokio::time::timeout(PATIENT, self.nodes[node].group.get(key))
            .await
            .expect("answered in time")
            .expect("a value");
        String::from_utf8(value.to_vec()).unwrap()
    }
}

async fn each_key_is_loaded_once_by_its_owner(transport: Transport) {
    let cluster = Cluster::start(transport, Options::default()).await;
    let keys: Vec<String> = (0..24).map(|i| format!("k{i}")).collect();
    // Every key asked of every node, three times, all at once.
    let asks = keys.iter().flat_map(|key| {
        let cluster = &cluster;
        (0..3).flat_map(move |node| {
            (0..3).map(move |_| async move { (key, cluster.get(node, key).await) })
        })
    });
    for (key, value) in join_all(asks).await {
        assert_eq!(value, value_of(key, 0));
    }
    for key in &keys {
        let owner = &cluster.urls[cluster.owner(key)];
        assert_eq!(cluster.world.loads_of(key), vec![owner.clone()], "{key}");
    }
    for node in &cluster.nodes {
        assert_eq!(node.group.stats().peer_errors, 0);
    }
}

async fn a_dead_owner_is_skipped_and_its_keys_go_to_the_next_member(transport: Transport) {
    let mut cluster = Cluster::start(transport, Options::default()).await;
    let dead = 2;
    let keys = cluster.keys_owned_by(dead, "k", 9);
    // Each live node first talks to the owner, so it holds a connection that then breaks.
    cluster.get(0, &keys[0]).await;
    cluster.get(1, &keys[1]).await;
    cluster.nodes[dead].kill().await;

    // The first failure opens the owner's circuit; the value still comes (fallback).
    assert_eq!(cluster.get(0, &keys[2]).await, value_of(&keys[2], 0));
    assert_eq!(cluster.get(1, &keys[3]).await, value_of(&keys[3], 0));
    for live in [0, 1] {
        let stats = cluster.nodes[live].group.stats();
        assert!(stats.peer_errors >= 1, "node {live}: {stats:?}");
        let health = cluster.nodes[live].pool.health();
        let seen = health
            .iter()
            .find(|h| h.name == cluster.urls[dead])
            .unwrap();
        assert_eq!(seen.state, PeerState::Open, "node {live}");
    }
    // From now on both live nodes send the dead node's keys to the same member, its
    // successor: each is loaded once in the cluster, not once per node.
    for key in &keys[4..] {
        assert_eq!(cluster.get(0, key).await, value_of(key, 0));
        assert_eq!(cluster.get(1, key).await, value_of(key, 0));
        assert_eq!(cluster.world.loads_of(key).len(), 1, "{key}");
    }
}

async fn removal_reaches_the_owner_and_every_hot_copy(transport: Transport) {
    let cluster = Cluster::start(transport, Options { hot_admission: 1 }).await;
    let owner = 1;
    let key = &cluster.keys_owned_by(owner, "k", 1)[0];
    for node in 0..3 {
        assert_eq!(cluster.get(node, key).await, value_of(key, 0));
    }
    for node in &cluster.nodes {
        assert!(node.group.peek(key).unwrap().is_some());
    }
    cluster.world.generation.store(1, Ordering::SeqCst);

    let removal = cluster.nodes[2].group.remove(key).await;
    assert!(removal.is_complete(), "{removal:?}");
    for node in &cluster.nodes {
        assert!(node.group.peek(key).unwrap().is_none(), "{}", node.url);
    }
    for node in 0..3 {
        assert_eq!(cluster.get(node, key).await, value_of(key, 1));
    }
}

async fn a_joining_node_takes_its_keys_from_their_previous_owners(transport: Transport) {
    let cluster = Cluster::start(transport, Options::default()).await;
    let urls = &cluster.urls;
    for node in &cluster.nodes[..2] {
        node.pool.set_peers(&urls[..2]);
    }
    cluster.nodes[2].pool.set_peers(&urls[2..]);
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    for key in &keys {
        cluster.get(0, key).await;
    }

    for node in &cluster.nodes {
        node.pool.set_peers(urls);
    }
    let moved: Vec<&String> = (keys.iter()).filter(|k| cluster.owner(k) == 2).collect();
    assert!(!moved.is_empty());
    for key in &moved {
        assert_eq!(cluster.get(2, key).await, value_of(key, 0));
    }
    for key in &keys {
        assert_eq!(
            cluster.world.loads_of(key).len(),
            1,
            "{key} loaded once in all"
        );
    }
    assert_eq!(cluster.nodes[2].group.stats().handoffs, moved.len() as u64);
}

async fn a_leaving_node_hands_its_values_over(transport: Transport) {
    let mut cluster = Cluster::start(transport, Options::default()).await;
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    for key in &keys {
        cluster.get(0, key).await;
    }
    let held = cluster.nodes[2].group.stats().main.items;
    assert!(held > 0);

    for node in &cluster.nodes[..2] {
        node.pool.set_peers(&cluster.urls[..2]);
    }
    let handed = cluster.nodes[2].group.hand_over(PATIENT).await;
    assert_eq!((handed.sent, handed.kept), (held, 0));
    let received: u64 = (cluster.nodes[..2].iter())
        .map(|n| n.group.stats().handed_in)
        .sum();
    assert_eq!(received, held as u64);

    // The leaver is gone before anyone asks; no key goes back to the source.
    cluster.nodes[2].kill().await;
    for key in &keys {
        assert_eq!(cluster.get(1, key).await, value_of(key, 0));
        assert_eq!(
            cluster.world.loads_of(key).len(),
            1,
            "{key} loaded once in all"
        );
    }
}

async fn a_batch_loads_each_key_once_and_survives_a_dead_owner(transport: Transport) {
    let mut cluster = Cluster::start(transport, Options::default()).await;
    let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
    let results = cluster.nodes[0].group.get_many(&keys).await;
    for (key, result) in keys.iter().zip(&results) {
        assert_eq!(result.as_ref().expect("a value"), value_of(key, 0).as_str());
        let owner = &cluster.urls[cluster.owner(key)];
        assert_eq!(cluster.world.loads_of(key), vec![owner.clone()], "{key}");
    }
    assert_eq!(cluster.nodes[0].group.stats().peer_errors, 0);

    // An owner dies: its keys of the next batch are loaded by the asker or the next member,
    // and every key still gets its value.
    cluster.nodes[2].kill().await;
    let fresh: Vec<String> = (0..60).map(|i| format!("fresh{i}")).collect();
    let results = cluster.nodes[0].group.get_many(&fresh).await;
    for (key, result) in fresh.iter().zip(&results) {
        assert_eq!(result.as_ref().expect("a value"), value_of(key, 0).as_str());
    }
}

async fn a_set_value_reaches_every_node_and_a_purge_empties_them(transport: Transport) {
    let cluster = Cluster::start(transport, Options::default()).await;
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    for node in 0..3 {
        for key in &keys {
            cluster.get(node, key).await;
        }
    }
    for (i, key) in keys.iter().enumerate() {
        let written = cluster.nodes[i % 3]
            .group
            .set(key, geecache::group::Loaded::from(format!("set-{key}")))
            .await
            .expect("the owner stores it");
        assert!(written.unconfirmed.is_empty(), "{written:?}");
    }
    for node in 0..3 {
        for key in &keys {
            assert_eq!(
                cluster.get(node, key).await,
                format!("set-{key}"),
                "node {node}"
            );
        }
    }
    let purged = cluster.nodes[1].group.purge().await;
    assert!(purged.unconfirmed.is_empty(), "{purged:?}");
    for node in &cluster.nodes {
        assert_eq!(node.group.bytes(), 0);
    }
    for key in &keys {
        assert_eq!(
            cluster.get(0, key).await,
            value_of(key, 0),
            "back from the source"
        );
        assert_eq!(
            cluster.world.loads_of(key).len(),
            2,
            "{key}: loaded again, once"
        );
    }
}

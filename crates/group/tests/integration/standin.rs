//! A peer fetch that fails in a way that says nothing of the key goes to the failed peer's
//! stand-in, the member every node picks once it skips that peer, so the key is still loaded
//! once in the cluster. Regression: when a node's host was cut off, the requests already on
//! their way to it timed out and every node that was asking loaded the key itself, so a key
//! was loaded by two survivors (1.10 source loads per key in the `cut` scenario).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use geecache_consistenthash::Preset;
use geecache_group::{
    BoxFuture, Cluster, Group, HealthPolicy, Loaded, PeerError, PeerGetter, PeerPicker, RemoveMode,
};
use proptest::prelude::*;

use crate::support::{CountingLoader, Fault, FaultyPeer, LocalPeer, RingPicker, value_of};

const PEER_TIMEOUT: Duration = Duration::from_millis(100);
/// Longer than any test: a circuit that opens stays open.
const BACKOFF: Duration = Duration::from_secs(3600);

/// How a node answers the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Answer,
    /// Never answers, as a node cut off from the network.
    Hang,
    /// Answers 503 at once.
    Unavailable,
    /// Answers 401 at once: a refusal that says nothing of the key, but would be the same at
    /// any other member (a wrong token).
    Unauthorized,
}

/// Another in-process group, reached as a peer request would reach it, whose answers the test
/// can turn bad, and which counts the gets it received.
struct Wired {
    local: LocalPeer,
    mode: Arc<Mutex<Mode>>,
    served: Arc<AtomicUsize>,
}

impl PeerGetter for Wired {
    fn get<'a>(&'a self, group: &'a str, key: &'a str) -> BoxFuture<'a, Result<Loaded, PeerError>> {
        self.served.fetch_add(1, Ordering::SeqCst);
        let mode = *self.mode.lock().unwrap();
        Box::pin(async move {
            match mode {
                Mode::Answer => self.local.get(group, key).await,
                Mode::Hang => std::future::pending().await,
                Mode::Unavailable => Err(PeerError::Status {
                    status: 503,
                    message: "unavailable".into(),
                }),
                Mode::Unauthorized => Err(PeerError::Status {
                    status: 401,
                    message: "wrong token".into(),
                }),
            }
        })
    }

    fn remove<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
        mode: RemoveMode,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        self.local.remove(group, key, mode)
    }

    fn name(&self) -> &str {
        self.local.name()
    }
}

struct Node {
    name: String,
    group: Arc<Group>,
    loader: CountingLoader,
    mode: Arc<Mutex<Mode>>,
    /// Gets this node received from the others.
    served: Arc<AtomicUsize>,
}

impl Node {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// `n` nodes of one cluster, each with a loader that takes 50 ms (so that loads of a key
/// started at once overlap) and keeps no hot copies of other nodes' values.
fn nodes(n: usize) -> Vec<Node> {
    let names: Vec<String> = (1..=n).map(|i| format!("node-{i}")).collect();
    let mut clusters = Vec::new();
    let nodes: Vec<Node> = names
        .iter()
        .map(|name| {
            let loader = CountingLoader {
                delay: Some(Duration::from_millis(50)),
                ..CountingLoader::default()
            };
            let cluster = Arc::new(
                Cluster::builder(name.clone())
                    .health(HealthPolicy::default().with_backoff(BACKOFF, BACKOFF))
                    .random(|| 0)
                    .build(),
            );
            clusters.push(Arc::clone(&cluster));
            let group = Group::builder("scores")
                .hot_admission(0)
                .peer_timeout(PEER_TIMEOUT)
                .peers(cluster)
                .getter(loader.clone())
                .build()
                .unwrap();
            Node {
                name: name.clone(),
                group,
                loader,
                mode: Arc::default(),
                served: Arc::default(),
            }
        })
        .collect();
    for cluster in &clusters {
        cluster
            .set_members(names.iter().cloned(), |name| {
                let node = nodes.iter().find(|n| n.name == name).unwrap();
                Ok::<_, std::convert::Infallible>(Arc::new(Wired {
                    local: LocalPeer {
                        name: name.to_owned(),
                        group: Arc::clone(&node.group),
                    },
                    mode: Arc::clone(&node.mode),
                    served: Arc::clone(&node.served),
                }) as Arc<dyn PeerGetter>)
            })
            .unwrap();
    }
    nodes
}

/// The order of the members of `nodes` for `key` (indexes), as every node's ring gives it.
fn successors(nodes: &[Node], key: &str) -> Vec<usize> {
    let mut ring = Preset::Groupcache.ring(0);
    ring.add(nodes.iter().map(|n| n.name.as_str()));
    let order = ring.successors(key);
    order
        .map(|name| nodes.iter().position(|n| n.name == name).unwrap())
        .collect()
}

/// The first key (with `prefix`) whose successors start with `order`.
fn key_ordered(nodes: &[Node], prefix: &str, order: &[usize]) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|key| successors(nodes, key).starts_with(order))
        .unwrap()
}

fn loads(nodes: &[Node]) -> Vec<usize> {
    nodes.iter().map(|n| n.loader.calls()).collect()
}

// Both survivors ask the owner at once, it hangs, both time out: each key goes to its stand-in,
// the owner's successor, which is this node for one survivor (it loads) and a peer for the
// other (it asks), and the source is asked once per key in all.
#[tokio::test(start_paused = true)]
async fn a_hung_owners_key_is_loaded_once_by_its_stand_in_for_every_survivor() {
    let nodes = Arc::new(nodes(3));
    nodes[2].set(Mode::Hang);
    // One key whose stand-in is node 1, one whose stand-in is node 2.
    let keys = [
        key_ordered(&nodes, "k", &[2, 0]),
        key_ordered(&nodes, "k", &[2, 1]),
    ];
    let mut tasks = Vec::new();
    for key in &keys {
        for asker in 0..2 {
            let (nodes, key) = (Arc::clone(&nodes), key.clone());
            tasks.push(tokio::spawn(
                async move { nodes[asker].group.get(&key).await },
            ));
        }
    }
    for (task, key) in tasks.into_iter().zip([0, 0, 1, 1].map(|i| &keys[i])) {
        assert_eq!(task.await.unwrap().unwrap(), value_of(key));
    }

    assert_eq!(
        nodes[2].served(),
        4,
        "every request went to the owner first"
    );
    assert_eq!(
        loads(&nodes),
        [1, 1, 0],
        "each key loaded once, by its stand-in"
    );
    assert_eq!(
        (nodes[0].served(), nodes[1].served()),
        (1, 1),
        "each survivor asked the other for the key the other stands in for"
    );
    for node in &nodes[..2] {
        let stats = node.group.stats();
        assert_eq!(stats.peer_errors, 2, "{}: two timeouts", node.name);
        assert_eq!(
            stats.peer_loads, 1,
            "{}: one key from its stand-in",
            node.name
        );
    }
}

// This node is the stand-in: it loads the key itself, asking no one else.
#[tokio::test(start_paused = true)]
async fn the_stand_in_loads_locally_when_it_is_this_node() {
    let nodes = nodes(3);
    nodes[2].set(Mode::Unavailable);
    let key = key_ordered(&nodes, "k", &[2, 0]);
    assert_eq!(nodes[0].group.get(&key).await.unwrap(), value_of(&key));
    assert_eq!(loads(&nodes), [1, 0, 0]);
    assert_eq!(
        [0, 1, 2].map(|i| nodes[i].served()),
        [0, 0, 1],
        "the owner only was asked"
    );
}

// The owner hangs and its stand-in fails too (at once, or by hanging as well): the asking node
// loads the key itself, without a second stand-in, though the next member answers.
#[tokio::test(start_paused = true)]
async fn a_failed_stand_in_makes_the_key_load_here_after_one_hop() {
    for stand_in_fault in [Mode::Unavailable, Mode::Hang] {
        let nodes = nodes(4);
        let key = key_ordered(&nodes, "k", &[]);
        let order = successors(&nodes, &key);
        let (owner, stand_in, next, asker) = (order[0], order[1], order[2], order[3]);
        nodes[owner].set(Mode::Hang);
        nodes[stand_in].set(stand_in_fault);

        assert_eq!(nodes[asker].group.get(&key).await.unwrap(), value_of(&key));

        assert_eq!(nodes[owner].served(), 1, "{stand_in_fault:?}");
        assert_eq!(nodes[stand_in].served(), 1, "{stand_in_fault:?}");
        assert_eq!(nodes[next].served(), 0, "one hop only: {stand_in_fault:?}");
        let mut expected = [0; 4];
        expected[asker] = 1;
        assert_eq!(loads(&nodes), expected, "{stand_in_fault:?}");
        assert_eq!(nodes[asker].group.stats().peer_errors, 2);
    }
}

// "Not found" and "rejected" are answers about the key: no stand-in is asked, nothing is
// loaded here. A refusal that would be the same at any member (401) is loaded here at once,
// as before.
#[tokio::test(start_paused = true)]
async fn answers_and_refusals_ask_no_stand_in() {
    let nodes = nodes(3);
    let denied = key_ordered(&nodes, "k-deny", &[2, 1, 0]);
    let missing = key_ordered(&nodes, "missing", &[2, 1, 0]);
    let error = nodes[0].group.get(&denied).await.unwrap_err();
    assert!(error.is_rejected(), "{error:?}");
    let error = nodes[0].group.get(&missing).await.unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
    assert_eq!(nodes[2].served(), 2);
    assert_eq!(nodes[1].served(), 0, "no stand-in asked");
    assert_eq!(nodes[0].loader.calls(), 0, "nothing loaded here");
    assert_eq!(nodes[0].group.stats().peer_errors, 0);

    nodes[2].set(Mode::Unauthorized);
    let key = key_ordered(&nodes, "k", &[2, 1, 0]);
    assert_eq!(nodes[0].group.get(&key).await.unwrap(), value_of(&key));
    assert_eq!(nodes[1].served(), 0, "no stand-in asked");
    assert_eq!(nodes[0].loader.calls(), 1, "loaded here");
}

// A batch to a hung owner times out as a whole; each of its keys then goes to its stand-in as a
// single fetch would, so two survivors asking for the same keys at once load each key once.
#[tokio::test(start_paused = true)]
async fn a_failed_batchs_keys_go_to_their_stand_ins() {
    let nodes = Arc::new(nodes(3));
    nodes[2].set(Mode::Hang);
    let keys: Vec<String> = (0..)
        .map(|i| format!("k{i}"))
        .filter(|key| successors(&nodes, key)[0] == 2)
        .take(20)
        .collect();
    let standing_in = |i: usize| {
        let order = |k: &&String| successors(&nodes, k)[1] == i;
        keys.iter().filter(order).count()
    };
    let expected = [standing_in(0), standing_in(1), 0];
    assert!(expected[0] > 0 && expected[1] > 0, "{expected:?}");
    let tasks: Vec<_> = (0..2)
        .map(|asker| {
            let (nodes, keys) = (Arc::clone(&nodes), keys.clone());
            tokio::spawn(async move { nodes[asker].group.get_many(&keys).await })
        })
        .collect();
    for task in tasks {
        for (value, key) in task.await.unwrap().into_iter().zip(&keys) {
            assert_eq!(value.unwrap(), value_of(key));
        }
    }
    assert_eq!(
        loads(&nodes),
        expected,
        "each key loaded once, by its stand-in"
    );
}

// A picker without `pick_after` (here a bare ring) keeps the old behaviour: a failed owner's
// key is loaded here, and the next member on the ring is not asked.
#[tokio::test(start_paused = true)]
async fn a_picker_without_stand_ins_loads_here() {
    let names = ["node-1", "node-2", "node-3"];
    let mut ring = geecache_consistenthash::Ring::new(50);
    ring.add(names);
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|key| ring.successors(key).collect::<Vec<_>>() == ["node-2", "node-3", "node-1"])
        .unwrap();
    let hung = Arc::new(FaultyPeer {
        fault: Fault::Hang,
        calls: AtomicUsize::new(0),
    });
    let next = Arc::new(FaultyPeer {
        fault: Fault::NotFound,
        calls: AtomicUsize::new(0),
    });
    let peers: HashMap<String, Arc<dyn PeerGetter>> = HashMap::from([
        (
            "node-2".to_owned(),
            Arc::clone(&hung) as Arc<dyn PeerGetter>,
        ),
        (
            "node-3".to_owned(),
            Arc::clone(&next) as Arc<dyn PeerGetter>,
        ),
    ]);
    let picker = RingPicker {
        me: "node-1".into(),
        ring,
        peers,
    };
    assert!(picker.pick_after(&key, "node-2").peer.is_none());
    let loader = CountingLoader::default();
    let group = Group::builder("scores")
        .peer_timeout(PEER_TIMEOUT)
        .peers(Arc::new(picker))
        .getter(loader.clone())
        .build()
        .unwrap();
    assert_eq!(group.get(&key).await.unwrap(), value_of(&key));
    assert_eq!(hung.calls.load(Ordering::SeqCst), 1);
    assert_eq!(next.calls.load(Ordering::SeqCst), 0);
    assert_eq!(loader.calls(), 1);
}

// A name that is not a member (one that left meanwhile) or this node's own has no place in the
// key's order to go on from: this node loads.
#[test]
fn a_failed_name_off_the_ring_leaves_the_key_here() {
    let cluster = Cluster::builder("node-1").build();
    cluster
        .set_members(["node-1", "node-2"], |name| {
            Ok::<_, std::convert::Infallible>(refusing(name))
        })
        .unwrap();
    let key = "k1";
    assert!(cluster.pick_after(key, "node-9").peer.is_none());
    assert!(cluster.pick_after(key, "node-1").peer.is_none());
}

/// A peer that refuses every connection.
fn refusing(name: &str) -> Arc<dyn PeerGetter> {
    Arc::new(Refusing(name.to_owned()))
}

struct Refusing(String);

impl PeerGetter for Refusing {
    fn get<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<Loaded, PeerError>> {
        Box::pin(async { Err(PeerError::Unavailable("connection refused".into())) })
    }

    fn remove<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: RemoveMode,
    ) -> BoxFuture<'a, Result<Vec<String>, PeerError>> {
        Box::pin(async { Err(PeerError::Unavailable("connection refused".into())) })
    }

    fn name(&self) -> &str {
        &self.0
    }
}

proptest! {
    // Every survivor names the same stand-in for a failed member's key ("this node" on the
    // stand-in itself): the first member after the failed one in the key's order, round the
    // ring, that is not down, down members being those whose circuits every survivor has open.
    #[test]
    fn every_survivor_picks_the_same_stand_in(
        n in 2usize..=6,
        failed in 0usize..6,
        down in proptest::collection::btree_set(0usize..6, 0..5),
        keys in proptest::collection::vec("[a-z0-9]{1,12}", 1..8),
        balanced in any::<bool>(),
    ) {
        let failed = failed % n;
        let down: BTreeSet<usize> = down.into_iter().filter(|&d| d < n && d != failed).collect();
        let survivors: Vec<usize> = (0..n).filter(|i| *i != failed && !down.contains(i)).collect();
        prop_assume!(!survivors.is_empty());
        let preset = if balanced { Preset::Balanced } else { Preset::Groupcache };
        let names: Vec<String> = (0..n).map(|i| format!("http://10.0.0.{i}:8080")).collect();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let clusters: Vec<Cluster> = survivors
            .iter()
            .map(|&s| {
                let cluster = Cluster::builder(names[s].clone())
                    .ring(preset)
                    .health(HealthPolicy::default().with_backoff(BACKOFF, BACKOFF))
                    .build();
                cluster.set_members(names.iter().cloned(), |name| {
                    Ok::<_, std::convert::Infallible>(refusing(name))
                }).unwrap();
                // A refused connection opens a circuit at once: this survivor skips `down`.
                for peer in cluster.all_peers() {
                    if down.iter().any(|&d| names[d] == peer.name()) {
                        let _ = runtime.block_on(peer.get("scores", "k"));
                    }
                }
                cluster
            })
            .collect();
        let mut ring = preset.ring(0);
        ring.add(names.iter().map(String::as_str));
        for key in &keys {
            // Round the ring from the failed member: the first that is not down.
            let order: Vec<&str> = ring.successors(key).collect();
            let at = order.iter().position(|name| *name == names[failed]).unwrap();
            let model = (1..n)
                .map(|i| order[(at + i) % n])
                .find(|name| !down.iter().any(|&d| names[d] == *name))
                .unwrap()
                .to_owned();
            for (cluster, &s) in clusters.iter().zip(&survivors) {
                let pick = cluster.pick_after(key, &names[failed]);
                let chosen = pick.peer.map_or(names[s].clone(), |p| p.name().to_owned());
                prop_assert_eq!(&chosen, &model, "survivor {} for key {}", names[s], key);
                prop_assert!(pick.probes.is_empty());
            }
        }
    }
}

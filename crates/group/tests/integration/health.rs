//! Three in-memory nodes behind `Cluster` pickers: a hung peer is skipped once its circuit
//! opens, its keys are loaded once by the next member on the ring, and it is used again after
//! it answers a probe. Time is tokio's paused clock, so timeouts and backoffs take no real time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use geecache_consistenthash::Preset;
use geecache_group::{
    BoxFuture, Cluster, Group, HAND_OVER_BATCH, HealthPolicy, Loaded, PeerError, PeerGetter,
    PeerState, RemoveMode,
};

use crate::support::{CountingLoader, LocalPeer, value_of};

/// Another in-process group, reached as a peer request would reach it, that can be made to
/// hang (as a SIGSTOPped node does: the connection is open, no answer comes).
struct HangablePeer {
    local: LocalPeer,
    hung: Arc<AtomicBool>,
    /// Milliseconds (of tokio's clock) each answer takes; 0: at once.
    delay_ms: Arc<AtomicU64>,
    /// Milliseconds (of tokio's clock) each batch answer takes; 0: at once.
    batch_delay_ms: Arc<AtomicU64>,
    /// Hand-over calls the peer received.
    hand_overs: Arc<AtomicU64>,
}

impl PeerGetter for HangablePeer {
    fn get<'a>(&'a self, group: &'a str, key: &'a str) -> BoxFuture<'a, Result<Loaded, PeerError>> {
        Box::pin(async move {
            if self.hung.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let delay = self.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            self.local.get(group, key).await
        })
    }

    fn get_many<'a>(
        &'a self,
        group: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Result<Loaded, PeerError>>, PeerError>> {
        Box::pin(async move {
            let delay = self.batch_delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            self.local.get_many(group, keys).await
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

    fn peek<'a>(
        &'a self,
        group: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Loaded>, PeerError>> {
        self.local.peek(group, key)
    }

    fn hand_over<'a>(
        &'a self,
        group: &'a str,
        values: Vec<(String, Loaded)>,
    ) -> BoxFuture<'a, Result<usize, PeerError>> {
        self.hand_overs.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if self.hung.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            self.local.hand_over(group, values).await
        })
    }

    fn name(&self) -> &str {
        self.local.name()
    }
}

struct Node {
    name: String,
    group: Arc<Group>,
    loader: CountingLoader,
    cluster: Arc<Cluster>,
}

const PEER_TIMEOUT: Duration = Duration::from_millis(100);
const BACKOFF: Duration = Duration::from_millis(500);
const HANDOFF: Duration = Duration::from_secs(60);

/// How the test can make each node misbehave when the others ask it.
#[derive(Clone, Default)]
struct Faults {
    hung: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
    batch_delay_ms: Arc<AtomicU64>,
    hand_overs: Arc<AtomicU64>,
}

/// Three nodes; `faults[i]` makes node `i` hang or answer slowly when another node asks it.
fn nodes(faults: &[Faults], peer_timeout: Duration) -> Vec<Node> {
    let built = unconnected(faults.len(), peer_timeout);
    connect(&built, &[0, 1, 2], faults);
    built
}

/// `n` nodes that know no peers yet.
fn unconnected(n: usize, peer_timeout: Duration) -> Vec<Node> {
    (1..=n)
        .map(|i| {
            let name = format!("node-{i}");
            let loader = CountingLoader::default();
            let cluster = Arc::new(
                Cluster::builder(name.clone())
                    .health(HealthPolicy::default().with_backoff(BACKOFF, BACKOFF * 4))
                    .random(|| 0)
                    .handoff(HANDOFF)
                    .build(),
            );
            let group = Group::builder("scores")
                .hot_admission(0)
                .peer_timeout(peer_timeout)
                // The tests call `settle` themselves; a sweeper tick on the paused clock
                // would race them to it.
                .sweep_interval(Duration::from_secs(24 * 3600))
                .peers(cluster.clone())
                .getter(loader.clone())
                .build()
                .unwrap();
            Node {
                name,
                group,
                loader,
                cluster,
            }
        })
        .collect()
}

/// Makes the nodes at `members` (indexes into `nodes`) a cluster of exactly those.
fn connect(nodes: &[Node], members: &[usize], faults: &[Faults]) {
    let names: Vec<String> = members.iter().map(|&i| nodes[i].name.clone()).collect();
    for &i in members {
        nodes[i]
            .cluster
            .set_members(names.iter().cloned(), |name| {
                let j = nodes.iter().position(|n| n.name == name).unwrap();
                Ok::<_, std::convert::Infallible>(Arc::new(HangablePeer {
                    local: LocalPeer {
                        name: name.to_owned(),
                        group: Arc::clone(&nodes[j].group),
                    },
                    hung: Arc::clone(&faults[j].hung),
                    delay_ms: Arc::clone(&faults[j].delay_ms),
                    batch_delay_ms: Arc::clone(&faults[j].batch_delay_ms),
                    hand_overs: Arc::clone(&faults[j].hand_overs),
                }) as Arc<dyn PeerGetter>)
            })
            .unwrap();
    }
}

/// Keys owned by `owner`, paired with their successor on the same ring the clusters use.
fn keys_owned_by(owner: &str, names: &[&str], n: usize) -> Vec<(String, String)> {
    let mut ring = Preset::Groupcache.ring(0);
    ring.add(names.iter().copied());
    (0..)
        .map(|i| format!("k{i}"))
        .filter_map(|key| {
            let mut order = ring.successors(&key);
            (order.next() == Some(owner)).then(|| {
                let next = order.next().unwrap().to_owned();
                (key, next)
            })
        })
        .take(n)
        .collect()
}

fn loads(nodes: &[Node]) -> Vec<usize> {
    nodes.iter().map(|n| n.loader.calls()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_hung_owners_keys_go_once_to_its_successor_until_it_answers_a_probe() {
    let faults: Vec<Faults> = (0..3).map(|_| Faults::default()).collect();
    let nodes = Arc::new(nodes(&faults, PEER_TIMEOUT));
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let keys = keys_owned_by("node-3", &names, 40);
    faults[2].hung.store(true, Ordering::SeqCst);

    // The first request from each asking node pays the timeout and opens that node's circuit.
    for asker in &nodes[..2] {
        assert_eq!(
            asker.group.get(&keys[0].0).await.unwrap(),
            value_of(&keys[0].0)
        );
        let health = asker.cluster.health();
        let node3 = health.iter().find(|h| h.name == "node-3").unwrap();
        assert_eq!((node3.state, node3.openings), (PeerState::Open, 1));
    }
    let errors_after_opening: u64 = nodes.iter().map(|n| n.group.stats().peer_errors).sum();
    assert_eq!(errors_after_opening, 2, "one timeout per asking node");
    let before = loads(&nodes);

    // While the circuit is open, every other key of node 3 goes to its successor and is loaded
    // once in the cluster, with requests for it arriving at both surviving nodes at once.
    let mut tasks = Vec::new();
    for (key, _) in &keys[1..] {
        for asker in 0..2 {
            for _ in 0..3 {
                let (nodes, key) = (Arc::clone(&nodes), key.clone());
                tasks.push(tokio::spawn(
                    async move { nodes[asker].group.get(&key).await },
                ));
            }
        }
    }
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    let after = loads(&nodes);
    for (i, node) in nodes.iter().enumerate() {
        let stood_in_for = keys[1..]
            .iter()
            .filter(|(_, next)| *next == node.name)
            .count();
        assert_eq!(
            after[i] - before[i],
            stood_in_for,
            "{} loaded each key it stands in for once, and nothing else",
            node.name
        );
    }
    // A stand-in's copies live in its hot cache, which gives up bytes first, so they do not
    // outlive the owner's return; its main cache holds nothing it does not own.
    for (i, node) in nodes[..2].iter().enumerate() {
        let stats = node.group.stats();
        assert_eq!(stats.main.items, 0, "{} owns none of these keys", node.name);
        assert_eq!(
            stats.hot.items, after[i],
            "{}: every load it made, as a stand-in",
            node.name
        );
    }
    let errors: u64 = nodes.iter().map(|n| n.group.stats().peer_errors).sum();
    assert_eq!(
        errors, errors_after_opening,
        "no request paid the timeout while open"
    );
    assert_eq!(
        nodes[2].loader.calls(),
        0,
        "the hung node was never reached"
    );

    // After the backoff, still hung: the request due to probe it is served by the successor
    // at once, and the probe alone waits the timeout, which opens the circuit again.
    tokio::time::sleep(BACKOFF).await; // paused clock: advances time, takes none
    let fresh = keys_owned_by("node-3", &names, 46);
    let started = tokio::time::Instant::now();
    assert_eq!(
        nodes[0].group.get(&fresh[40].0).await.unwrap(),
        value_of(&fresh[40].0)
    );
    assert!(
        started.elapsed() < PEER_TIMEOUT,
        "no client waits on a probe"
    );
    assert_eq!(probed(&nodes[0], "node-3").await, (PeerState::Open, 2));

    // Node 3 comes back. After the (doubled) backoff the next request's probe closes the
    // circuit, and its keys go to it again.
    faults[2].hung.store(false, Ordering::SeqCst);
    tokio::time::sleep(BACKOFF * 2).await;
    assert_eq!(
        nodes[0].group.get(&fresh[41].0).await.unwrap(),
        value_of(&fresh[41].0)
    );
    assert_eq!(probed(&nodes[0], "node-3").await.0, PeerState::Closed);
    let loads_before = nodes[2].loader.calls();
    for (key, _) in &fresh[42..] {
        assert_eq!(nodes[0].group.get(key).await.unwrap(), value_of(key));
    }
    assert_eq!(
        nodes[2].loader.calls(),
        loads_before + 4,
        "node 3 loads its own keys again"
    );
}

/// Asks node `asker` for every key: each answer is the key's value, and no node loads any.
async fn answered_without_a_load(nodes: &[Node], asker: usize, keys: &[String]) {
    let before = loads(nodes).iter().sum::<usize>();
    for key in keys {
        assert_eq!(nodes[asker].group.get(key).await.unwrap(), value_of(key));
    }
    assert_eq!(
        loads(nodes).iter().sum::<usize>(),
        before,
        "no key reloaded"
    );
}

fn state_of(node: &Node, peer: &str) -> (PeerState, u64) {
    let health = node.cluster.health();
    let peer = health.iter().find(|h| h.name == peer).unwrap();
    (peer.state, peer.openings)
}

// A peer that answers, but 300 ms late while the others answer at once, is ejected once its
// average is judged (8 answers), and its keys go to the successor without waiting. Probes while
// it is still slow keep it out; once it is fast again a probe brings it back.
#[tokio::test(start_paused = true)]
async fn a_slow_peer_is_ejected_and_probed_back() {
    let faults: Vec<Faults> = (0..3).map(|_| Faults::default()).collect();
    let nodes = nodes(&faults, Duration::from_secs(1));
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    // Node 1 first learns how fast node 2 answers: the median it compares with.
    for (key, _) in keys_owned_by("node-2", &names, 10) {
        nodes[0].group.get(&key).await.unwrap();
    }
    faults[2].delay_ms.store(300, Ordering::SeqCst);
    let keys = keys_owned_by("node-3", &names, 30);
    let mut slow_answers = 0;
    for (key, _) in &keys {
        let started = tokio::time::Instant::now();
        assert_eq!(nodes[0].group.get(key).await.unwrap(), value_of(key));
        if started.elapsed() >= Duration::from_millis(300) {
            slow_answers += 1;
        }
    }
    assert_eq!(slow_answers, 8, "judged after 8 answers, then skipped");
    assert_eq!(state_of(&nodes[0], "node-3"), (PeerState::Open, 1));
    assert_eq!(
        nodes[0].group.stats().peer_errors,
        0,
        "slow answers are still answers"
    );

    // Still slow when probed: the request that was due to probe it is answered by the
    // successor without waiting, the probe runs apart, and node 3 is out again, for twice as
    // long.
    tokio::time::sleep(BACKOFF).await;
    let more = keys_owned_by("node-3", &names, 33);
    let started = tokio::time::Instant::now();
    nodes[0].group.get(&more[30].0).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "no wait on the probe"
    );
    assert_eq!(probed(&nodes[0], "node-3").await, (PeerState::Open, 2));

    // Fast again: the next probe brings it back, and the key after goes to it.
    faults[2].delay_ms.store(0, Ordering::SeqCst);
    tokio::time::sleep(BACKOFF * 2).await;
    nodes[0].group.get(&more[31].0).await.unwrap();
    assert_eq!(probed(&nodes[0], "node-3").await.0, PeerState::Closed);
    let loads_before = nodes[2].loader.calls();
    nodes[0].group.get(&more[32].0).await.unwrap();
    assert_eq!(
        nodes[2].loader.calls(),
        loads_before + 1,
        "node 3 served it"
    );
}

// A peer whose batch answers take 300 ms (a hundred keys loaded from a slow source, say) while
// its single gets and the others' are quick is not slow: batches are not timed against single
// gets, and its keys keep going to it.
#[tokio::test(start_paused = true)]
async fn long_batch_answers_do_not_make_a_peer_slow() {
    let faults: Vec<Faults> = (0..3).map(|_| Faults::default()).collect();
    let nodes = nodes(&faults, Duration::from_secs(1));
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    for (key, _) in keys_owned_by("node-2", &names, 10) {
        nodes[0].group.get(&key).await.unwrap();
    }
    faults[2].batch_delay_ms.store(300, Ordering::SeqCst);
    let keys: Vec<String> = keys_owned_by("node-3", &names, 60)
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    // Twelve batches of five of node 3's keys, each answered after 300 ms: more than the
    // eight answers after which a member is judged.
    for batch in keys.chunks(5) {
        let started = tokio::time::Instant::now();
        let answers = nodes[0].group.get_many(batch).await;
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "asked node 3"
        );
        for (key, answer) in batch.iter().zip(answers) {
            assert_eq!(answer.unwrap(), value_of(key));
        }
    }
    assert_eq!(state_of(&nodes[0], "node-3"), (PeerState::Closed, 0));
    assert_eq!(loads(&nodes), [0, 10, 60], "node 3 loaded its own keys");
}

/// `peer`'s state on `node` once the probe under way has ended: the paused clock is moved on
/// a millisecond at a time (taking no real time) until the state is no longer half-open, or
/// for ten seconds of that clock at most.
async fn probed(node: &Node, peer: &str) -> (PeerState, u64) {
    for _ in 0..10_000 {
        let state = state_of(node, peer);
        if state.0 != PeerState::HalfOpen {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    state_of(node, peer)
}

// A fourth node joins. For a while, a key it now owns is taken from the cache of the node
// that owned it before (a peek), not loaded from the source again; a key nobody had cached is
// loaded as usual; after the hand-off period, it no longer asks.
#[tokio::test(start_paused = true)]
async fn a_joining_node_takes_its_keys_from_their_previous_owners() {
    let faults: Vec<Faults> = (0..4).map(|_| Faults::default()).collect();
    let nodes = unconnected(4, PEER_TIMEOUT);
    connect(&nodes, &[0, 1, 2], &faults);
    let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
    for key in &keys {
        nodes[0].group.get(key).await.unwrap();
    }
    assert_eq!(
        loads(&nodes).iter().sum::<usize>(),
        keys.len(),
        "each key loaded once"
    );

    connect(&nodes, &[0, 1, 2, 3], &faults);
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut ring = Preset::Groupcache.ring(0);
    ring.add(names.iter().copied());
    let moved = keys
        .iter()
        .filter(|k| ring.get(k.as_str()) == Some("node-4"))
        .count();
    assert!(moved > 0, "the new node owns some of the keys");

    // Every key through the new node: those it now owns it takes from their previous owner,
    // the rest it fetches from their owner as usual.
    for key in &keys {
        assert_eq!(nodes[3].group.get(key).await.unwrap(), value_of(key));
    }
    assert_eq!(
        loads(&nodes).iter().sum::<usize>(),
        keys.len(),
        "no key loaded twice"
    );
    let joined = nodes[3].group.stats();
    assert_eq!(
        joined.handoffs, moved as u64,
        "every moved key came from its old owner"
    );
    assert_eq!(joined.main.items, moved, "and is the new owner's own");

    // A key no one had cached: peeked, not found, loaded once.
    let fresh = keys_owned_by("node-4", &names, 400)
        .into_iter()
        .find(|(k, _)| !keys.contains(k))
        .unwrap()
        .0;
    nodes[3].group.get(&fresh).await.unwrap();
    assert_eq!(nodes[3].loader.calls(), 1);

    // After the hand-off period the new owner loads at once, without asking.
    tokio::time::sleep(HANDOFF).await; // paused clock: time moves, none passes
    let served_before: u64 = nodes.iter().map(|n| n.group.stats().peeks_served).sum();
    let later = keys_owned_by("node-4", &names, 400)
        .into_iter()
        .find(|(k, _)| !keys.contains(k) && *k != fresh)
        .unwrap()
        .0;
    nodes[3].group.get(&later).await.unwrap();
    let served_after: u64 = nodes.iter().map(|n| n.group.stats().peeks_served).sum();
    assert_eq!(
        served_after, served_before,
        "no peek after the hand-off period"
    );
    assert_eq!(nodes[3].loader.calls(), 2);
}

// After a fourth node joins, the old owners keep the values of the keys it took over for the
// hand-off period (it may still peek at them), then drop them: a key's value must not outlive
// its ownership here, or it would answer for a key whose new owner reloads and removes it.
#[tokio::test(start_paused = true)]
async fn values_of_keys_given_away_are_dropped_once_the_hand_off_is_over() {
    let faults: Vec<Faults> = (0..4).map(|_| Faults::default()).collect();
    let nodes = unconnected(4, PEER_TIMEOUT);
    connect(&nodes, &[0, 1, 2], &faults);
    let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
    for key in &keys {
        nodes[0].group.get(key).await.unwrap();
    }
    // The first list's own hand-off ends with nothing to give away.
    tokio::time::sleep(HANDOFF).await; // paused clock: time moves, none passes
    assert_eq!(
        nodes.iter().map(|n| n.group.settle()).sum::<usize>(),
        0,
        "every node owns all it holds"
    );
    let held: Vec<usize> = nodes.iter().map(|n| n.group.stats().main.items).collect();

    connect(&nodes, &[0, 1, 2, 3], &faults);
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let mut ring = Preset::Groupcache.ring(0);
    ring.add(names.iter().copied());
    let moved: Vec<usize> = nodes[..3]
        .iter()
        .map(|node| {
            let mut old = Preset::Groupcache.ring(0);
            old.add(names[..3].iter().copied());
            keys.iter()
                .filter(|k| ring.get(k.as_str()) == Some("node-4"))
                .filter(|k| old.get(k.as_str()) == Some(node.name.as_str()))
                .count()
        })
        .collect();
    assert!(
        moved.iter().sum::<usize>() > 0,
        "the new node owns some keys"
    );

    // During the hand-off, nothing is dropped.
    tokio::time::sleep(HANDOFF / 2).await;
    for (i, node) in nodes[..3].iter().enumerate() {
        assert_eq!(node.group.settle(), 0);
        assert_eq!(node.group.stats().main.items, held[i]);
    }

    // After it, each old owner drops exactly the keys it gave away, once.
    tokio::time::sleep(HANDOFF / 2).await;
    for (i, node) in nodes[..3].iter().enumerate() {
        assert_eq!(node.group.settle(), moved[i], "{}", node.name);
        assert_eq!(node.group.settle(), 0, "nothing more until the next change");
        let stats = node.group.stats();
        assert_eq!(stats.main.items, held[i] - moved[i]);
        assert_eq!(stats.unowned_dropped, moved[i] as u64);
    }

    // A key given away is now fetched from its new owner, which loads it once.
    let key = keys
        .iter()
        .find(|k| ring.get(k.as_str()) == Some("node-4"))
        .unwrap();
    let before = loads(&nodes).iter().sum::<usize>();
    assert_eq!(nodes[0].group.get(key).await.unwrap(), value_of(key));
    assert_eq!(loads(&nodes).iter().sum::<usize>(), before + 1);
    assert_eq!(nodes[3].loader.calls(), 1, "by the new owner");
}

// A node that leaves (its peers drop it from their lists) still answers peeks while it
// drains: the new owners of its keys take them from its cache rather than the source.
#[tokio::test(start_paused = true)]
async fn a_leaving_nodes_keys_are_taken_from_its_cache() {
    let faults: Vec<Faults> = (0..4).map(|_| Faults::default()).collect();
    let nodes = unconnected(4, PEER_TIMEOUT);
    connect(&nodes, &[0, 1, 2, 3], &faults);
    let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
    for key in &keys {
        nodes[0].group.get(key).await.unwrap();
    }
    let held = nodes[3].loader.calls();
    assert!(held > 0, "the leaving node owns some keys");

    connect(&nodes, &[0, 1, 2], &faults);
    answered_without_a_load(&nodes, 1, &keys).await;
    let taken: u64 = nodes[..3].iter().map(|n| n.group.stats().handoffs).sum();
    assert_eq!(taken, held as u64, "each of its keys taken from it once");
    assert_eq!(nodes[3].group.stats().peeks_served, held as u64);
}

// A node that leaves gives each value of its main cache to the member that owns the key
// without it: every one of its keys is then answered without a source load, whether or not it
// was asked for while the leaving node still answered.
#[tokio::test(start_paused = true)]
async fn a_leaving_node_hands_its_values_to_their_next_owners() {
    let faults: Vec<Faults> = (0..4).map(|_| Faults::default()).collect();
    let nodes = unconnected(4, PEER_TIMEOUT);
    connect(&nodes, &[0, 1, 2, 3], &faults);
    // Enough keys that some heir gets more than one batch.
    let keys: Vec<String> = (0..3000).map(|i| format!("k{i}")).collect();
    for key in &keys {
        nodes[0].group.get(key).await.unwrap();
    }
    let held = nodes[3].group.stats().main.items;
    assert!(held > HAND_OVER_BATCH, "the leaving node owns some keys");

    // The others drop it from their lists; it still knows them all.
    connect(&nodes, &[0, 1, 2], &faults);
    let handed = nodes[3].group.hand_over(Duration::from_secs(10)).await;
    assert_eq!(handed.sent, held);
    assert_eq!(handed.kept, 0);
    let received: Vec<u64> = nodes[..3]
        .iter()
        .map(|n| n.group.stats().handed_in)
        .collect();
    assert_eq!(
        received.iter().sum::<u64>(),
        held as u64,
        "each value went to exactly one heir"
    );
    // In full batches: as few calls per heir as the batch size allows.
    for (i, &n) in received.iter().enumerate() {
        let calls = faults[i].hand_overs.load(Ordering::SeqCst);
        assert_eq!(
            calls,
            n.div_ceil(HAND_OVER_BATCH as u64),
            "calls to node {i}"
        );
    }

    // Nobody peeks or loads: the heirs hold the values as their own.
    faults[3].hung.store(true, Ordering::SeqCst);
    answered_without_a_load(&nodes, 1, &keys).await;
    let peeked: u64 = nodes[..3].iter().map(|n| n.group.stats().handoffs).sum();
    assert_eq!(peeked, 0);
}

// A leaving node that found one of its heirs too slow to ask for reads still hands that heir
// its values: the heir answers, only slowly, and skipping it would lose them (a node that has
// just restarted is often slow for a moment while it takes its keys back).
#[tokio::test(start_paused = true)]
async fn a_leaving_node_hands_values_to_an_heir_it_found_slow() {
    let faults: Vec<Faults> = (0..3).map(|_| Faults::default()).collect();
    let nodes = nodes(&faults, Duration::from_secs(1));
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    for (key, _) in keys_owned_by("node-2", &names, 10) {
        nodes[0].group.get(&key).await.unwrap();
    }
    faults[2].delay_ms.store(300, Ordering::SeqCst);
    for (key, _) in keys_owned_by("node-3", &names, 10) {
        nodes[0].group.get(&key).await.unwrap();
    }
    assert_eq!(
        state_of(&nodes[0], "node-3").0,
        PeerState::Open,
        "found slow"
    );
    node_1_leaves_and_hands_every_value_over(&nodes, &faults).await;
}

// A leaving node whose reads to one heir timed out (a busy peer, a moment's stall) still
// hands that heir its values once it answers again: the circuit the reads opened is no
// reason to lose them.
#[tokio::test(start_paused = true)]
async fn a_leaving_node_hands_values_to_an_heir_whose_reads_timed_out() {
    let faults: Vec<Faults> = (0..3).map(|_| Faults::default()).collect();
    let nodes = nodes(&faults, PEER_TIMEOUT);
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    faults[2].hung.store(true, Ordering::SeqCst);
    let (theirs, _) = keys_owned_by("node-3", &names, 1).remove(0);
    nodes[0].group.get(&theirs).await.unwrap();
    assert_eq!(
        state_of(&nodes[0], "node-3").0,
        PeerState::Open,
        "timed out"
    );
    faults[2].hung.store(false, Ordering::SeqCst);
    node_1_leaves_and_hands_every_value_over(&nodes, &faults).await;
}

/// Node 1 loads 200 keys of its own, leaves, and hands every value to its heirs, node 3
/// taking its share.
async fn node_1_leaves_and_hands_every_value_over(nodes: &[Node], faults: &[Faults]) {
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let own: Vec<String> = keys_owned_by("node-1", &names, 200)
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    for key in &own {
        nodes[0].group.get(key).await.unwrap();
    }
    connect(nodes, &[1, 2], faults);
    let handed = nodes[0].group.hand_over(Duration::from_secs(10)).await;
    assert_eq!((handed.sent, handed.kept), (own.len(), 0));
    assert!(
        nodes[2].group.stats().handed_in > 0,
        "node 3 took its share"
    );
}

// A hung heir keeps its share of a leaving node's values, the others get theirs, and it costs
// the hand-over one round of calls: after a call to it times out it is sent nothing more.
#[tokio::test(start_paused = true)]
async fn a_hung_heir_is_sent_nothing_more_after_its_first_call_times_out() {
    let faults: Vec<Faults> = (0..3).map(|_| Faults::default()).collect();
    let nodes = nodes(&faults, PEER_TIMEOUT);
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let own: Vec<(String, String)> = keys_owned_by("node-1", &names, 8000);
    for (key, _) in &own {
        nodes[0].group.get(key).await.unwrap();
    }
    let to_hung = own.iter().filter(|(_, heir)| heir == "node-3").count();
    let batches = to_hung.div_ceil(HAND_OVER_BATCH);
    assert!(batches > 4, "more batches for node 3 than go out at once");
    faults[2].hung.store(true, Ordering::SeqCst);
    connect(&nodes, &[1, 2], &faults);
    let started = tokio::time::Instant::now();
    let handed = nodes[0].group.hand_over(Duration::from_secs(60)).await;
    assert_eq!((handed.sent, handed.kept), (own.len() - to_hung, to_hung));
    let calls = faults[2].hand_overs.load(Ordering::SeqCst) as usize;
    assert!(calls < batches, "{calls} calls of {batches} batches");
    assert!(
        started.elapsed() < PEER_TIMEOUT * 2,
        "one peer timeout, not one per batch"
    );
}

// When a node joins, the old owners push it the values of the keys it now owns: it holds them
// before anyone asks, and no peek or load is needed. The old owners keep their copies until
// the change settles.
#[tokio::test(start_paused = true)]
async fn old_owners_push_a_joining_node_its_keys() {
    let faults: Vec<Faults> = (0..4).map(|_| Faults::default()).collect();
    let nodes = unconnected(4, PEER_TIMEOUT);
    connect(&nodes, &[0, 1, 2], &faults);
    let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
    for key in &keys {
        nodes[0].group.get(key).await.unwrap();
    }
    connect(&nodes, &[0, 1, 2, 3], &faults);
    let mut pushed = 0;
    for node in &nodes[..3] {
        let held = node.group.stats().main.items;
        let handed = node.group.rebalance(Duration::from_secs(10)).await;
        assert_eq!(handed.kept, 0);
        assert_eq!(node.group.stats().main.items, held, "kept until settled");
        pushed += handed.sent;
    }
    let joined = nodes[3].group.stats();
    assert!(pushed > 0);
    assert_eq!(joined.handed_in, pushed as u64);
    assert_eq!(
        joined.main.items, pushed,
        "every moved key, and nothing else"
    );

    answered_without_a_load(&nodes, 3, &keys).await;
    assert_eq!(nodes[3].group.stats().handoffs, 0, "and none peeked");
}

// Changes come in series (a rolling restart makes one every few seconds). A node back from a
// restart must still find its keys where they went when it left, after the next change has
// replaced the ring again: the cluster keeps the rings of the recent changes, not only the
// last one. (No pushes here: only the peeks are under test.)
#[tokio::test(start_paused = true)]
async fn a_node_back_from_a_restart_finds_its_keys_after_the_next_change() {
    let faults: Vec<Faults> = (0..3).map(|_| Faults::default()).collect();
    let nodes = unconnected(3, PEER_TIMEOUT);
    connect(&nodes, &[0, 1, 2], &faults);
    let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
    for key in &keys {
        nodes[0].group.get(key).await.unwrap();
    }
    // Node 3 leaves; its keys are asked, and taken from it by their new owners.
    connect(&nodes, &[0, 1], &faults);
    connect(&nodes, &[2], &faults);
    for key in &keys {
        nodes[0].group.get(key).await.unwrap();
    }
    // It comes back empty, and node 2 leaves before anything is asked of it.
    let own: Vec<&String> = keys
        .iter()
        .filter(|k| {
            let mut ring = Preset::Groupcache.ring(0);
            ring.add(["node-1", "node-2", "node-3"]);
            ring.get(k.as_str()) == Some("node-3")
        })
        .collect();
    for key in &own {
        nodes[2].group.remove_local(key);
    }
    connect(&nodes, &[0, 1, 2], &faults);
    connect(&nodes, &[0, 2], &faults);
    let before = loads(&nodes).iter().sum::<usize>();
    for key in &own {
        assert_eq!(nodes[2].group.get(key).await.unwrap(), value_of(key));
    }
    assert_eq!(loads(&nodes).iter().sum::<usize>(), before, "none reloaded");
    assert_eq!(nodes[2].group.stats().handoffs, own.len() as u64);
}

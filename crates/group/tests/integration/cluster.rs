//! Three in-memory nodes whose owners come from a consistent-hash ring.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use geecache_group::{DuplicateGroup, Group, Origin, Registry, Source};

use crate::support::*;

// 1,000 concurrent gets of one cold key, spread over all three nodes, load it exactly once in the
// whole cluster. The loader waits 100 ms on tokio's paused clock, which only moves once every
// task is parked, so all 1,000 gets are in flight before the load finishes.
#[tokio::test(start_paused = true)]
async fn concurrent_gets_of_a_cold_key_load_once_cluster_wide() {
    let nodes = Arc::new(cluster(3, |b| b.hot_admission(0)));
    let mut tasks = Vec::new();
    for i in 0..1_000 {
        let nodes = Arc::clone(&nodes);
        tasks.push(tokio::spawn(async move {
            nodes[i % 3].group.get("k-cold").await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), value_of("k-cold"));
    }
    let loads: usize = nodes.iter().map(|n| n.loader.calls()).sum();
    assert_eq!(loads, 1, "one load in the whole cluster");
    let local_loads: u64 = nodes.iter().map(|n| n.group.stats().local_loads).sum();
    assert_eq!(local_loads, 1);
    for node in nodes.iter() {
        assert_stats_add_up(&node.group);
    }
}

#[tokio::test(start_paused = true)]
async fn each_key_is_loaded_by_its_owner_only() {
    let nodes = cluster(3, |b| b.hot_admission(0));
    let mut ring = geecache_consistenthash::Ring::new(50);
    ring.add(nodes.iter().map(|n| n.name.clone()));
    let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let asked = &nodes[i % 3];
        assert_eq!(asked.group.get(key).await.unwrap(), value_of(key));
    }
    for node in &nodes {
        let owned = keys
            .iter()
            .filter(|k| ring.get(k.as_str()) == Some(node.name.as_str()))
            .count();
        assert_eq!(
            node.loader.calls(),
            owned,
            "{} loads what it owns",
            node.name
        );
        assert_eq!(node.group.stats().main.items, owned);
        assert_stats_add_up(&node.group);
    }
    // Asking again anywhere loads nothing more.
    for (i, key) in keys.iter().enumerate() {
        nodes[(i + 1) % 3].group.get(key).await.unwrap();
    }
    let loads: usize = nodes.iter().map(|n| n.loader.calls()).sum();
    assert_eq!(loads, keys.len());
}

#[tokio::test(start_paused = true)]
async fn a_peer_request_is_loaded_locally_and_never_forwarded() {
    let nodes = cluster(3, |b| b.hot_admission(0));
    let mut ring = geecache_consistenthash::Ring::new(50);
    ring.add(nodes.iter().map(|n| n.name.clone()));
    // A key node-1 does not own: as a client request it would go to the owner.
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| ring.get(k.as_str()) != Some("node-1"))
        .unwrap();
    let fetched = nodes[0].group.fetch(&key, Origin::Peer).await.unwrap();
    assert_eq!(fetched.source, Source::Loader);
    assert_eq!(nodes[0].loader.calls(), 1);
    assert_eq!(nodes[1].loader.calls() + nodes[2].loader.calls(), 0);
    let stats = nodes[0].group.stats();
    assert_eq!((stats.server_requests, stats.peer_loads), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn values_from_peers_enter_the_hot_cache_as_the_random_source_says() {
    // Admit one in two; the injected source yields 0, 1, 2, ... so fetches alternate
    // admitted, refused, admitted, ...
    let counter = Arc::new(AtomicU64::new(0));
    let owner = group(|b| b).0;
    let peer = Arc::new(LocalPeer {
        name: "owner".into(),
        group: Arc::clone(&owner),
    });
    let source = Arc::clone(&counter);
    let (node, loader) = group(|b| {
        b.hot_admission(2)
            .random(move || source.fetch_add(1, Ordering::SeqCst))
            .peers(Arc::new(FixedPicker(peer)))
    });
    for i in 0..6 {
        let fetched = node.fetch(&format!("k{i}"), Origin::Client).await.unwrap();
        assert_eq!(fetched.source, Source::Peer);
    }
    assert_eq!(loader.calls(), 0, "the owner loads, not this node");
    for i in 0..6 {
        let again = node.fetch(&format!("k{i}"), Origin::Client).await.unwrap();
        let expected = if i % 2 == 0 {
            Source::HotCache
        } else {
            Source::Peer
        };
        assert_eq!(again.source, expected, "key k{i}");
    }
    // The second pass fetched k1, k3 and k5 again, drawing 6, 7 and 8: k1 and k5 got in.
    let stats = node.stats();
    assert_eq!(stats.hot.items, 5);
    assert_eq!(stats.hot.hits, 3);
    assert_eq!(stats.peer_loads, 9);
    assert_eq!(stats.main.items, 0);
    assert_stats_add_up(&node);
}

#[tokio::test(start_paused = true)]
async fn a_failing_peer_falls_back_to_a_local_load() {
    for fault in [Fault::Error, Fault::Hang] {
        let peer = Arc::new(FaultyPeer {
            fault,
            calls: AtomicUsize::new(0),
        });
        let (node, loader) = group(|b| {
            b.peer_timeout(Duration::from_millis(250))
                .peers(Arc::new(FixedPicker(peer.clone())))
        });
        assert_eq!(node.get("k1").await.unwrap(), value_of("k1"), "{fault:?}");
        assert_eq!(peer.calls.load(Ordering::SeqCst), 1);
        assert_eq!(loader.calls(), 1);
        let stats = node.stats();
        assert_eq!((stats.peer_errors, stats.local_loads), (1, 1), "{fault:?}");
        // The local load went to the main cache: the next get is a hit, with no peer call.
        assert_eq!(node.get("k1").await.unwrap(), value_of("k1"));
        assert_eq!(peer.calls.load(Ordering::SeqCst), 1);
        assert_stats_add_up(&node);
    }
}

#[tokio::test(start_paused = true)]
async fn a_peers_not_found_is_the_answer_without_a_local_load() {
    let peer = Arc::new(FaultyPeer {
        fault: Fault::NotFound,
        calls: AtomicUsize::new(0),
    });
    let (node, loader) = group(|b| b.peers(Arc::new(FixedPicker(peer.clone()))));
    let err = node.get("k1").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(loader.calls(), 0);
    let stats = node.stats();
    assert_eq!((stats.peer_errors, stats.not_found), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn remove_drops_main_and_hot_copies() {
    let owner = group(|b| b).0;
    let peer = Arc::new(LocalPeer {
        name: "owner".into(),
        group: Arc::clone(&owner),
    });
    let (node, _) = group(|b| b.hot_admission(1).peers(Arc::new(FixedPicker(peer))));
    node.get("k1").await.unwrap();
    assert_eq!(node.stats().hot.items, 1);
    assert_eq!(owner.stats().main.items, 1);
    assert!(node.remove_local("k1"));
    assert!(owner.remove_local("k1"));
    assert!(!node.remove_local("k1"), "already gone");
    assert_eq!(node.stats().hot.items, 0);
    assert_eq!(owner.stats().main.items, 0);
}

#[test]
fn groups_register_once_per_name() {
    let registry = Registry::new();
    let build = || {
        Group::builder("once")
            .register(&registry)
            .getter(CountingLoader::default())
            .build()
    };
    let first = build().unwrap();
    assert!(matches!(
        build().unwrap_err(),
        geecache_group::BuildError::Duplicate(DuplicateGroup(name)) if name == "once"
    ));
    assert!(Arc::ptr_eq(&registry.get("once").unwrap(), &first));
    assert_eq!(registry.names(), vec!["once".to_string()]);
    assert!(registry.remove("once").is_some());
    assert!(registry.get("once").is_none());
    build().expect("the name is free again");

    let picker = Arc::new(FixedPicker(Arc::new(FaultyPeer {
        fault: Fault::Error,
        calls: AtomicUsize::new(0),
    })));
    first.register_peers(picker.clone()).unwrap();
    assert!(
        first.register_peers(picker).is_err(),
        "peers are registered once"
    );
}

#[test]
fn the_process_wide_registry_finds_groups_by_name() {
    let group = Group::builder("process-wide-scores")
        .register(geecache_group::groups::global())
        .getter(CountingLoader::default())
        .build()
        .unwrap();
    let found = geecache_group::groups::get("process-wide-scores").unwrap();
    assert!(Arc::ptr_eq(&found, &group));
    assert!(geecache_group::groups::names().contains(&"process-wide-scores".to_string()));
    assert!(geecache_group::groups::remove("process-wide-scores").is_some());
    assert!(geecache_group::groups::get("process-wide-scores").is_none());
}

// An application embeds the group with its own transport (here: in-memory peers, no HTTP)
// and gets cluster-wide removal from the group's own API: the owner's value and every hot
// copy go, and the next get loads afresh.
#[tokio::test(start_paused = true)]
async fn removal_reaches_the_owner_and_every_hot_copy() {
    let nodes = cluster(3, |b| b.hot_admission(1));
    let key = "k-removed";
    for node in &nodes {
        assert_eq!(node.group.get(key).await.unwrap(), value_of(key));
    }
    let copies = |nodes: &[Node]| -> usize {
        let items = nodes.iter().map(|n| n.group.stats());
        items.map(|s| s.main.items + s.hot.items).sum()
    };
    assert_eq!(copies(&nodes), 3, "the owner's value and two hot copies");
    let loads_before: usize = nodes.iter().map(|n| n.loader.calls()).sum();

    // Ask a node that does not own the key, so the request travels to the owner and back out.
    let owner = nodes.iter().position(|n| n.loader.calls() == 1).unwrap();
    let asker = &nodes[(owner + 1) % 3];
    let removal = asker.group.remove(key).await;
    assert!(removal.cached_here, "the asker held a hot copy");
    assert!(removal.is_complete(), "every member confirmed: {removal:?}");
    assert_eq!(copies(&nodes), 0, "no copy left anywhere");

    assert_eq!(asker.group.get(key).await.unwrap(), value_of(key));
    let loads_after: usize = nodes.iter().map(|n| n.loader.calls()).sum();
    assert_eq!(loads_after, loads_before + 1, "the next get loads afresh");
}

// When the owner does not answer, the asking node tells every member itself and names the
// owner among those that did not confirm, after the group's peer timeout.
#[tokio::test(start_paused = true)]
async fn removal_fans_out_itself_when_the_owner_hangs() {
    let hanging: Arc<dyn geecache_group::PeerGetter> = Arc::new(FaultyPeer {
        fault: Fault::Hang,
        calls: AtomicUsize::new(0),
    });
    let (witness, _) = group(|b| b);
    let witness_peer: Arc<dyn geecache_group::PeerGetter> = Arc::new(LocalPeer {
        name: "witness".into(),
        group: Arc::clone(&witness),
    });
    witness.get("k1").await.unwrap();
    let picker = OwnerAndOthers {
        owner: Arc::clone(&hanging),
        all: vec![hanging, witness_peer],
    };
    let (node, _) = group(|b| {
        b.peer_timeout(Duration::from_millis(50))
            .peers(Arc::new(picker))
    });
    let removal = node.remove("k1").await;
    assert_eq!(removal.unconfirmed, vec!["faulty".to_string()]);
    assert!(!removal.is_complete());
    assert_eq!(
        witness.stats().main.items,
        0,
        "the reachable member dropped its copy"
    );
}

/// Names `owner` for every key, and `all` as the members.
struct OwnerAndOthers {
    owner: Arc<dyn geecache_group::PeerGetter>,
    all: Vec<Arc<dyn geecache_group::PeerGetter>>,
}

impl geecache_group::PeerPicker for OwnerAndOthers {
    fn pick_peer(&self, _key: &str) -> Option<Arc<dyn geecache_group::PeerGetter>> {
        Some(Arc::clone(&self.owner))
    }

    fn all_peers(&self) -> Vec<Arc<dyn geecache_group::PeerGetter>> {
        self.all.clone()
    }
}

// A peer's "rejected" is an answer, like "not found": the asking node passes it on and does
// not load the key itself.
#[tokio::test(start_paused = true)]
async fn a_peers_rejection_is_an_answer() {
    let nodes = cluster(3, |b| b.hot_admission(0));
    let mut ring = geecache_consistenthash::Ring::new(50);
    ring.add(nodes.iter().map(|n| n.name.clone()));
    let key = (0..)
        .map(|i| format!("k-deny-{i}"))
        .find(|k| ring.get(k.as_str()) != Some(nodes[0].name.as_str()))
        .unwrap();
    let error = nodes[0].group.get(&key).await.unwrap_err();
    assert!(error.is_rejected(), "{error}");
    assert_eq!(nodes[0].loader.calls(), 0, "no local fallback");
    assert_eq!(nodes[0].group.stats().peer_errors, 0);
}

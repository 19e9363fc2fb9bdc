//! Writes: set, purge and negative caching, on one group and across a cluster.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use futures_util::future::join;
use proptest::prelude::*;

use geecache_group::{Loaded, SetError};

use crate::support::*;

#[derive(Clone, Debug)]
enum Op {
    Get { node: usize, key: u8 },
    Set { node: usize, key: u8, version: u8 },
    Remove { node: usize, key: u8 },
    Purge { node: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..12u8;
    prop_oneof![
        6 => (0..3usize, key.clone()).prop_map(|(node, key)| Op::Get { node, key }),
        3 => (0..3usize, key.clone(), any::<u8>())
            .prop_map(|(node, key, version)| Op::Set { node, key, version }),
        2 => (0..3usize, key).prop_map(|(node, key)| Op::Remove { node, key }),
        1 => (0..3usize).prop_map(|node| Op::Purge { node }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The model: a key's value is the last value set for it since its last removal or purge,
    /// else the source's; every node answers it, whoever owns the key and whatever hot copies
    /// the nodes kept.
    #[test]
    fn every_node_answers_the_last_write(ops in prop::collection::vec(op(), 1..80)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let nodes = cluster(3, |b| b.cache_bytes(0).hot_admission(1));
            let mut model: HashMap<String, String> = HashMap::new();
            for op in ops {
                match op {
                    Op::Get { node, key } => {
                        let key = format!("k{key}");
                        let value = nodes[node].group.get(&key).await.unwrap();
                        let wanted = model.get(&key).cloned().unwrap_or_else(|| value_of(&key));
                        prop_assert_eq!(value, wanted.as_str(), "{} at node {}", key, node);
                    }
                    Op::Set { node, key, version } => {
                        let key = format!("k{key}");
                        let value = format!("set-{version}");
                        let written = nodes[node].group.set(&key, Loaded::from(value.clone())).await.unwrap();
                        prop_assert!(written.unconfirmed.is_empty());
                        model.insert(key, value);
                    }
                    Op::Remove { node, key } => {
                        let key = format!("k{key}");
                        nodes[node].group.remove(&key).await;
                        model.remove(&key);
                    }
                    Op::Purge { node } => {
                        let purged = nodes[node].group.purge().await;
                        prop_assert!(purged.unconfirmed.is_empty());
                        model.clear();
                    }
                }
                for node in &nodes {
                    assert_stats_add_up(&node.group);
                }
            }
            Ok(())
        })?;
    }
}

#[tokio::test(start_paused = true)]
async fn a_load_in_flight_does_not_overwrite_a_set_value() {
    let slow = CountingLoader {
        delay: Some(Duration::from_millis(100)),
        ..CountingLoader::default()
    };
    let (group, _) = group(|b| b.getter(slow));
    // The get starts its load first (join polls it first); the set lands while it sleeps.
    let (old, written) = join(group.get("k1"), group.set("k1", Loaded::from("new"))).await;
    assert_eq!(
        old.unwrap(),
        value_of("k1"),
        "the load's callers get what it loaded"
    );
    assert!(written.unwrap().stored_here);
    assert_eq!(
        group.get("k1").await.unwrap(),
        "new",
        "but it is not cached over the set"
    );
}

#[tokio::test(start_paused = true)]
async fn a_purge_drops_every_value_on_every_node_and_gets_reload() {
    let nodes = cluster(3, |b| b.hot_admission(1));
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    for node in &nodes {
        for key in &keys {
            node.group.get(key).await.unwrap();
        }
    }
    let loads_before: usize = nodes.iter().map(|n| n.loader.calls()).sum();
    assert_eq!(loads_before, 30);
    let purged = nodes[1].group.purge().await;
    assert!(purged.dropped_here > 0 && purged.unconfirmed.is_empty());
    for node in &nodes {
        assert_eq!(node.group.bytes(), 0, "{} holds nothing", node.name);
        assert_eq!(node.group.stats().purges, 1);
    }
    for key in &keys {
        nodes[0].group.get(key).await.unwrap();
    }
    let loads_after: usize = nodes.iter().map(|n| n.loader.calls()).sum();
    assert_eq!(loads_after, 60, "every key loaded again, once");
}

#[tokio::test(start_paused = true)]
async fn not_found_is_cached_at_the_owner_only_and_for_its_time() {
    let nodes = cluster(3, |b| b.negative_ttl(Duration::from_secs(60)));
    let key = (0..)
        .map(|i| format!("missing{i}"))
        .find(|k| owner_of(&nodes, k) == 2)
        .unwrap();
    for node in [0, 1, 0, 2, 1] {
        assert!(
            nodes[node]
                .group
                .get(&key)
                .await
                .unwrap_err()
                .is_not_found()
        );
    }
    assert_eq!(
        nodes[2].loader.calls(),
        1,
        "the owner asked its source once"
    );
    assert_eq!((nodes[0].loader.calls(), nodes[1].loader.calls()), (0, 0));
    assert_eq!(nodes[2].group.stats().negative_hits, 4);
    assert_eq!(
        nodes[0].group.stats().negative_hits,
        0,
        "peers keep no copy"
    );

    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(nodes[0].group.get(&key).await.unwrap_err().is_not_found());
    assert_eq!(nodes[2].loader.calls(), 2, "expired: asked again");

    // Setting the key makes it exist, whatever was cached about it.
    nodes[1]
        .group
        .set(&key, Loaded::from("now here"))
        .await
        .unwrap();
    assert_eq!(nodes[0].group.get(&key).await.unwrap(), "now here");
}

#[tokio::test(start_paused = true)]
async fn without_a_negative_ttl_every_miss_asks_the_source() {
    let (group, loader) = group(|b| b);
    for _ in 0..3 {
        assert!(group.get("missing").await.unwrap_err().is_not_found());
    }
    assert_eq!(loader.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_set_the_owner_does_not_take_is_an_error_and_stores_nothing() {
    let peer = Arc::new(FaultyPeer {
        fault: Fault::Error,
        calls: AtomicUsize::new(0),
    });
    let (group, _) = group(|b| b.peers(Arc::new(FixedPicker(peer))));
    match group.set("k1", Loaded::from("v")).await {
        Err(SetError::Owner { owner, .. }) => assert_eq!(owner, "faulty"),
        other => panic!("expected an owner error, got {other:?}"),
    }
    assert_eq!(group.bytes(), 0);
    assert!(matches!(
        group.set("", Loaded::from("v")).await,
        Err(SetError::EmptyKey)
    ));
    assert!(matches!(
        group.set("a..b", Loaded::from("v")).await,
        Err(SetError::Rejected(_))
    ));
}

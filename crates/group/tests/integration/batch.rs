//! `get_many`: one request per owning peer, one flight per key, and the same answers as single
//! gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join;
use proptest::prelude::*;

use geecache_group::{Error, Group, LoadError, Loaded, getter_fn};

use crate::support::*;

/// What a get of `key` must return on any node of a `cluster`, whoever owns it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    Value(String),
    NotFound,
    Rejected,
    Empty,
    Failed,
}

pub(crate) fn expected(key: &str) -> Expected {
    if key.is_empty() {
        Expected::Empty
    } else if key.contains("..") || key.starts_with("k-deny") {
        Expected::Rejected
    } else if key.starts_with("fail") {
        Expected::Failed
    } else if key.starts_with('k') {
        Expected::Value(value_of(key))
    } else {
        Expected::NotFound
    }
}

pub(crate) fn observed(result: &Result<geecache_group::ByteView, Error>) -> Expected {
    match result {
        Ok(value) => Expected::Value(String::from_utf8_lossy(value.as_slice()).into_owned()),
        Err(Error::NotFound) => Expected::NotFound,
        Err(Error::Rejected(_)) => Expected::Rejected,
        Err(Error::EmptyKey) => Expected::Empty,
        Err(_) => Expected::Failed,
    }
}

pub(crate) fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0..40u8).prop_map(|i| format!("k{i}")),
        1 => (0..4u8).prop_map(|i| format!("missing{i}")),
        1 => (0..4u8).prop_map(|i| format!("fail{i}")),
        1 => (0..4u8).prop_map(|i| format!("k-deny{i}")),
        1 => Just("k..up".to_owned()),
        1 => Just(String::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The model: a batch answers each key as a single get would (the source's answer for it),
    /// for any mix of owners, missing, failing and refused keys, and duplicates.
    #[test]
    fn a_batch_answers_what_single_gets_answer(
        batches in prop::collection::vec((0..3usize, prop::collection::vec(key(), 0..40)), 1..6),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let nodes = cluster(3, |b| b.cache_bytes(16 * 20).hot_admission(2));
            for (node, keys) in batches {
                let results = nodes[node].group.get_many(&keys).await;
                prop_assert_eq!(results.len(), keys.len());
                for (key, result) in keys.iter().zip(&results) {
                    prop_assert_eq!(observed(result), expected(key), "key {:?}", key);
                    let single = nodes[node].group.get(key).await;
                    prop_assert_eq!(observed(&single), expected(key), "key {:?}", key);
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
async fn a_batch_sends_one_request_per_owning_peer_and_loads_each_key_once() {
    let nodes = cluster(3, |b| b.hot_admission(0));
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let results = nodes[0].group.get_many(&keys).await;
    for (key, result) in keys.iter().zip(&results) {
        assert_eq!(result.as_ref().unwrap(), value_of(key).as_str());
    }
    for node in &nodes[1..] {
        assert_eq!(node.served.batches(), 1, "{} got one batch", node.name);
        assert_eq!(node.served.gets(), 0, "{} got no single get", node.name);
        let keys = node.served.batched_keys.load(Ordering::SeqCst);
        assert_eq!(
            keys,
            node.loader.calls(),
            "{} loaded what it was asked",
            node.name
        );
    }
    let loads: usize = nodes.iter().map(|n| n.loader.calls()).sum();
    assert_eq!(loads, 100, "each key loaded once in the whole cluster");
    assert!(nodes[0].loader.calls() > 0, "node-1 owns some keys itself");
}

#[tokio::test(start_paused = true)]
async fn a_batch_joins_a_single_get_in_flight_for_the_same_key() {
    let nodes = cluster(3, |b| b.hot_admission(0));
    // A key node-1 does not own, so both the single get and the batch ask its owner.
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| owner_of(&nodes, k) != 0)
        .unwrap();
    let owner = owner_of(&nodes, &key);
    let others = ["k-other-1".to_owned(), key.clone()];
    // `join` polls the single get first: it leads the key's flight, and the batch joins it.
    let (single, batch) = join(nodes[0].group.get(&key), nodes[0].group.get_many(&others)).await;
    assert_eq!(single.unwrap(), value_of(&key).as_str());
    assert_eq!(batch[1].as_ref().unwrap(), value_of(&key).as_str());
    assert_eq!(
        nodes[owner].served.gets(),
        1,
        "the single get asked the owner"
    );
    // Had the batch not joined the flight, the key would have gone out in it as well.
    let batched: usize = nodes
        .iter()
        .map(|n| n.served.batched_keys.load(Ordering::SeqCst))
        .sum();
    let other_is_remote = owner_of(&nodes, &others[0]) != 0;
    assert_eq!(
        batched,
        usize::from(other_is_remote),
        "only the other key was batched"
    );
    let total: usize = nodes.iter().map(|n| n.loader.calls()).sum();
    assert_eq!(total, 2, "the key once, the other key once");
}

#[tokio::test(start_paused = true)]
async fn a_batch_whose_peer_fails_is_loaded_here_key_by_key() {
    for fault in [Fault::Error, Fault::Hang] {
        let peer = Arc::new(FaultyPeer {
            fault,
            calls: AtomicUsize::new(0),
        });
        let (group, loader) = group(|b| {
            b.peers(Arc::new(FixedPicker(peer.clone())))
                .peer_timeout(Duration::from_millis(300))
        });
        let keys = ["k1", "k2", "nope", "k1"];
        let results = group.get_many(&keys).await;
        let shown: Vec<Expected> = results.iter().map(observed).collect();
        let wanted: Vec<Expected> = keys.iter().map(|k| expected(k)).collect();
        assert_eq!(shown, wanted, "{fault:?}");
        assert_eq!(loader.calls(), 3, "{fault:?}: k1, k2 and nope, once each");
        assert_eq!(group.stats().peer_errors, 3, "{fault:?}");
        assert_stats_add_up(&group);
    }
}

#[tokio::test(start_paused = true)]
async fn a_batch_loads_at_most_batch_concurrency_keys_at_once() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (Arc::clone(&running), Arc::clone(&most));
    let group = Group::builder("scores")
        .batch_concurrency(4)
        .getter(getter_fn(move |key: String| {
            let (running, most) = (Arc::clone(&r), Arc::clone(&m));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, LoadError>(Loaded::from(key))
            }
        }))
        .build()
        .unwrap();
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let results = group.get_many(&keys).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(most.load(Ordering::SeqCst), 4, "four at a time, not fifty");
}

#[tokio::test(start_paused = true)]
async fn an_empty_batch_answers_nothing_and_counts_nothing() {
    let (group, loader) = group(|b| b);
    let none: [&str; 0] = [];
    assert!(group.get_many(&none).await.is_empty());
    assert_eq!((group.stats().gets, loader.calls()), (0, 0));
}

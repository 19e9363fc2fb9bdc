//! Peer micro-batching: concurrent single gets to one peer within the batch window go out as
//! one batch request, and answer as single gets do.

use std::time::Duration;

use futures_util::future::join_all;
use proptest::prelude::*;

use geecache_group::{BuildError, Group, getter_fn};

use crate::batch::{Expected, expected, key, observed};
use crate::support::*;

const WINDOW: Duration = Duration::from_millis(2);

/// `n` distinct keys that node `owner` of `nodes` owns.
fn keys_owned_by(nodes: &[Node], owner: usize, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("k{i}"))
        .filter(|k| owner_of(nodes, k) == owner)
        .take(n)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn concurrent_single_gets_to_one_peer_make_one_batch_request() {
    let nodes = cluster(2, |b| b.hot_admission(0).peer_batch_window(WINDOW));
    let mut keys = keys_owned_by(&nodes, 1, 20);
    // A key asked for twice at once joins its flight, and goes out once.
    keys.push(keys[0].clone());
    let results = join_all(keys.iter().map(|key| nodes[0].group.get(key))).await;
    for (key, result) in keys.iter().zip(&results) {
        assert_eq!(result.as_ref().unwrap(), value_of(key).as_str());
    }
    let owner = &nodes[1].served;
    assert_eq!(owner.batches(), 1, "one batch request");
    assert_eq!(owner.gets(), 0, "no single get");
    assert_eq!(
        owner.batched_keys.load(std::sync::atomic::Ordering::SeqCst),
        20
    );
    assert_eq!(nodes[1].loader.calls(), 20);
    assert_eq!(nodes[0].group.stats().peer_loads, 20);
    for node in &nodes {
        assert_stats_add_up(&node.group);
    }
}

#[tokio::test(start_paused = true)]
async fn without_a_window_each_single_get_is_a_request() {
    let nodes = cluster(2, |b| b.hot_admission(0));
    let keys = keys_owned_by(&nodes, 1, 20);
    let results = join_all(keys.iter().map(|key| nodes[0].group.get(key))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!((nodes[1].served.batches(), nodes[1].served.gets()), (0, 20));
}

#[tokio::test(start_paused = true)]
async fn coalesced_gets_answer_not_found_refused_and_failed_as_single_gets() {
    let nodes = cluster(2, |b| b.hot_admission(0).peer_batch_window(WINDOW));
    let owned = |prefix: &str| {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .find(|k| owner_of(&nodes, k) == 1)
            .unwrap()
    };
    let (missing, denied, failing) = (owned("nope"), owned("k-deny"), owned("fail"));
    let keys = [owned("k"), missing, denied, failing];
    let results = join_all(keys.iter().map(|key| nodes[0].group.get(key))).await;
    assert_eq!(results[0].as_ref().unwrap(), value_of(&keys[0]).as_str());
    assert!(results[1].as_ref().unwrap_err().is_not_found());
    assert!(results[2].as_ref().unwrap_err().is_rejected());
    // The owner's source failed: an error answer, which the asker loads itself, as after a
    // single get, and its own source fails too.
    assert!(matches!(results[3], Err(geecache_group::Error::Load(_))));
    assert_eq!(nodes[1].served.batches(), 1);
    assert_eq!(nodes[0].group.stats().peer_errors, 1);
}

#[test]
fn a_window_over_ten_milliseconds_is_refused() {
    let build = |window| {
        Group::builder("scores")
            .getter(getter_fn(|key: String| async move {
                Ok::<_, geecache_group::LoadError>(key.into())
            }))
            .peer_batch_window(window)
            .build()
    };
    let refused = build(Duration::from_millis(11)).unwrap_err();
    assert!(matches!(refused, BuildError::PeerBatchWindowTooLong(_)));
    assert!(refused.to_string().contains("at most 10ms"), "{refused}");
    assert!(build(Duration::from_millis(10)).is_ok());
    assert!(build(Duration::ZERO).is_ok(), "zero is off");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The model: single gets from any nodes, at any moments, with a window on, each answer
    /// what the source has for the key (as with the window off), for any mix of owners,
    /// missing, failing and refused keys, and the same key asked for at once.
    #[test]
    fn coalesced_gets_answer_what_single_gets_answer(
        gets in prop::collection::vec((0..3usize, key(), 0..6u64), 1..40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let answers: Vec<Expected> = runtime.block_on(async {
            let nodes = cluster(3, |b| b.hot_admission(2).peer_batch_window(WINDOW));
            let gets = gets.iter().map(|(node, key, at_ms)| {
                let group = &nodes[*node].group;
                async move {
                    tokio::time::sleep(Duration::from_millis(*at_ms)).await;
                    observed(&group.get(key).await)
                }
            });
            let answers = join_all(gets).await;
            for node in &nodes {
                assert_stats_add_up(&node.group);
            }
            answers
        });
        for ((_, key, _), answer) in gets.iter().zip(answers) {
            prop_assert_eq!(answer, expected(key), "key {:?}", key);
        }
    }
}

//! Every call of the service, through the pool's peers: what each answers.

use std::time::Duration;

use geecache_group::{Loaded, PeerError, RemoveMode};

use crate::support::{GROUP, Node};

#[tokio::test]
async fn get_answers_values_not_found_and_rejected() {
    let node = Node::start(None).await;
    let peer = node.peer(None);
    assert_eq!(peer.get(GROUP, "k").await.unwrap().value(), &"value-of-k");
    let ttl = peer.get(GROUP, "ttl-k").await.unwrap().ttl().unwrap();
    assert!(ttl <= Duration::from_secs(60) && ttl > Duration::from_secs(30));
    assert!(matches!(
        peer.get(GROUP, "missing").await,
        Err(PeerError::NotFound)
    ));
    match peer.get(GROUP, "bad-k").await {
        Err(PeerError::Rejected(r)) => assert_eq!(r.reason(), "bad keys are refused"),
        other => panic!("{other:?}"),
    }
    // A failing source is a failure of the peer, not an answer about the key.
    assert!(matches!(
        peer.get(GROUP, "fail-k").await,
        Err(PeerError::Status { status: 500, .. })
    ));
}

#[tokio::test]
async fn peek_never_loads() {
    let node = Node::start(None).await;
    let peer = node.peer(None);
    assert!(peer.peek(GROUP, "k").await.unwrap().is_none());
    assert_eq!(node.loads.load(std::sync::atomic::Ordering::SeqCst), 0);
    peer.get(GROUP, "k").await.unwrap();
    let hit = peer.peek(GROUP, "k").await.unwrap().unwrap();
    assert_eq!(hit.value(), &"value-of-k");
    assert_eq!(node.loads.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn remove_drops_the_key_and_a_hand_over_stores_one() {
    let node = Node::start(None).await;
    let peer = node.peer(None);
    peer.get(GROUP, "k").await.unwrap();
    assert!(node.group.peek("k").unwrap().is_some());
    let unconfirmed = peer.remove(GROUP, "k", RemoveMode::Local).await.unwrap();
    assert!(unconfirmed.is_empty());
    assert!(node.group.peek("k").unwrap().is_none());

    let handed = Loaded::from("handed").with_ttl(Duration::from_secs(60));
    let over_long = "k".repeat((64 << 10) + 1); // over the default key limit
    let values = vec![
        ("h".to_owned(), handed),
        (String::new(), Loaded::from("empty key")),
        (over_long, Loaded::from("long key")),
    ];
    let taken = peer.hand_over(GROUP, values).await.unwrap();
    assert_eq!(taken, 1, "the keys it cannot hold are left out");
    let stored = node.group.peek("h").unwrap().unwrap();
    assert_eq!(stored.value, "handed");
    assert!(stored.ttl.is_some());
    assert_eq!(node.loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(node.group.stats().handed_in, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_share_one_connection() {
    let node = Node::start(None).await;
    let peer = node.peer(None);
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..200 {
        let peer = peer.clone();
        calls.spawn(async move { peer.get(GROUP, &format!("k{}", i % 50)).await });
    }
    while let Some(answer) = calls.join_next().await {
        assert!(answer.unwrap().unwrap().value().len() > 9);
    }
    // 200 calls at once, one socket: each call was a stream on it.
    assert_eq!(
        node.connections.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

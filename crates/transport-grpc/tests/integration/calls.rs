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
async fn an_answer_carries_the_owners_rate_of_the_key() {
    let node = Node::start(None).await;
    let peer = node.peer(None);
    let rate = |loaded: &Loaded| loaded.minute_qps().expect("the owner sends its rate");
    // `n` requests: n / 60 per second, less what it decays in the test's real time. Half a
    // request's worth takes 11 s or more to decay, so the bounds tell counts apart however
    // slow the machine, and no clock is read here.
    let counts = |got: f64, n: f64| got <= n / 60.0 + 1e-6 && got > (n - 0.5) / 60.0;
    // Loaded just now: one request in the last minute; then two.
    let first = peer.get(GROUP, "k").await.unwrap();
    assert!(counts(rate(&first), 1.0), "{}", rate(&first));
    let second = peer.get(GROUP, "k").await.unwrap();
    assert!(counts(rate(&second), 2.0), "{}", rate(&second));
    // A batch carries one rate per key.
    let keys = ["k".to_owned(), "k2".to_owned()];
    let answers = peer.get_many(GROUP, &keys).await.unwrap();
    let rates: Vec<f64> = answers.iter().map(|a| rate(a.as_ref().unwrap())).collect();
    assert!(counts(rates[0], 3.0) && counts(rates[1], 1.0), "{rates:?}");
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

#[tokio::test]
async fn get_many_answers_each_key_as_get_would() {
    let node = Node::start(None).await;
    let peer = node.peer(None);
    let over_long = "k".repeat((64 << 10) + 1);
    let keys: Vec<String> = ["k1", "missing", "bad-k", "fail-k", "", "k2"]
        .iter()
        .map(|k| (*k).to_owned())
        .chain([over_long])
        .collect();
    let results = peer.get_many(GROUP, &keys).await.unwrap();
    assert!(
        peer.takes_batches(),
        "a node that answers GetMany takes batches"
    );
    assert_eq!(results.len(), keys.len());
    assert_eq!(results[0].as_ref().unwrap().value(), &"value-of-k1");
    assert!(matches!(results[1], Err(PeerError::NotFound)));
    assert!(matches!(results[2], Err(PeerError::Rejected(_))));
    assert!(matches!(
        results[3],
        Err(PeerError::Status { status: 500, .. })
    ));
    assert!(
        matches!(results[4], Err(PeerError::Status { status: 400, .. })),
        "empty key"
    );
    assert_eq!(results[5].as_ref().unwrap().value(), &"value-of-k2");
    assert!(
        matches!(results[6], Err(PeerError::Status { status: 429, .. })),
        "key too long"
    );

    let too_many: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    assert!(matches!(
        peer.get_many(GROUP, &too_many).await,
        Err(PeerError::Status { status: 400, .. })
    ));
    assert_eq!(
        peer.get(GROUP, "k3").await.unwrap().value(),
        &"value-of-k3",
        "still serving"
    );
}

#[tokio::test]
async fn set_stores_at_the_receiver_and_purge_empties_it() {
    let node = Node::start(None).await;
    let peer = node.peer(None);
    let unconfirmed = peer
        .set(
            GROUP,
            "k",
            Loaded::from("set").with_ttl(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert!(unconfirmed.is_empty());
    let stored = node.group.peek("k").unwrap().unwrap();
    assert_eq!(stored.value, "set");
    assert!(stored.ttl.is_some());
    assert_eq!(node.loads.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(matches!(
        peer.set(GROUP, "", Loaded::from("v")).await,
        Err(PeerError::Status { status: 400, .. })
    ));

    peer.get(GROUP, "k2").await.unwrap();
    peer.purge(GROUP).await.unwrap();
    assert_eq!(node.group.bytes(), 0);
    assert_eq!(node.group.stats().purges, 1);
}

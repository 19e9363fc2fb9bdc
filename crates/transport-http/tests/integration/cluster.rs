//! Three real nodes on loopback: ownership, single loads, removal, crashes, membership changes.

use std::collections::BTreeSet;
use std::time::SystemTime;

use futures_util::future::join_all;
use geecache_transport_http::proto::{GetResponse, HandOver, HandedValue};
use geecache_transport_http::{ErrorKind, PEER_HEADER};
use http::{Method, StatusCode};
use prost::Message;

use crate::support::{Cluster, GROUP, Options, PATIENT, get, send, send_body, value_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_is_loaded_once_cluster_wide_by_its_owner() {
    let cluster = Cluster::start(Options::default()).await;
    let keys: Vec<String> = (0..24).map(|i| format!("k{i}")).collect();

    // Every key asked of every node, three times, all at once.
    let requests = keys.iter().flat_map(|key| {
        cluster.nodes.iter().flat_map(move |node| {
            (0..3).map(move |_| async move { (key.clone(), get(&node.api(key)).await) })
        })
    });
    for (key, answer) in join_all(requests).await {
        assert_eq!(answer.status, StatusCode::OK, "{key}: {}", answer.text());
        assert_eq!(answer.text(), value_of(&key, 0));
    }

    let mut owners = BTreeSet::new();
    for key in &keys {
        let owner = cluster.owner(key);
        owners.insert(owner);
        assert_eq!(
            cluster.world.loads_of(key),
            vec![cluster.nodes[owner].url.clone()],
            "{key} must be loaded exactly once, by its owner"
        );
    }
    assert!(
        owners.len() > 1,
        "24 keys should spread over more than one node"
    );
    for node in &cluster.nodes {
        let stats = node.group.stats();
        assert_eq!(stats.peer_errors, 0);
        assert_eq!(stats.gets, 72 + stats.server_requests);
    }
}

#[tokio::test]
async fn values_come_from_the_owner_and_hot_copies_are_kept() {
    let cluster = Cluster::start(Options {
        hot_admission: 1,
        ..Options::default()
    })
    .await;
    let owner = 1;
    let key = cluster.key_owned_by(owner, "k");
    let other = 0;

    let first = get(&cluster.nodes[other].api(&key)).await;
    assert_eq!(first.text(), value_of(&key, 0));
    assert_eq!(first.header("x-geecache-source"), Some("peer"));
    let second = get(&cluster.nodes[other].api(&key)).await;
    assert_eq!(second.header("x-geecache-source"), Some("hot"));
    let at_owner = get(&cluster.nodes[owner].api(&key)).await;
    assert_eq!(at_owner.header("x-geecache-source"), Some("main"));

    assert_eq!(cluster.nodes[other].group.stats().peer_loads, 1);
    assert_eq!(cluster.nodes[owner].group.stats().server_requests, 1);
    assert_eq!(
        cluster.world.loads_of(&key),
        vec![cluster.nodes[owner].url.clone()]
    );
}

#[tokio::test]
async fn the_owner_sends_its_rate_and_the_asker_keeps_a_hot_copy_by_it() {
    let cluster = Cluster::start(Options {
        hot_qps: Some(0.04),
        ..Options::default()
    })
    .await;
    let (owner, other) = (1, 0);
    let key = cluster.key_owned_by(owner, "k");
    let rate = |answer: &crate::support::Answer| {
        let message = GetResponse::decode(answer.body.clone()).expect("a GetResponse");
        message.minute_qps.expect("an owner sends its rate")
    };
    // A peer request: the owner loads the key and answers with one request in the last minute.
    let marked = send(
        Method::GET,
        &cluster.nodes[owner].peer_route(&key),
        &[(PEER_HEADER, "1")],
    )
    .await;
    assert!(
        (rate(&marked) - 1.0 / 60.0).abs() < 1e-4,
        "{}",
        rate(&marked)
    );
    // Through node 0: the owner counts two requests (0.033/s), under the threshold of 0.04.
    let first = get(&cluster.nodes[other].api(&key)).await;
    assert_eq!(first.header("x-geecache-source"), Some("peer"));
    assert_eq!(cluster.nodes[other].group.stats().hot.items, 0);
    // Three (0.05/s): node 0 keeps a copy, and answers the next request from it.
    get(&cluster.nodes[other].api(&key)).await;
    assert_eq!(cluster.nodes[other].group.stats().hot.items, 1);
    let hot = get(&cluster.nodes[other].api(&key)).await;
    assert_eq!(hot.header("x-geecache-source"), Some("hot"));
    // A node standing in for no owner sends no rate for a value it holds as a copy.
    let copy = send(
        Method::GET,
        &cluster.nodes[other].peer_route(&key),
        &[(PEER_HEADER, "1")],
    )
    .await;
    let message = GetResponse::decode(copy.body).unwrap();
    assert_eq!(message.minute_qps, None);
}

#[tokio::test]
async fn a_marked_peer_request_is_loaded_where_it_lands_and_an_unmarked_one_is_forwarded() {
    let cluster = Cluster::start(Options::default()).await;
    let key = cluster.key_owned_by(2, "k");
    let lander = &cluster.nodes[0];

    // Marked: node 0 loads it itself even though node 2 owns it (no second hop, no loop).
    let marked = send(Method::GET, &lander.peer_route(&key), &[(PEER_HEADER, "1")]).await;
    assert_eq!(marked.status, StatusCode::OK);
    assert_eq!(marked.header("x-geecache-source"), Some("loader"));
    assert_eq!(cluster.world.loads_of(&key), vec![lander.url.clone()]);

    // Unmarked, as a Go groupcache node sends it: served as groupcache would, via the owner.
    let other = cluster.key_owned_by(2, "other");
    let unmarked = get(&lander.peer_route(&other)).await;
    assert_eq!(unmarked.status, StatusCode::OK);
    assert_eq!(unmarked.header("x-geecache-source"), Some("peer"));
    assert_eq!(
        cluster.world.loads_of(&other),
        vec![cluster.nodes[2].url.clone()]
    );
}

fn cached_items(cluster: &Cluster) -> Vec<(usize, usize)> {
    cluster
        .nodes
        .iter()
        .map(|n| {
            let s = n.group.stats();
            (s.main.items, s.hot.items)
        })
        .collect()
}

#[tokio::test]
async fn remove_clears_the_owner_and_every_hot_copy() {
    let cluster = Cluster::start(Options {
        hot_admission: 1,
        ..Options::default()
    })
    .await;
    let owner = 2;
    let key = cluster.key_owned_by(owner, "k");
    for node in &cluster.nodes {
        assert_eq!(get(&node.api(&key)).await.text(), value_of(&key, 0));
    }
    assert_eq!(cached_items(&cluster), vec![(0, 1), (0, 1), (1, 0)]);

    // The source changes; a client removes the key through a node that does not own it.
    let generation = cluster.world.bump();
    let removed = send(Method::DELETE, &cluster.nodes[0].api(&key), &[]).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text());
    assert_eq!(cached_items(&cluster), vec![(0, 0); 3]);
    for node in &cluster.nodes {
        assert_eq!(
            get(&node.api(&key)).await.text(),
            value_of(&key, generation)
        );
    }

    // The same through the library call, made on the owner.
    let generation = cluster.world.bump();
    let removal = cluster.nodes[owner].group.remove(&key).await;
    assert!(removal.is_complete(), "{removal:?}");
    assert!(removal.cached_here);
    assert_eq!(cached_items(&cluster), vec![(0, 0); 3]);
    for node in &cluster.nodes {
        assert_eq!(
            get(&node.api(&key)).await.text(),
            value_of(&key, generation)
        );
    }

    // And with DELETE on the peer route from an operator, at the third node.
    cluster.world.bump();
    let removed = send(Method::DELETE, &cluster.nodes[1].peer_route(&key), &[]).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(cached_items(&cluster), vec![(0, 0); 3]);
}

#[tokio::test]
async fn a_peer_marked_delete_only_drops_the_local_copy() {
    let cluster = Cluster::start(Options {
        hot_admission: 1,
        ..Options::default()
    })
    .await;
    let key = cluster.key_owned_by(2, "k");
    for node in &cluster.nodes {
        get(&node.api(&key)).await;
    }
    let removed = send(
        Method::DELETE,
        &cluster.nodes[0].peer_route(&key),
        &[(PEER_HEADER, "1")],
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(cached_items(&cluster), vec![(0, 0), (0, 1), (1, 0)]);
}

#[tokio::test]
async fn removal_reports_a_peer_that_is_down() {
    let mut cluster = Cluster::start(Options::default()).await;
    let key = cluster.key_owned_by(0, "k");
    get(&cluster.nodes[0].api(&key)).await;
    let dead = cluster.nodes[1].url.clone();
    cluster.nodes[1].stop().await;

    let removed = send(Method::DELETE, &cluster.nodes[0].api(&key), &[]).await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(
        removed.header("x-geecache-unconfirmed"),
        Some(dead.as_str())
    );
    assert_eq!(cluster.nodes[0].group.stats().main.items, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_load_leaves_no_client_visible_error() {
    let mut cluster = Cluster::start(Options {
        gated: vec![2],
        ..Options::default()
    })
    .await;
    let key = cluster.key_owned_by(2, "slow");
    let mut gate = cluster.gates[2].take().expect("node 2 is gated");

    let urls: Vec<String> = (0..2).map(|i| cluster.nodes[i].api(&key)).collect();
    let requests = tokio::spawn(async move { join_all(urls.iter().map(|u| get(u))).await });

    // The owner has started loading: at least one peer request is inside it. Now it dies.
    assert_eq!(gate.next_entered().await, key);
    cluster.nodes[2].kill();

    let answers = tokio::time::timeout(crate::support::PATIENT, requests)
        .await
        .expect("requests finish")
        .expect("no panic");
    for answer in answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.text(), value_of(&key, 0));
    }
    let errors: u64 = (0..2)
        .map(|i| cluster.nodes[i].group.stats().peer_errors)
        .sum();
    assert!(errors >= 1, "the failed peer fetch is counted");
    let loaders: BTreeSet<String> = cluster.world.loads_of(&key).into_iter().collect();
    assert!(loaders.contains(&cluster.nodes[0].url) || loaders.contains(&cluster.nodes[1].url));
}

// Regression: every node that found a key's owner dead loaded the key itself, until the
// owner's circuit opened on it; now each goes to the owner's stand-in, so the key is loaded
// once, whichever node the stand-in is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_owners_key_is_loaded_once_by_its_stand_in() {
    for stand_in in [0, 1] {
        let other = 1 - stand_in;
        let mut cluster = Cluster::start(Options::default()).await;
        let key = cluster.key_standing_in(2, stand_in, other, "k");
        cluster.nodes[2].kill();
        // The other node finds the owner dead and asks the stand-in, which loads the key; the
        // stand-in then answers its own client from that copy.
        for asker in [other, stand_in] {
            let answer = get(&cluster.nodes[asker].api(&key)).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
            assert_eq!(answer.text(), value_of(&key, 0));
        }
        assert_eq!(cluster.nodes[other].group.stats().peer_errors, 1);
        assert_eq!(
            cluster.world.loads_of(&key),
            vec![cluster.nodes[stand_in].url.clone()],
            "loaded once, by its stand-in"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_peers_while_requests_are_in_flight() {
    let mut cluster = Cluster::start(Options {
        gated: vec![1],
        ..Options::default()
    })
    .await;
    let mut gate = cluster.gates[1].take().expect("node 1 is gated");
    let slow = cluster.key_owned_by(1, "slow");
    let later = cluster.key_owned_by(1, "later");
    let node0 = &cluster.nodes[0];

    // A request from node 0 is inside node 1's loader...
    let url = node0.api(&slow);
    let in_flight = tokio::spawn(async move { get(&url).await });
    assert_eq!(gate.next_entered().await, slow);

    // ...when node 0 drops node 1 from its ring, and churns its membership some more while
    // other requests go on.
    let all: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    let without_1 = vec![all[0].clone(), all[2].clone()];
    let churn = {
        let pool = node0.pool.clone();
        let (all, without_1) = (all.clone(), without_1.clone());
        async move {
            for round in 0..50 {
                let members = match round % 3 {
                    0 => without_1.clone(),
                    1 => all.clone(),
                    _ => vec![all[0].clone()],
                };
                pool.set_peers(&members).expect("valid peers");
                tokio::task::yield_now().await;
            }
            pool.set_peers(&without_1).expect("valid peers");
        }
    };
    let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
    let gets = join_all(keys.iter().map(|k| {
        let url = node0.api(k);
        async move { (k.clone(), get(&url).await) }
    }));
    let ((), answers) = tokio::join!(churn, gets);
    for (key, answer) in answers {
        assert_eq!(answer.status, StatusCode::OK, "{key}");
        assert_eq!(answer.text(), value_of(&key, 0));
    }

    // The request that picked node 1 before the change finishes with node 1.
    gate.release(1);
    let answer = tokio::time::timeout(crate::support::PATIENT, in_flight)
        .await
        .expect("finishes")
        .expect("no panic");
    assert_eq!(answer.text(), value_of(&slow, 0));
    assert_eq!(
        cluster.world.loads_of(&slow),
        vec![cluster.nodes[1].url.clone()]
    );

    // Afterwards node 0 never asks node 1, even for a key node 1 owned.
    let mut expected = without_1;
    expected.sort();
    assert_eq!(node0.pool.peers(), expected);
    assert_ne!(
        node0.pool.owner_of(&later).as_deref(),
        Some(all[1].as_str())
    );
    let answer = get(&node0.api(&later)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        !cluster
            .world
            .loads_of(&later)
            .contains(&cluster.nodes[1].url)
    );
    assert_eq!(node0.group.stats().peer_errors, 0);
}

// A peer's `invalid-key` is an answer, passed on as it is: the asking node neither counts a
// peer error nor loads the key itself.
#[tokio::test]
async fn a_peers_invalid_key_is_an_answer_not_a_failure() {
    let cluster = Cluster::start(Options::default()).await;
    let key = cluster.key_owned_by(1, "deny");
    let answer = get(&cluster.nodes[0].api(&key)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(
        answer.header("x-geecache-error"),
        Some(ErrorKind::InvalidKey.as_str())
    );
    assert_eq!(
        answer.text(),
        format!("invalid key: the source refuses {key}\n")
    );
    let loads = cluster.world.loads_of(&key);
    assert_eq!(loads.len(), 1, "loaded by the owner only: {loads:?}");
    assert_eq!(loads[0], cluster.nodes[1].url);
    let stats = cluster.nodes[0].group.stats();
    assert_eq!((stats.peer_errors, stats.keys_rejected), (0, 1));
}

// A node joins a cluster of two. The keys it now owns it takes from the caches of their
// previous owners (a peek, cache only), so no key is loaded from the source twice.
#[tokio::test]
async fn a_joining_node_takes_its_keys_from_their_previous_owners() {
    let cluster = Cluster::start(Options::default()).await;
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    // Start as a cluster of the first two; the third knows only itself.
    for node in &cluster.nodes[..2] {
        node.pool.set_peers(&urls[..2]).expect("valid peers");
    }
    cluster.nodes[2]
        .pool
        .set_peers(&urls[2..])
        .expect("valid peers");
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    for key in &keys {
        assert_eq!(
            get(&cluster.nodes[0].api(key)).await.text(),
            value_of(key, 0)
        );
    }

    for node in &cluster.nodes {
        node.pool.set_peers(&urls).expect("valid peers");
    }
    let joined = &cluster.nodes[2];
    let moved: Vec<&String> = keys
        .iter()
        .filter(|k| joined.pool.owner_of(k).as_deref() == Some(joined.url.as_str()))
        .collect();
    assert!(!moved.is_empty());
    for key in &moved {
        assert_eq!(get(&joined.api(key)).await.text(), value_of(key, 0));
    }
    for key in &keys {
        assert_eq!(
            cluster.world.loads_of(key).len(),
            1,
            "{key} loaded once in all"
        );
    }
    assert_eq!(joined.group.stats().handoffs, moved.len() as u64);
}

// A node leaves a cluster of three. Before it goes it hands each value it owns to the member
// that owns the key without it, in one `POST` per heir; the others then answer every key with no source
// load, though the leaver is gone before anyone asks.
#[tokio::test]
async fn a_leaving_node_hands_its_values_over_before_it_goes() {
    let cluster = Cluster::start(Options::default()).await;
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    for key in &keys {
        assert_eq!(
            get(&cluster.nodes[0].api(key)).await.text(),
            value_of(key, 0)
        );
    }
    let leaver = &cluster.nodes[2];
    let held = leaver.group.stats().main.items;
    assert!(held > 0);

    for node in &cluster.nodes[..2] {
        node.pool.set_peers(&urls[..2]).expect("valid peers");
    }
    let handed = leaver.group.hand_over(PATIENT).await;
    assert_eq!((handed.sent, handed.kept), (held, 0));
    let received: u64 = cluster.nodes[..2]
        .iter()
        .map(|n| n.group.stats().handed_in)
        .sum();
    assert_eq!(received, held as u64);

    for key in &keys {
        assert_eq!(
            get(&cluster.nodes[1].api(key)).await.text(),
            value_of(key, 0)
        );
        assert_eq!(
            cluster.world.loads_of(key).len(),
            1,
            "{key} loaded once in all"
        );
    }
}

// A hand-over goes to `{base}{group}/` with a `HandOver` body; anything else is refused with a
// clear kind, a key the group cannot hold is left out of what was taken, and the node keeps
// serving.
#[tokio::test]
async fn a_malformed_hand_over_is_refused() {
    let cluster = Cluster::start(Options::default()).await;
    let node = &cluster.nodes[0];
    let batch_url = format!("{}/_geecache/{GROUP}/", node.url);

    let answer = send_body(
        Method::POST,
        &batch_url,
        b"\xff\xff\xff not protobuf".to_vec(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.header("x-geecache-error"), Some("bad-body"));

    let with_key = format!("{}/_geecache/{GROUP}/k1", node.url);
    let answer = send_body(Method::POST, &with_key, Vec::new()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert_eq!(answer.header("x-geecache-error"), Some("bad-path"));

    let unknown = format!("{}/_geecache/no-such-group/", node.url);
    let answer = send_body(Method::POST, &unknown, Vec::new()).await;
    assert_eq!(answer.header("x-geecache-error"), Some("unknown-group"));
    assert_eq!(node.group.stats().handed_in, 0);

    let handed = |key: &str| HandedValue::with_ttl(key, "handed", None, SystemTime::now());
    let over_long = "k".repeat((64 << 10) + 1); // over the default key limit
    let message = HandOver {
        values: vec![handed("h1"), handed(&over_long), handed("")],
    };
    let answer = send_body(Method::POST, &batch_url, message.encode_to_vec()).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    assert_eq!(answer.header("x-geecache-taken"), Some("1"));
    assert_eq!(node.group.stats().handed_in, 1);
    assert_eq!(get(&node.api("k1")).await.text(), value_of("k1", 0));
}

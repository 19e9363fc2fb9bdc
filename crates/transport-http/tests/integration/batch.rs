//! Batch gets over HTTP: one request per owning peer, per-key answers, limits, and clients.

use std::collections::BTreeMap;

use geecache_transport_http::proto::{GetMany, GetManyAnswer};
use geecache_transport_http::{BATCH_HEADER, ErrorKind, PEER_HEADER, PeerOutcome};
use http::{Method, StatusCode};
use prost::Message;
use serde_json::Value;

use crate::support::{Cluster, GROUP, Options, send, send_body, value_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_asks_each_owning_peer_once_and_each_key_is_loaded_once() {
    let cluster = Cluster::start(Options::default()).await;
    let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
    let asker = &cluster.nodes[0];
    let results = asker.group.get_many(&keys).await;
    for (key, result) in keys.iter().zip(&results) {
        assert_eq!(result.as_ref().expect("a value"), value_of(key, 0).as_str());
        let owner = cluster.owner(key);
        assert_eq!(
            cluster.world.loads_of(key),
            vec![cluster.nodes[owner].url.clone()]
        );
    }
    // One peer request per other node, each a batch that succeeded.
    let mut requests: BTreeMap<String, Vec<PeerOutcome>> = BTreeMap::new();
    for (peer, outcome) in asker.outcomes.all() {
        requests.entry(peer).or_default().push(outcome);
    }
    let others: Vec<String> = cluster.nodes[1..].iter().map(|n| n.url.clone()).collect();
    assert_eq!(requests.keys().cloned().collect::<Vec<_>>(), {
        let mut o = others.clone();
        o.sort();
        o
    });
    for (peer, outcomes) in &requests {
        assert_eq!(outcomes, &[PeerOutcome::Ok], "one request to {peer}");
    }
    assert_eq!(asker.group.stats().peer_errors, 0);
}

#[tokio::test]
async fn a_peer_batch_answers_each_key_as_a_single_get_would() {
    let cluster = Cluster::start(Options {
        nodes: 1,
        ..Options::default()
    })
    .await;
    let node = &cluster.nodes[0];
    let keys = ["k1", "missing1", "fail1", "deny1", "bad1", "k1", ""];
    let request = GetMany {
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
    };
    let url = format!("{}/_geecache/{GROUP}", node.url);
    let answer = send_with(
        Method::POST,
        &url,
        request.encode_to_vec(),
        &[(PEER_HEADER, "1")],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header(BATCH_HEADER), Some("1"));
    let answers = GetManyAnswer::decode(answer.body)
        .expect("a GetManyAnswer")
        .answers;
    let kinds: Vec<Option<&str>> = answers.iter().map(|a| a.error.as_deref()).collect();
    assert_eq!(
        kinds,
        [
            None,
            Some("not-found"),
            Some("load-failed"),
            Some("invalid-key"),
            Some("invalid-key"),
            None,
            Some("bad-path"),
        ]
    );
    assert_eq!(
        answers[0].value.as_deref(),
        Some(value_of("k1", 0).as_bytes())
    );
    assert_eq!(
        cluster.world.loads_of("k1").len(),
        1,
        "a key asked twice loads once"
    );
}

#[tokio::test]
async fn bad_batches_are_refused_whole_and_the_node_keeps_serving() {
    let cluster = Cluster::start(Options {
        nodes: 1,
        ..Options::default()
    })
    .await;
    let node = &cluster.nodes[0];
    let peer_url = format!("{}/_geecache/{GROUP}", node.url);
    let api_url = format!("{}/api/{GROUP}", node.url);
    let too_many = GetMany {
        keys: (0..1001).map(|i| format!("k{i}")).collect(),
    };
    let too_many_json = serde_json::json!({ "keys": too_many.keys }).to_string();
    let cases: Vec<(&str, String, Vec<u8>, ErrorKind)> = vec![
        (
            "malformed protobuf",
            peer_url.clone(),
            vec![0xff, 0xff, 0xff],
            ErrorKind::BadBody,
        ),
        (
            "over 1000 keys",
            peer_url.clone(),
            too_many.encode_to_vec(),
            ErrorKind::TooLarge,
        ),
        (
            "over 4 MiB",
            peer_url.clone(),
            vec![0; 5 << 20],
            ErrorKind::TooLarge,
        ),
        (
            "unknown group",
            format!("{}/_geecache/nope", node.url),
            Vec::new(),
            ErrorKind::UnknownGroup,
        ),
        (
            "malformed JSON",
            api_url.clone(),
            b"{\"keys\": [1]}".to_vec(),
            ErrorKind::BadBody,
        ),
        (
            "not JSON",
            api_url.clone(),
            b"k1 k2".to_vec(),
            ErrorKind::BadBody,
        ),
        (
            "over 1000 keys, JSON",
            api_url.clone(),
            too_many_json.into_bytes(),
            ErrorKind::TooLarge,
        ),
    ];
    for (what, url, body, kind) in cases {
        let answer = send_body(Method::POST, &url, body).await;
        assert_eq!(answer.status, kind.status(), "{what}: {}", answer.text());
        assert_eq!(
            answer.header("x-geecache-error"),
            Some(kind.as_str()),
            "{what}"
        );
    }
    let answer = send(Method::GET, &node.api("k1"), &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_batch_answers_json_in_the_order_asked() {
    let cluster = Cluster::start(Options::default()).await;
    let node = &cluster.nodes[0];
    let url = format!("{}/api/{GROUP}", node.url);
    let body = br#"{"keys": ["k1", "missing1", "ttl1", "k1", "k2"]}"#.to_vec();
    let answer = send_body(Method::POST, &url, body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let json: Value = serde_json::from_slice(&answer.body).expect("JSON");
    let results = json["results"].as_array().expect("results");
    let keys: Vec<&str> = results.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["k1", "missing1", "ttl1", "k1", "k2"]);
    let value = |i: usize| {
        use base64::Engine;
        let text = results[i]["value"].as_str().expect("a value");
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(value(0), value_of("k1", 0));
    assert_eq!(results[1]["error"], "not-found");
    assert!(results[1].get("value").is_none());
    assert_eq!(value(2), value_of("ttl1", 0));
    assert!(
        results[2]["ttl_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 0 && ms <= 60_000)
    );
    assert_eq!(value(3), value_of("k1", 0));
    assert_eq!(value(4), value_of("k2", 0));
    let empty = send_body(Method::POST, &url, br#"{"keys": []}"#.to_vec()).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.text(), r#"{"results":[]}"#);
}

async fn send_with(
    method: Method,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> crate::support::Answer {
    crate::support::exchange(method, url, headers, body).await
}

// A peer behind a proxy that answers the batch route 405 is asked key by key from then on,
// and says so (`takes_batches`), so that a node with a peer batch window stops waiting for it.
#[tokio::test]
async fn a_peer_that_refuses_the_batch_route_no_longer_takes_batches() {
    use geecache_group::PeerPicker;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let refuse = axum::Router::new().fallback(|| async { StatusCode::METHOD_NOT_ALLOWED });
    let serve = geecache_transport_http::serve(listener, refuse, std::future::pending());
    tokio::spawn(serve);
    let me = "http://127.0.0.1:1";
    let pool = geecache_transport_http::HttpPool::builder(me)
        .build()
        .unwrap();
    pool.set_peers([me, proxy.as_str()]).unwrap();
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| pool.owner_of(k).as_deref() == Some(proxy.as_str()))
        .unwrap();
    let peer = pool.pick_peer(&key).expect("the proxy owns the key");
    assert!(
        peer.takes_batches(),
        "a peer takes batches until it shows otherwise"
    );
    let answers = peer.get_many(GROUP, &[key]).await.unwrap();
    assert!(
        answers[0].is_err(),
        "the proxy refuses the single get as well"
    );
    assert!(!peer.takes_batches());
}

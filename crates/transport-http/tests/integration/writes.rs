//! Writes over HTTP: a client sets a value or purges a group, and every node sees it.

use geecache_transport_http::{ErrorKind, STORED_HEADER};
use http::{Method, StatusCode};

use crate::support::{Cluster, GROUP, Options, get, send, send_body, value_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_value_is_seen_on_every_node_and_hot_copies_are_dropped() {
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
    assert!(
        cluster.nodes[0].group.stats().hot.items > 0,
        "a hot copy to drop"
    );

    let answer = send_body(Method::PUT, &cluster.nodes[0].api(&key), b"new".to_vec()).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    assert_eq!(
        answer.header(STORED_HEADER),
        None,
        "stored at the owner, not here"
    );
    for node in &cluster.nodes {
        let answer = get(&node.api(&key)).await;
        assert_eq!(answer.text(), "new", "{}", node.url);
    }
    assert_eq!(
        cluster.world.loads_of(&key).len(),
        1,
        "no load after the set"
    );
    assert_eq!(cluster.nodes[owner].group.stats().sets, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_empties_every_node_and_keys_load_again() {
    let cluster = Cluster::start(Options {
        hot_admission: 1,
        ..Options::default()
    })
    .await;
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    for node in &cluster.nodes {
        for key in &keys {
            get(&node.api(key)).await;
        }
    }
    let url = format!("{}/api/{GROUP}", cluster.nodes[1].url);
    let answer = send(Method::DELETE, &url, &[]).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    for node in &cluster.nodes {
        assert_eq!(node.group.bytes(), 0, "{} still holds values", node.url);
    }
    world_reloads(&cluster, &keys).await;
}

async fn world_reloads(cluster: &Cluster, keys: &[String]) {
    for key in keys {
        assert_eq!(
            get(&cluster.nodes[0].api(key)).await.text(),
            value_of(key, 0)
        );
        assert_eq!(
            cluster.world.loads_of(key).len(),
            2,
            "{key}: loaded again, once"
        );
    }
}

/// What a bad write is: a name, its URL, body and headers, and the kind it must be refused with.
type Case<'a> = (&'a str, String, Vec<u8>, Vec<(&'a str, &'a str)>, ErrorKind);

#[tokio::test]
async fn bad_writes_are_refused_and_the_node_keeps_serving() {
    let cluster = Cluster::start(Options {
        nodes: 1,
        server_token: Some("s3cret".into()),
        pool_token: Some("s3cret".into()),
        ..Options::default()
    })
    .await;
    let node = &cluster.nodes[0];
    let api = node.api("k1");
    let cases: Vec<Case<'_>> = vec![
        (
            "over 8 MiB",
            api.clone(),
            vec![0; 9 << 20],
            vec![],
            ErrorKind::TooLarge,
        ),
        (
            "ttl not a number",
            api.clone(),
            b"v".to_vec(),
            vec![("x-geecache-ttl", "soon")],
            ErrorKind::BadBody,
        ),
        (
            "ttl below zero",
            api.clone(),
            b"v".to_vec(),
            vec![("x-geecache-ttl", "-1")],
            ErrorKind::BadBody,
        ),
        (
            "key refused",
            node.api("bad1"),
            b"v".to_vec(),
            vec![],
            ErrorKind::InvalidKey,
        ),
        (
            "unknown group",
            format!("{}/api/nope/k1", node.url),
            b"v".to_vec(),
            vec![],
            ErrorKind::UnknownGroup,
        ),
        (
            "peer route without the token",
            node.peer_route("k1"),
            b"v".to_vec(),
            vec![],
            ErrorKind::Unauthorized,
        ),
    ];
    for (what, url, body, headers, kind) in cases {
        let answer = crate::support::exchange(Method::PUT, &url, &headers, body).await;
        assert_eq!(answer.status, kind.status(), "{what}: {}", answer.text());
        assert_eq!(
            answer.header("x-geecache-error"),
            Some(kind.as_str()),
            "{what}"
        );
    }
    let answer = send_body(Method::PUT, &api, b"fine".to_vec()).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    assert_eq!(
        answer.header(STORED_HEADER),
        Some("1"),
        "one node: stored here"
    );
    assert_eq!(get(&api).await.text(), "fine");
}
